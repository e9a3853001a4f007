"""The ``Corpus`` type (texts, ids and the whole table, as loaded), its ``LoadReport`` (what was read,
skipped and why, told by ``describe_report``) and the load caps every reader honours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
"""Default size cap (200 MiB, the same as Streamlit's default upload cap)."""

DEFAULT_MAX_ROWS = 1_000_000
"""Default cap on data rows."""

MAX_BYTES_ENV = "INBEDDER_MAX_BYTES"
MAX_ROWS_ENV = "INBEDDER_MAX_ROWS"

# Skip reasons: the keys of ``LoadReport.skipped``.
SKIP_MISSING = "missing text (null)"
SKIP_EMPTY = "empty text"
SKIP_WHITESPACE = "whitespace-only text"
SKIP_DUPLICATE = "duplicate text"
SKIP_NUL = "text contains a NUL character (binary data?)"


@dataclass
class LoadReport:
    """What happened while loading: counts, never silent drops.

    Attributes:
        n_rows: data rows read from the file.
        n_kept: rows that became documents (``len(corpus)``).
        skipped: reason -> count of rows not kept (e.g. ``{"empty text": 3}``).
        notes: human-readable lines (chosen text column, encoding, duplicates kept...).
        n_duplicates: kept rows whose text equals an earlier row's text.
        encoding: the text encoding used to decode the file (``None`` for Parquet).
        text_column_guessed: True when the text column was guessed, not given.
        source: display name of the input (file name), for ``summary``.
        text_column: the column the texts came from, for ``summary``.
        format: the format read (one of ``SUPPORTED_FORMATS``).
    """

    n_rows: int
    n_kept: int
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_duplicates: int = 0
    encoding: str | None = None
    text_column_guessed: bool = False
    source: str = ""
    text_column: str = ""
    format: str = ""

    def summary(self) -> str:
        """One human line: rows kept of read, the column, what was skipped, duplicates kept.

        Example: ``Loaded 980 of 1,000 rows from 'x.csv' (column 'text', guessed);
        skipped 15 empty text, 5 whitespace-only text; 12 duplicate texts kept.``
        """
        line = f"Loaded {self.n_kept:,} of {self.n_rows:,} rows"
        if self.source:
            line += f" from {self.source!r}"
        if self.text_column:
            how = "guessed" if self.text_column_guessed else "given"
            line += f" (column {self.text_column!r}, {how})"
        parts = [line]
        skips = [f"{count:,} {reason}" for reason, count in self.skipped.items() if count]
        if skips:
            parts.append("skipped " + ", ".join(skips))
        if self.n_duplicates:
            noun = "text" if self.n_duplicates == 1 else "texts"
            parts.append(f"{self.n_duplicates:,} duplicate {noun} kept")
        return "; ".join(parts) + "."


@dataclass
class Corpus:
    """Documents to embed, with every other input column kept for export.

    Attributes:
        ids: one string id per document (an ``id`` column when present, else the
            1-based row number in the file).
        texts: the documents, verbatim (no stripping beyond what the file format implies).
        table: the kept rows, all original columns as strings, index 0..n-1, aligned with ``texts``
            (object dtype; a missing Parquet/JSONL cell is ``None``).
        text_column: the name of the column the texts came from (``"text"`` for TXT).
        source: a display name for where it came from (file name).
        report: what loading kept and skipped.
    """

    ids: list[str]
    texts: list[str]
    table: pd.DataFrame
    text_column: str
    source: str
    report: LoadReport

    def __len__(self) -> int:
        return len(self.texts)


def describe_report(report: LoadReport) -> list[str]:
    """Human lines for the CLI and the app: ``report.summary()`` then every note."""
    return [report.summary(), *report.notes]


SHORT_TEXT_CHARS = 3
"""A text column whose median text is shorter than this looks like codes or labels, not documents."""


def text_column_problem(corpus: Corpus, sample: int = 2000) -> str | None:
    """Why ``corpus.text_column`` does not look like documents, or ``None`` when it does.

    It looks wrong when most of its values (over half, in an even sample of up to ``sample``)
    are numbers, or its median text is under ``SHORT_TEXT_CHARS`` characters. The app asks the
    analyst before using such a column; the CLI refuses a guessed one.
    """
    texts = corpus.texts[:: max(1, len(corpus.texts) // sample)] if corpus.texts else []
    if not texts:
        return None
    stripped = pd.Series([t.strip() for t in texts], dtype=object)
    numeric = float(pd.to_numeric(stripped, errors="coerce").notna().mean())
    median = float(stripped.str.len().median())
    if numeric > 0.5:
        what = f"{numeric:.0%} of its values are numbers"
    elif median < SHORT_TEXT_CHARS:
        what = f"its median text is {median:g} characters long"
    else:
        return None
    return f"column {corpus.text_column!r} does not look like documents: {what}"
