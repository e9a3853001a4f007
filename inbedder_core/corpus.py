"""Corpus loading: CSV, TSV, TXT, JSONL and Parquet into a ``Corpus``.

``load_corpus`` is the one front door. It reads a path or the raw bytes of an
uploaded file, decides the format from the file name (or ``format=``), decodes
the text (UTF-8 with or without BOM, UTF-16/32 with a BOM, BOM-less UTF-16, and
Western single-byte text only when it is declared or detected with confidence),
reads every cell as text, picks the text column, and returns a ``Corpus`` whose
``LoadReport`` accounts for every row: ``n_rows == n_kept + sum(skipped.values())``.

Every problem the user can fix is a ``CorpusError`` whose message names the bad
value and says what to do. Nothing happens at import time; pyarrow is imported
only when a Parquet file is read.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inbedder_core.errors import CorpusError
from inbedder_core.settings import positive_int_setting

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
"""Default size cap (200 MiB, the same as Streamlit's default upload cap)."""

DEFAULT_MAX_ROWS = 1_000_000
"""Default cap on data rows."""

MAX_BYTES_ENV = "INBEDDER_MAX_BYTES"
MAX_ROWS_ENV = "INBEDDER_MAX_ROWS"

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

# Skip reasons: the keys of ``LoadReport.skipped``.
SKIP_MISSING = "missing text (null)"
SKIP_EMPTY = "empty text"
SKIP_WHITESPACE = "whitespace-only text"
SKIP_DUPLICATE = "duplicate text"
SKIP_NUL = "text contains a NUL character (binary data?)"

_GUESS_SAMPLE_ROWS = 10_000

# Magic numbers of common binary files someone may upload by mistake.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx or .docx file is one too)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.xls/.doc)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_CONTROL_BYTES = bytes([*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_CP1252_UNDEFINED = bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D])
_C1_BYTES = bytes(range(0x80, 0xA0))
_HIGH_BYTES = bytes(range(0x80, 0x100))
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_ASCII_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DECODED_NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")


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


@dataclass
class _Table:
    """What a format reader hands back: every cell a ``str`` or ``None`` (missing)."""

    frame: pd.DataFrame
    string_columns: list[str]
    notes: list[str] = field(default_factory=list)
    encoding: str | None = None


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
    Missing, empty and whitespace-only texts are skipped and counted in
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
            file; binary file; undecodable text; malformed CSV/TSV/JSONL; corrupt
            Parquet; text or id column not found; unusable id column; no documents
            left after skipping.
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
        if not path.exists():
            raise CorpusError(f"file not found: '{path}'; check the path")
        if not path.is_file():
            raise CorpusError(f"'{path}' is not a file; pass the path of a {'/'.join(SUPPORTED_FORMATS)} file")
        fmt = _resolve_format(format, name or path.name, display)
        _check_size(path.stat().st_size, cap_bytes, display)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CorpusError(f"cannot read '{path}': {err.strerror or err}; check its permissions") from err
        _check_size(len(data), cap_bytes, display)

    if not data:
        raise CorpusError(f"{display!r} is empty (0 bytes); choose a file with one document per row")

    if fmt == "parquet":
        table = _read_parquet(data, display, cap_rows)
        if encoding is not None:
            table.notes.append(f"encoding={encoding!r} ignored: Parquet stores text as UTF-8")
    else:
        text, used_encoding, encoding_note = _decode(data, encoding, display)
        if fmt == "txt":
            table = _read_txt(text, display, cap_rows)
        elif fmt == "jsonl":
            table = _read_jsonl(text, display, cap_rows)
        else:
            table = _read_delimited(text, "," if fmt == "csv" else "\t", fmt, display, cap_rows)
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


def _format_size(n_bytes: int) -> str:
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):,.1f} MiB ({n_bytes:,} bytes)"
    return f"{n_bytes:,} bytes"


def _check_size(n_bytes: int, cap: int, display: str) -> None:
    """Raises: CorpusError: the file is larger than ``cap`` bytes."""
    if n_bytes > cap:
        raise CorpusError(
            f"{display!r} is {_format_size(n_bytes)}, over the size cap of {_format_size(cap)}; "
            f"raise the cap with max_bytes= (CLI: --max-bytes, or the {MAX_BYTES_ENV} environment variable)"
        )


def _too_many_rows(display: str, cap: int) -> CorpusError:
    return CorpusError(
        f"{display!r} has more than {cap:,} rows (the row cap); raise the cap with max_rows= "
        f"(CLI: --max-rows, or the {MAX_ROWS_ENV} environment variable) or load a sample of the file"
    )


