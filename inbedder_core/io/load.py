"""``load_corpus``: the one front door from a path or bytes to a ``Corpus``; picks the format and the
text column, skips unusable rows (counted in the report) and chooses document ids.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from inbedder_core.errors import CorpusError
from inbedder_core.settings import positive_int_setting

from .corpus import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    MAX_BYTES_ENV,
    MAX_ROWS_ENV,
    SKIP_DUPLICATE,
    SKIP_EMPTY,
    SKIP_MISSING,
    SKIP_NUL,
    SKIP_WHITESPACE,
    Corpus,
    LoadReport,
)
from .decode import _check_size, _decode
from .readers import _read_delimited, _read_jsonl, _read_parquet, _read_txt, _Table

SUPPORTED_FORMATS = ("csv", "tsv", "txt", "jsonl", "parquet")
"""The formats ``load_corpus`` reads (values accepted by ``format=``)."""

_FORMAT_ALIASES = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "txt": "txt",
    "text": "txt",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json-lines": "jsonl",
    "jsonlines": "jsonl",
    "parquet": "parquet",
    "pq": "parquet",
}

TEXT_COLUMN_NAMES = (
    "text",
    "document",
    "content",
    "body",
    "sentence",
    "utterance",
    "query",
    "message",
    "review",
    "comment",
)
"""Column names (case-insensitive, in order of preference) taken as the text column."""

_GUESS_SAMPLE_ROWS = 10_000

_VISIBLE = re.compile("[^\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                      "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
"""A character a reader sees: not whitespace, and not one of the invisible ones (zero-width spaces and
joiners, direction marks, soft hyphen, variation selectors, the BOM, Hangul fillers)."""


def load_corpus(
    source: str | os.PathLike[str] | bytes,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    name: str | None = None,
    max_bytes: int | None = None,
    max_rows: int | None = None,
    drop_duplicates: bool = False,
    format: str | None = None,
    encoding: str | None = None,
) -> Corpus:
    """Read a CSV, TSV, TXT, JSONL or Parquet file into a ``Corpus``.

    Every cell is read as text: ``"NA"``, ``"null"``, ``"None"`` and ``"nan"`` stay
    literal strings. Only real nulls (Parquet/JSONL ``null``/NaN) are missing.
    Missing, empty and whitespace-only texts (invisible characters such as U+200B count as
    whitespace) are skipped and counted in
    ``report.skipped``; exact duplicate texts are kept and counted in
    ``report.n_duplicates`` unless ``drop_duplicates`` is set.

    Args:
        source: a path, or the raw bytes of an uploaded file (then ``name`` or
            ``format`` says what it is).
        text_column: the column holding the documents. ``None`` guesses: a column
            named one of ``TEXT_COLUMN_NAMES`` (case-insensitive), else the string
            column with the longest mean length. TXT files have one column, ``"text"``.
        id_column: a column of unique, non-empty ids. ``None`` uses a column named
            ``id`` when it is unique over the kept rows, else 1-based row numbers.
        name: the file name for ``bytes`` input (its extension picks the format)
            and the display name in messages. Defaults to the path's file name.
        max_bytes: size cap in bytes. ``None`` reads ``INBEDDER_MAX_BYTES`` from
            the environment, else ``DEFAULT_MAX_BYTES`` (200 MiB).
        max_rows: cap on data rows. ``None`` reads ``INBEDDER_MAX_ROWS``, else
            ``DEFAULT_MAX_ROWS`` (1,000,000).
        drop_duplicates: skip rows whose text equals an earlier kept row's text
            (counted as ``"duplicate text"``).
        format: one of ``SUPPORTED_FORMATS`` (also ``ndjson``, ``json-lines``);
            overrides the extension.
        encoding: a Python codec name for text formats. ``None`` detects it:
            UTF-8 (BOM stripped), UTF-16/32 from a BOM, BOM-less UTF-16 from the
            NUL-byte pattern, cp1252/latin-1 only when the bytes are invalid UTF-8
            and plausibly Western single-byte text.

    Returns:
        The corpus; ``corpus.report`` says what was kept, skipped and guessed.

    Raises:
        CorpusError: file not found or unreadable; unknown format; file over
            ``max_bytes`` or with more than ``max_rows`` rows; empty or header-only
            file; binary file; undecodable text; malformed CSV/TSV/JSONL (or JSON nested
            too deeply to read); corrupt Parquet, or Parquet that decodes to more than
            ``PARQUET_DECODE_FACTOR`` (2) times ``max_bytes``; a CSV/TSV/JSONL table of more cells (rows x
            columns, 16 bytes counted for each) than that allows; text or id column not found;
            unusable id column; no documents left after skipping.
    """
    cap_bytes = positive_int_setting(max_bytes, MAX_BYTES_ENV, DEFAULT_MAX_BYTES, "max_bytes", CorpusError)
    cap_rows = positive_int_setting(max_rows, MAX_ROWS_ENV, DEFAULT_MAX_ROWS, "max_rows", CorpusError)
    if isinstance(source, (bytes, bytearray, memoryview)):
        display = name or "<uploaded bytes>"
        fmt = _resolve_format(format, name, display)
        data = bytes(source)
        _check_size(len(data), cap_bytes, display)
    else:
        path = Path(source)
        display = name or path.name or str(path)
        try:
            exists, is_file = path.exists(), path.is_file()
            size = path.stat().st_size if is_file else 0
        except OSError as err:  # a name too long, a folder on the way that cannot be searched
            raise CorpusError(f"cannot open '{path}': {err.strerror or err}; check the path") from None
        if not exists:
            raise CorpusError(f"file not found: '{path}'; check the path")
        if not is_file:
            raise CorpusError(f"'{path}' is not a file; pass the path of a {'/'.join(SUPPORTED_FORMATS)} file")
        fmt = _resolve_format(format, name or path.name, display)
        _check_size(size, cap_bytes, display)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CorpusError(f"cannot read '{path}': {err.strerror or err}; check its permissions") from err
        _check_size(len(data), cap_bytes, display)

    if not data:
        raise CorpusError(f"{display!r} is empty (0 bytes); choose a file with one document per row")

    if fmt == "parquet":
        table = _read_parquet(data, display, cap_rows, cap_bytes)
        if encoding is not None:
            table.notes.append(f"encoding={encoding!r} ignored: Parquet stores text as UTF-8")
    else:
        text, used_encoding, encoding_note = _decode(data, encoding, display)
        if fmt == "txt":
            table = _read_txt(text, display, cap_rows)
        elif fmt == "jsonl":
            table = _read_jsonl(text, display, cap_rows, cap_bytes)
        else:
            table = _read_delimited(text, "," if fmt == "csv" else "\t", fmt, display, cap_rows, cap_bytes)
        table.encoding = used_encoding
        table.notes.insert(0, encoding_note)

    return _build_corpus(
        table,
        fmt=fmt,
        display=display,
        text_column=text_column,
        id_column=id_column,
        drop_duplicates=drop_duplicates,
    )


# --- options --------------------------------------------------------------------------------------


def _resolve_format(fmt: str | None, file_name: str | None, display: str) -> str:
    """The format to read: ``fmt`` when given, else the file name's extension.

    Raises:
        CorpusError: ``fmt`` or the extension is not a supported format.
    """
    supported = ", ".join(SUPPORTED_FORMATS)
    if fmt is not None:
        key = fmt.strip().lower().lstrip(".")
        if key not in _FORMAT_ALIASES:
            raise CorpusError(f"unknown format {fmt!r}; supported formats: {supported}")
        return _FORMAT_ALIASES[key]
    if not file_name:
        raise CorpusError(
            "cannot tell the format of raw bytes without a file name; "
            f"pass name= (e.g. 'data.csv') or format= (one of {supported})"
        )
    suffix = Path(file_name).suffix.lower().lstrip(".")
    if suffix in _FORMAT_ALIASES:
        return _FORMAT_ALIASES[suffix]
    shown = f"'.{suffix}'" if suffix else "no extension"
    hint = " (for one JSON object per line use format='jsonl')" if suffix == "json" else ""
    raise CorpusError(
        f"cannot tell the format of {display!r} from its extension ({shown}); supported formats: "
        f"{supported} (.ndjson and .json-lines read as jsonl); pass format= (--format on the command line) "
        f"or rename the file with one of those extensions{hint}"
    )


# --- from table to corpus -------------------------------------------------------------------------


def _guess_text_column(table: _Table) -> tuple[str, str]:
    """``(column, reason)``: a well-known name first, else the longest string column."""
    columns = [str(c) for c in table.frame.columns]
    lowered = {c.lower(): c for c in reversed(columns)}
    for wanted in TEXT_COLUMN_NAMES:
        if wanted in lowered:
            return lowered[wanted], f"its name matches {wanted!r}"
    sample = table.frame.head(_GUESS_SAMPLE_ROWS)
    candidates = [c for c in columns if c in table.string_columns] or columns
    textual = [c for c in candidates if not _looks_numeric(sample[c])] or candidates
    lengths = {c: _mean_length(sample[c]) for c in textual}
    best = max(textual, key=lambda c: lengths[c])
    return best, f"longest mean length ({lengths[best]:.1f} characters) of columns {textual}"


def _mean_length(values: pd.Series) -> float:
    present = [v for v in values.tolist() if isinstance(v, str)]
    return sum(map(len, present)) / len(present) if present else 0.0


def _looks_numeric(values: pd.Series) -> bool:
    present = [v for v in values.tolist() if isinstance(v, str) and v.strip()]
    if not present:
        return False
    return bool(pd.to_numeric(pd.Series(present, dtype=object), errors="coerce").notna().all())


def _build_corpus(
    table: _Table,
    *,
    fmt: str,
    display: str,
    text_column: str | None,
    id_column: str | None,
    drop_duplicates: bool,
) -> Corpus:
    """Choose columns, skip what cannot be a document, count everything.

    Raises:
        CorpusError: text or id column not found, unusable id column, or no documents left.
    """
    frame = table.frame
    columns = [str(c) for c in frame.columns]
    notes = list(table.notes)
    n_rows = len(frame)
    if not columns:
        raise CorpusError(f"{display!r} has no fields: its {n_rows:,} records are all empty; "
                          "each record needs a text field, e.g. {\"text\": \"...\"}")

    if text_column is not None:
        if text_column not in columns:
            raise CorpusError(f"column {text_column!r} not found; available: {columns}; pass --text-column",
                              columns)
        chosen, guessed = text_column, False
    elif fmt == "txt":
        chosen, guessed = "text", False
    else:
        chosen, guess_reason = _guess_text_column(table)
        guessed = True
        notes.append(
            f"text column {chosen!r} guessed: {guess_reason}; choose another text column if this is wrong "
            "(--text-column)"
        )

    if chosen in table.other_kinds:
        kind = table.other_kinds[chosen]
        how = "bytes decoded as UTF-8, bad bytes replaced" if "binary" in kind else "each cell's Python text form"
        notes.append(f"text column {chosen!r} is not a string column but {kind}: its cells are used as text "
                     f"({how}); choose a string column with --text-column if this is wrong")
    raw_texts = frame[chosen].tolist()
    skipped: dict[str, int] = {}
    keep: list[int] = []
    seen: set[str] = set()
    n_duplicates = 0
    for position, value in enumerate(raw_texts):
        if not isinstance(value, str):
            reason: str | None = SKIP_MISSING
        elif value == "":
            reason = SKIP_EMPTY
        elif _VISIBLE.search(value) is None:  # spaces, and invisible characters such as U+200B or a BOM
            reason = SKIP_WHITESPACE
        elif "\x00" in value:
            reason = SKIP_NUL
        elif value in seen:
            if drop_duplicates:
                reason = SKIP_DUPLICATE
            else:
                reason = None
                n_duplicates += 1
        else:
            reason = None
            seen.add(value)
        if reason is None:
            keep.append(position)
        else:
            skipped[reason] = skipped.get(reason, 0) + 1

    if not keep:
        detail = ", ".join(f"{count:,} {why}" for why, count in skipped.items())
        raise CorpusError(
            f"no documents left in {display!r}: all {n_rows:,} rows were skipped ({detail}) in column "
            f"{chosen!r}; " + ("choose the column holding the texts with --text-column" if len(columns) > 1
                               else "the file holds no text to embed: check that it is the right file"),
            columns,
        )
    if n_duplicates:
        noun = "text" if n_duplicates == 1 else "texts"
        notes.append(
            f"{n_duplicates:,} duplicate {noun} kept (exact repeats of an earlier row); "
            "pass drop_duplicates=True (CLI: --drop-duplicates) to skip them"
        )
    if skipped.get(SKIP_DUPLICATE):
        notes.append(f"skipped {skipped[SKIP_DUPLICATE]:,} duplicate texts (drop_duplicates is on)")

    kept_table = frame.iloc[keep].reset_index(drop=True)
    ids = _choose_ids(kept_table, keep, id_column, chosen, columns, display, notes)
    texts = [str(raw_texts[p]) for p in keep]

    report = LoadReport(
        n_rows=n_rows,
        n_kept=len(keep),
        skipped=skipped,
        notes=notes,
        n_duplicates=n_duplicates,
        encoding=table.encoding,
        text_column_guessed=guessed,
        source=display,
        text_column=chosen,
        format=fmt,
    )
    return Corpus(ids=ids, texts=texts, table=kept_table, text_column=chosen, source=display, report=report)


def _choose_ids(
    kept: pd.DataFrame,
    positions: list[int],
    id_column: str | None,
    text_column: str,
    columns: list[str],
    display: str,
    notes: list[str],
) -> list[str]:
    """Ids for the kept rows: ``id_column``, else a usable ``id`` column, else row numbers.

    Raises:
        CorpusError: ``id_column`` is not a column, or has missing, empty or repeated values.
    """
    row_numbers = [str(p + 1) for p in positions]
    if id_column is not None:
        if id_column not in columns:
            raise CorpusError(f"id column {id_column!r} not found; available: {columns}; pass --id-column")
        problem = _id_problem(kept[id_column].tolist())
        if problem:
            raise CorpusError(
                f"id column {id_column!r} in {display!r} {problem}; ids must be unique and non-empty; "
                "pass another --id-column or leave it out to use row numbers"
            )
        return [str(v) for v in kept[id_column].tolist()]
    auto = next((c for c in columns if c.lower() == "id" and c != text_column), None)
    if auto is None:
        return row_numbers
    problem = _id_problem(kept[auto].tolist())
    if problem:
        notes.append(f"column {auto!r} {problem}, so ids are row numbers (1 = first data row)")
        return row_numbers
    notes.append(f"ids from column {auto!r}")
    return [str(v) for v in kept[auto].tolist()]


def _id_problem(values: list[object]) -> str | None:
    """What makes ``values`` unusable as ids, or ``None``."""
    seen: set[str] = set()
    for row, value in enumerate(values, start=1):
        if not isinstance(value, str):
            return f"has a missing value (kept row {row:,})"
        if not value.strip():
            return f"has an empty value (kept row {row:,})"
        if value in seen:
            return f"is not unique ({value!r} repeats)"
        seen.add(value)
    return None
