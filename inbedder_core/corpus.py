"""Corpus loading: CSV, TSV, TXT, JSONL and Parquet into a ``Corpus``.

(Loading functions are being written; the data model below is fixed.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


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
    """

    n_rows: int
    n_kept: int
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_duplicates: int = 0
    encoding: str | None = None
    text_column_guessed: bool = False


@dataclass
class Corpus:
    """Documents to embed, with every other input column kept for export.

    Attributes:
        ids: one string id per document (an ``id`` column when present, else the
            1-based row number in the file).
        texts: the documents, verbatim (no stripping beyond what the file format implies).
        table: the kept rows, all original columns as strings, index 0..n-1, aligned with ``texts``.
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