def _header_only(display: str) -> CorpusError:
    return CorpusError(f"{display!r} is empty: it has a header but no data rows; add one document per row")


# --- decoding -------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str | None, display: str) -> tuple[str, str, str]:
    """Decode a text file: ``(text without BOM, encoding used, note for the report)``.

    Raises:
        CorpusError: the file is binary, or cannot be decoded (with the declared
            encoding, or with none detected confidently), or holds only a BOM.
    """
    _check_magic(data, display)
    if encoding is not None:
        text, note = _decode_declared(data, encoding, display)
        used = encoding
    else:
        text, used, note = _decode_detected(data, display)
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\x00")
    if nul >= 0:
        raise CorpusError(
            f"{display!r} looks binary, not text: it contains a NUL character "
            f"(line {text.count(chr(10), 0, nul) + 1}); choose a text file, or export the data as CSV"
        )
    if not text:
        raise CorpusError(f"{display!r} is empty: it holds only a byte-order mark")
    return text, used, note


def _decode_declared(data: bytes, encoding: str, display: str) -> tuple[str, str]:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise CorpusError(
            f"unknown encoding {encoding!r}; pass a Python codec name such as 'utf-8', 'utf-16', 'cp1252' or 'latin-1'"
        ) from None
    try:
        text = data.decode(codec.name)
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{display!r} cannot be decoded as {encoding}: {_describe_bad_byte(data, err)}; "
            "pass the file's real encoding with encoding= (CLI: --encoding)"
        ) from None
    return text, f"encoding: {encoding} (as declared)"


def _decode_detected(data: bytes, display: str) -> tuple[str, str, str]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as err:
                raise CorpusError(
                    f"{display!r} starts with a {codec} byte-order mark but is not valid {codec}: "
                    f"{_describe_bad_byte(data, err)}; pass the real encoding with encoding= (CLI: --encoding)"
                ) from None
            if codec == "utf-8-sig":
                return text, codec, "encoding: utf-8 (byte-order mark removed)"
            return text, codec, f"encoding: {codec} (from its byte-order mark)"

    nul = data.find(b"\x00")
    if nul >= 0:
        detected = _detect_bomless_utf16(data)
        if detected is not None:
            utf16, decoded = detected
            return (
                decoded,
                utf16,
                f"encoding: {utf16} (no byte-order mark; detected from the pattern of NUL bytes)",
            )
        raise CorpusError(
            f"{display!r} looks binary, not text: it contains NUL bytes (first at byte {nul:,}) and is "
            "not UTF-16; choose a text file, or export the data as CSV"
        )

    try:
        return data.decode("utf-8"), "utf-8", "encoding: utf-8"
    except UnicodeDecodeError as err:
        utf8_error = err

    single_byte = _detect_single_byte(data)
    if single_byte is not None:
        return (
            data.decode(single_byte),
            single_byte,
            f"encoding: {single_byte} (the file is not valid UTF-8; detected from its bytes as Western "
            "single-byte text); pass encoding= (CLI: --encoding) if accented letters look wrong",
        )
    raise CorpusError(
        f"{display!r} is not valid UTF-8 ({_describe_bad_byte(data, utf8_error)}) and its encoding could "
        "not be detected with confidence; pass the file's encoding with encoding= (CLI: --encoding), "
        "e.g. 'cp1252', 'latin-1' or 'utf-16', or re-save the file as UTF-8"
    )


def _describe_bad_byte(data: bytes, err: UnicodeDecodeError) -> str:
    start = err.start
    line = data.count(b"\n", 0, start) + 1
    return f"invalid byte 0x{data[start]:02X} at byte {start:,} (line {line})"


def _check_magic(data: bytes, display: str) -> None:
    """Raises: CorpusError: ``data`` starts like a known binary file format."""
    if data.startswith(b"PAR1"):
        raise CorpusError(f"{display!r} is a Parquet file, not text; rename it to .parquet or pass format='parquet'")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise CorpusError(
                f"{display!r} looks binary, not text: it starts like {what}; export the data as "
                f"CSV, TSV, TXT, JSONL or Parquet"
            )


def _detect_bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """``("utf-16-le" or "utf-16-be", decoded text)`` when NUL bytes sit on one parity only, as
    in mostly-ASCII UTF-16 text, and the whole file decodes to printable text; else ``None``."""
    if len(data) % 2:
        return None
    sample = data[: 1 << 16]
    pairs = len(sample) // 2
    nul_even = sample[0::2].count(0)
    nul_odd = sample[1::2].count(0)
    if max(nul_even, nul_odd) < 0.2 * pairs or min(nul_even, nul_odd) > 0.05 * max(nul_even, nul_odd):
        return None
    codec = "utf-16-le" if nul_odd > nul_even else "utf-16-be"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    head = text[:20_000]
    printable = sum(ch.isprintable() or ch in "\t\n\r" for ch in head)
    if "\x00" in text or printable < 0.98 * len(head):
        return None
    return codec, text


def _detect_single_byte(data: bytes) -> str | None:
    """``"cp1252"`` or ``"latin-1"`` when invalid-UTF-8 ``data`` reads as Western
    single-byte text with confidence, else ``None``.

    Confident means: no control bytes; no byte undefined in cp1252; no valid UTF-8
    multi-byte sequences (a mostly-UTF-8 file with a few bad bytes is not guessed);
    high bytes are at most half the file, come in short runs (accented letters,
    not whole words as in Cyrillic or CJK encodings) and mostly touch ASCII letters.
    """
    if data.translate(None, _CONTROL_BYTES) != data or data.translate(None, _CP1252_UNDEFINED) != data:
        return None
    n_high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if n_high == 0 or n_high > 0.5 * len(data):
        return None
    as_utf8 = data.decode("utf-8", errors="replace")
    if _DECODED_NON_ASCII.search(as_utf8):
        return None
    sample = data[: 1 << 20]
    runs = [m.span() for m in _HIGH_RUN.finditer(sample)]
    short = sum(end - start <= 2 for start, end in runs)
    touching = sum(
        (start > 0 and sample[start - 1] in _ASCII_LETTERS) or (end < len(sample) and sample[end] in _ASCII_LETTERS)
        for start, end in runs
    )
    if short < 0.9 * len(runs) or touching < 0.5 * len(runs):
        return None
    return "cp1252" if data.translate(None, _C1_BYTES) != data else "latin-1"


# --- format readers -------------------------------------------------------------------------------


def _unique_names(names: Iterable[object]) -> list[str]:
    """Header cells as column names: blanks become ``Unnamed: i``, repeats get ``.1``, ``.2``."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names):
        base = str(raw) if raw is not None and str(raw) != "" else f"Unnamed: {i}"
        candidate, k = base, 0
        while candidate in seen:
            k += 1
            candidate = f"{base}.{k}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _read_delimited(text: str, sep: str, fmt: str, display: str, cap_rows: int) -> _Table:
    """CSV/TSV with a header row; every cell a string. Blank lines are rows (of empty cells).

    Quoted fields are honoured (as pandas and spreadsheets write them). When that makes
    fields span lines in a TSV whose every line has as many tabs as the header, the file is
    plain TSV with stray quote characters: it is read again literally, quotes kept as text.
    Rows whose quoted fields hold line breaks are counted in a note, so a quote left
    unclosed never swallows rows silently.

    Raises:
        CorpusError: malformed (a row with more fields than the header, an unclosed
            quote), empty, header-only, or more than ``cap_rows`` rows.
    """
    lines = _LINE_BREAK.split(re.sub(r"(\r\n|\r|\n)\Z", "", text))
    raw = _parse_delimited(text, sep, fmt, display, cap_rows, csv.QUOTE_MINIMAL)
    notes: list[str] = []
    spanning = len(lines) - len(raw)
    tabs = {line.count("\t") for line in lines if line} if spanning > 0 and sep == "\t" else set()
    if len(tabs) == 1 and tabs != {0}:
        raw = _parse_delimited(text, sep, fmt, display, cap_rows, csv.QUOTE_NONE)
        notes.append("quote characters kept as text: read as plain TSV (no quoted fields), since every line "
                     "has the header's number of tabs")
    elif spanning > 0:
        notes.append(f"{len(raw) - 1:,} rows span {len(lines) - 1:,} lines: quoted fields hold {spanning:,} line "
                     "break(s); if that is unexpected, look for a quote left unclosed")
    if len(raw) <= 1:
        raise _header_only(display)
    if len(raw) - 1 > cap_rows:
        raise _too_many_rows(display, cap_rows)
    columns = _unique_names(raw.iloc[0].tolist())
    frame = raw.iloc[1:].reset_index(drop=True).astype(object)
    frame.columns = pd.Index(columns)
    return _Table(frame=frame, string_columns=list(columns), notes=notes)


def _parse_delimited(text: str, sep: str, fmt: str, display: str, cap_rows: int, quoting: int) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            nrows=cap_rows + 2,
            engine="c",
            quoting=quoting,
        )
    except pd.errors.EmptyDataError:
        raise CorpusError(f"{display!r} is empty: it has no header and no rows") from None
    except pd.errors.ParserError as err:
        detail = " ".join(str(err).split()).replace("Error tokenizing data. C error: ", "")
        raise CorpusError(
            f"{display!r} is not valid {fmt.upper()}: {detail}; quote fields that contain the separator, "
            'quotes or line breaks ("a, b"), or pass format= (--format) if it is not '
            f"{'comma' if sep == ',' else 'tab'}-separated"
        ) from None


def _read_txt(text: str, display: str, cap_rows: int) -> _Table:
    """One document per line (``\\n``, ``\\r\\n`` or ``\\r``), in a column ``text``.

    Raises:
        CorpusError: more than ``cap_rows`` lines.
    """
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > cap_rows:
        raise _too_many_rows(display, cap_rows)
    return _Table(frame=pd.DataFrame({"text": pd.Series(lines, dtype=object)}), string_columns=["text"])


def _jsonl_cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _read_jsonl(text: str, display: str, cap_rows: int) -> _Table:
    """One JSON object per line; blank lines are ignored (and noted).

    JSON ``null`` and NaN are missing cells; strings stay as they are; numbers,
    booleans, arrays and objects become their JSON text (``1.5``, ``true``, ``[1, 2]``).

    Raises:
        CorpusError: a line that is not valid JSON or not an object (naming the
            line number), no objects at all, or more than ``cap_rows`` rows.
    """
    records: list[dict[str, object]] = []
    keys: dict[str, None] = {}
    blank = 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            blank += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            hint = ""
            if number == 1 and line.lstrip().startswith("["):
                hint = " (this looks like one JSON array; JSONL needs one object per line)"
            raise CorpusError(
                f"line {number} of {display!r} is not valid JSON: {err.msg} at column {err.colno}{hint}; "
                'each line must be one JSON object like {"text": "..."}'
            ) from None
        if not isinstance(obj, dict):
            raise CorpusError(
                f"line {number} of {display!r} is not a JSON object (got {type(obj).__name__} "
                f'{_preview(line)}); each line must be one JSON object like {{"text": "..."}}'
            )
        if len(records) >= cap_rows:
            raise _too_many_rows(display, cap_rows)
        records.append(obj)
        for key in obj:
            keys.setdefault(key, None)
    if not records:
        raise CorpusError(f"{display!r} has no JSON objects (only blank lines); add one object per line")
    columns = {key: [_jsonl_cell(rec.get(key)) for rec in records] for key in keys}
    string_columns = [
        key for key in keys if all(isinstance(rec.get(key), str) for rec in records if rec.get(key) is not None)
    ]
    frame = pd.DataFrame({key: pd.Series(values, dtype=object) for key, values in columns.items()})
    notes = [f"ignored {blank:,} blank line{'s' if blank != 1 else ''}"] if blank else []
    return _Table(frame=frame, string_columns=string_columns, notes=notes)


def _preview(line: str, limit: int = 40) -> str:
    line = line.strip()
    return repr(line if len(line) <= limit else line[:limit] + "...")


def _arrow_cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _read_parquet(data: bytes, display: str, cap_rows: int) -> _Table:
    """Every column as strings; nulls and NaN are missing cells. Pandas' stored
    ``__index_level_N__`` columns are left out.

    Raises:
        CorpusError: not a valid Parquet file, no rows, or more than ``cap_rows`` rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet_file = pq.ParquetFile(io.BytesIO(data))
        n_rows = parquet_file.metadata.num_rows
        if n_rows > cap_rows:
            raise _too_many_rows(display, cap_rows)
        arrow_table = parquet_file.read()
    except (pa.ArrowException, OSError, ValueError) as err:
        detail = " ".join(str(err).split())
        raise CorpusError(
            f"{display!r} is not a valid Parquet file ({detail}); re-export it, or pass the right format= "
            "if it is not Parquet"
        ) from None
    if arrow_table.num_rows == 0:
        raise CorpusError(f"{display!r} is empty: the Parquet file has no rows")
    frame_columns: dict[str, pd.Series] = {}
    string_columns: list[str] = []
    names = _unique_names(arrow_table.column_names)
    for index, (raw_name, col_name) in enumerate(zip(arrow_table.column_names, names, strict=True)):
        if re.fullmatch(r"__index_level_\d+__", raw_name):
            continue
        column = arrow_table.column(index)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            string_columns.append(col_name)
        frame_columns[col_name] = pd.Series([_arrow_cell(v) for v in column.to_pylist()], dtype=object)
    return _Table(frame=pd.DataFrame(frame_columns), string_columns=string_columns)


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
        elif value.isspace():
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
            f"{chosen!r}; choose the column holding the texts with --text-column",
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
