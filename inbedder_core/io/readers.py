"""Corpus readers, one per format (CSV/TSV, TXT, JSONL, Parquet): decoded text (or Parquet bytes)
to a ``_Table`` of string cells, with row caps and per-line error messages.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from inbedder_core.errors import CorpusError

from .corpus import MAX_BYTES_ENV, MAX_ROWS_ENV

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
MAX_COLUMNS = 10_000
"""Most columns a table may have (CSV/TSV header, JSONL field names, Parquet schema): a corpus needs a text
column and an id, and pandas takes kilobytes per column."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass
class _Table:
    """What a format reader hands back: every cell a ``str`` or ``None`` (missing)."""

    frame: pd.DataFrame
    string_columns: list[str]
    notes: list[str] = field(default_factory=list)
    encoding: str | None = None
    other_kinds: dict[str, str] = field(default_factory=dict)  # non-string Parquet columns: name -> type


def _too_many_rows(display: str, cap: int) -> CorpusError:
    return CorpusError(
        f"{display!r} has more than {cap:,} rows (the row cap); raise the cap with max_rows= "
        f"(CLI: --max-rows, or the {MAX_ROWS_ENV} environment variable) or load a sample of the file"
    )


def _header_only(display: str) -> CorpusError:
    return CorpusError(f"{display!r} is empty: it has a header but no data rows; add one document per row")


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


def _read_delimited(text: str, sep: str, fmt: str, display: str, cap_rows: int, cap_bytes: int) -> _Table:
    """CSV/TSV with a header row; every cell a string. Blank lines are rows (of empty cells).

    Quoted fields are honoured (as pandas and spreadsheets write them). When that makes
    fields span lines in a TSV whose every line has as many tabs as the header, the file is
    plain TSV with stray quote characters: it is read again literally, quotes kept as text.
    Rows whose quoted fields hold line breaks are counted in a note, so a quote left
    unclosed never swallows rows silently.

    The header is counted first (Python's ``csv``, which needs no buffer per column): more than
    ``MAX_COLUMNS`` columns is refused, and the header's width bounds how many rows are parsed,
    so a file of a few rows and a huge number of columns (``_cell_cap``) never becomes a table.

    Raises:
        CorpusError: malformed (a row with more fields than the header, an unclosed
            quote), empty, header-only, more than ``cap_rows`` rows, more than ``MAX_COLUMNS``
            columns, or more cells (rows x columns) than ``cap_bytes`` allows.
    """
    notes: list[str] = []
    width = _header_width(text, sep)
    if sep == "," and width == 1 and _semicolon_separated(text):
        sep, width = ";", _header_width(text, ";")
        notes.append(f"read as semicolon-separated, as spreadsheets in many locales save CSV: the header has no "
                     f"comma, and it and every line checked split into {width} fields at semicolons")
    nrows = _rows_to_parse(display, sep, width, cap_rows, cap_bytes)
    raw = _parse_delimited(text, sep, fmt, display, nrows, csv.QUOTE_MINIMAL)
    n_lines = _count_lines(text)
    spanning = n_lines - len(raw)
    if spanning > 0 and sep == "\t":
        lines = _LINE_BREAK.split(re.sub(r"(\r\n|\r|\n)\Z", "", text))
        tabs = {line.count("\t") for line in lines if line}
        del lines
    else:
        tabs = set()
    if len(tabs) == 1 and tabs != {0}:
        nrows = _rows_to_parse(display, sep, next(iter(tabs)) + 1, cap_rows, cap_bytes)  # quotes hid tabs
        raw = _parse_delimited(text, sep, fmt, display, nrows, csv.QUOTE_NONE)
        notes.append("quote characters kept as text: read as plain TSV (no quoted fields), since every line "
                     "has the header's number of tabs")
    elif spanning > 0:
        notes.append(f"{len(raw) - 1:,} rows span {n_lines - 1:,} lines: quoted fields hold {spanning:,} line "
                     "break(s); if that is unexpected, look for a quote left unclosed")
    if len(raw) <= 1:
        raise _header_only(display)
    if len(raw) - 1 > cap_rows:
        raise _too_many_rows(display, cap_rows)
    _check_cells(display, len(raw) - 1, raw.shape[1], cap_bytes, "columns")
    columns = _unique_names(raw.iloc[0].tolist())
    frame = raw.iloc[1:].reset_index(drop=True).astype(object)
    frame.columns = pd.Index(columns)
    return _Table(frame=frame, string_columns=list(columns), notes=notes)


def _semicolon_separated(text: str, checked: int = 1_000) -> bool:
    """Whether a CSV whose header is one comma-separated field is a semicolon-separated table: its header
    splits into 2 or more fields at semicolons and each of the first ``checked`` non-blank records into as
    many (a column of free text with semicolons in it varies)."""
    try:
        records = csv.reader(_split_lines(text), delimiter=";")
        widths = {len(record) for record in itertools.islice(records, checked) if record}
    except csv.Error:
        return False
    return len(widths) == 1 and widths != {1}


def _rows_to_parse(display: str, sep: str, width: int, cap_rows: int, cap_bytes: int) -> int:
    """Rows to parse of a table ``width`` columns wide: the header, rows up to the row and cell caps, and
    one past them to tell that a cap was passed.

    Raises:
        CorpusError: ``width`` is over ``MAX_COLUMNS`` (pandas' parser takes kilobytes per column: 1 MB of
            commas took 5 GB).
    """
    if width > MAX_COLUMNS:
        raise CorpusError(
            f"{display!r} has {width:,} columns in its header, more than {MAX_COLUMNS:,}; a corpus needs a text "
            f"column (and an id): keep only the columns needed, or pass format= (--format) if it is not "
            f"{'comma' if sep == ',' else 'tab'}-separated"
        )
    return min(cap_rows, _cell_cap(cap_bytes) // max(width, 1)) + 2


def _too_many_columns(display: str, what: str, noun: str) -> CorpusError:
    return CorpusError(f"{display!r} has more than {MAX_COLUMNS:,} {what}; a corpus needs a text column (and an "
                       f"id): keep only the {noun} needed")


def _header_width(text: str, sep: str) -> int:
    """Fields in the header record; when Python's ``csv`` refuses it (a field over its size limit), an upper
    bound: the separators on the first line, plus one."""
    try:
        return len(next(csv.reader(_split_lines(text), delimiter=sep), []))
    except csv.Error:
        first = _LINE_BREAK.search(text)
        return text.count(sep, 0, first.start() if first else len(text)) + 1


def _parse_delimited(text: str, sep: str, fmt: str, display: str, nrows: int, quoting: int) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            nrows=nrows,
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
    if _count_lines(text) > cap_rows:  # before splitting: a file of line breaks is a list of that many strings
        raise _too_many_rows(display, cap_rows)
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return _Table(frame=pd.DataFrame({"text": pd.Series(lines, dtype=object)}), string_columns=["text"])


def _jsonl_cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _read_jsonl(text: str, display: str, cap_rows: int, cap_bytes: int) -> _Table:
    """One JSON object per line; blank lines are ignored (and noted).

    JSON ``null`` and NaN are missing cells; strings stay as they are; numbers,
    booleans, arrays and objects become their JSON text (``1.5``, ``true``, ``[1, 2]``).

    Raises:
        CorpusError: a line that is not valid JSON or not an object (naming the
            line number), no objects at all, more than ``cap_rows`` rows or ``MAX_COLUMNS``
            distinct field names, or records whose
            fields make a table of more cells (rows x distinct field names) than ``cap_bytes``
            allows: lines that each name new fields would otherwise grow it quadratically.
    """
    records: list[dict[str, object]] = []
    keys: dict[str, None] = {}
    blank = 0
    for number, line in enumerate(_split_lines(text), start=1):
        if not line.strip():
            blank += 1
            continue
        try:
            obj = json.loads(line)
            if _SURROGATE_ESCAPE.search(line):
                _check_surrogates(obj, number, display)
        except RecursionError:
            raise _too_deep(number, display) from None
        except json.JSONDecodeError as err:
            hint = ""
            if number == 1 and line.lstrip().startswith("["):
                hint = " (this looks like one JSON array; JSONL needs one object per line)"
            elif "\r" in line.rstrip("\r"):
                hint = " (its lines end in a carriage return alone, \\r: re-save it with \\n line endings)"
            raise CorpusError(
                f"line {number} of {display!r} is not valid JSON: {err.msg} at column {err.colno}{hint}; "
                'each line must be one JSON object like {"text": "..."}'
            ) from None
        except ValueError:  # an integer longer than Python reads (sys.get_int_max_str_digits())
            raise CorpusError(
                f"line {number} of {display!r} holds a number of more than {sys.get_int_max_str_digits():,} "
                'digits, too long to read; write it as a string ("123...") or leave it out'
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
        if len(keys) > MAX_COLUMNS:  # a frame of a million columns took 0.7 GB per 200,000
            raise _too_many_columns(display, f"field names by line {number}", "fields")
    if not records:
        raise CorpusError(f"{display!r} has no JSON objects (only blank lines); add one object per line")
    _check_cells(display, len(records), len(keys), cap_bytes, "different field names")
    try:
        columns = {key: [_jsonl_cell(rec.get(key)) for rec in records] for key in keys}
    except RecursionError:
        raise _too_deep(None, display) from None
    string_columns = [
        key for key in keys if all(isinstance(rec.get(key), str) for rec in records if rec.get(key) is not None)
    ]
    frame = pd.DataFrame({key: pd.Series(values, dtype=object) for key, values in columns.items()})
    notes = [f"ignored {blank:,} blank line{'s' if blank != 1 else ''}"] if blank else []
    return _Table(frame=frame, string_columns=string_columns, notes=notes)


def _check_surrogates(obj: object, number: int, display: str) -> None:
    """Raises: CorpusError: ``obj`` holds a lone surrogate (a ``\\ud800`` escape without its pair), which no
    tokenizer, UTF-8 file or Parquet column can take."""
    found = _SURROGATE.search(json.dumps(obj, ensure_ascii=False))
    if found:
        raise CorpusError(
            f"line {number} of {display!r} holds the escape \\u{ord(found.group()):04x}, half of a UTF-16 "
            "surrogate pair without its other half, which is not a character; fix or remove the escape "
            "(a whole pair such as \\ud83d\\ude00 is one character)"
        )


def _split_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` split at ``\\n`` (a final empty one left out), one at a time, not as a list."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1


def _count_lines(text: str) -> int:
    """``len`` of ``_LINE_BREAK.split(text)`` without a final empty piece, without building the list."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks + (0 if text.endswith(("\n", "\r")) else 1)


def _cell_cap(cap_bytes: int) -> int:
    """Most cells (rows x columns) a table read under ``cap_bytes`` may have: ``_CELL_OVERHEAD`` bytes each
    within ``PARQUET_DECODE_FACTOR * cap_bytes``, as for Parquet (26 million at the default cap)."""
    return PARQUET_DECODE_FACTOR * cap_bytes // _CELL_OVERHEAD


def _check_cells(display: str, n_rows: int, n_columns: int, cap_bytes: int, what: str) -> None:
    """Raises: CorpusError: ``n_rows x n_columns`` is over ``_cell_cap(cap_bytes)``."""
    if n_rows * n_columns > _cell_cap(cap_bytes):
        raise CorpusError(
            f"{display!r} has {n_columns:,} {what} and at least {n_rows:,} rows: a table of more than "
            f"{_cell_cap(cap_bytes):,} cells, the most its size cap allows; keep only the columns needed (a text "
            f"column and an id), or raise the cap with max_bytes= (CLI: --max-bytes, or the {MAX_BYTES_ENV} "
            "environment variable)"
        )


def _too_deep(number: int | None, display: str) -> CorpusError:
    where = f"line {number} of {display!r}" if number is not None else f"a value in {display!r}"
    return CorpusError(f"{where} nests arrays or objects too deeply to read (Python's recursion limit); "
                       "flatten the record to a text field such as {\"text\": \"...\"}")


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


PARQUET_DECODE_FACTOR = 2
"""A Parquet file may decode to at most this many times the byte cap: at the default 200 MiB cap, 400 MiB
of text, which with one row group's Arrow data beside the Python strings stays under about 2 GB."""

_CELL_OVERHEAD = 16
"""Bytes counted per cell on top of its text, so a table of millions of tiny cells is bounded too."""


def _read_parquet(data: bytes, display: str, cap_rows: int, cap_bytes: int) -> _Table:
    """Every column as strings; nulls and NaN are missing cells. Pandas' stored
    ``__index_level_N__`` columns are left out.

    What is decoded is bounded, not only what is read: the uncompressed sizes in the file's
    metadata (each column chunk's ``total_uncompressed_size``) must fit in
    ``PARQUET_DECODE_FACTOR * cap_bytes`` before anything is read; then row groups are read one at a
    time with string columns kept dictionary-encoded, and the text each one decodes to (a
    dictionary value repeated in many rows counts every time) is added up before it becomes Python
    strings, so a small file of one highly compressed or endlessly repeated string is refused
    without being expanded. Binary, list and struct columns are read as text with a note.

    Raises:
        CorpusError: not a valid Parquet file, no rows, more than ``cap_rows`` rows or
            ``MAX_COLUMNS`` columns, or more decoded data than the cap allows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    cap_decoded = PARQUET_DECODE_FACTOR * cap_bytes
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        n_rows = meta.num_rows
        if meta.num_columns > MAX_COLUMNS:
            raise _too_many_columns(display, f"columns ({meta.num_columns:,})", "columns")
        if n_rows > cap_rows:
            raise _too_many_rows(display, cap_rows)
        declared = sum(meta.row_group(g).column(c).total_uncompressed_size
                       for g in range(meta.num_row_groups) for c in range(meta.num_columns))
        if declared > cap_decoded:
            raise _too_much_decoded(display, declared, cap_bytes, "its metadata says it decodes to")
        schema = meta.schema.to_arrow_schema()
        textual = [f.name for f in schema if _is_text_type(f.type) or pa.types.is_binary(f.type)
                   or pa.types.is_large_binary(f.type)]
        parquet_file = pq.ParquetFile(io.BytesIO(data), read_dictionary=textual)
        column_names = parquet_file.schema_arrow.names
        cells: list[list[str | None]] = [[] for _ in column_names]
        out_of_range: dict[str, None] = {}  # columns with dates or times Python cannot hold
        decoded = 0
        for group in range(parquet_file.num_row_groups):  # one row group's Arrow data alive at a time
            part = parquet_file.read_row_group(group)
            decoded += sum(_decoded_size(part.column(i)) for i in range(part.num_columns))
            if decoded > cap_decoded:
                raise _too_much_decoded(display, decoded, cap_bytes, "it decodes to at least")
            for i in range(part.num_columns):
                values = _python_cells(part.column(i), column_names[i], display, out_of_range)
                cells[i].extend(_arrow_cell(v) for v in values)
        kinds = [f.type.value_type if pa.types.is_dictionary(f.type) else f.type for f in parquet_file.schema_arrow]
    except (pa.ArrowException, OSError, ValueError, IndexError) as err:
        detail = " ".join(str(err).split())
        raise CorpusError(
            f"{display!r} is not a valid Parquet file ({detail}); re-export it, or pass the right format= "
            "if it is not Parquet"
        ) from None
    if not cells or not cells[0]:
        raise CorpusError(f"{display!r} is empty: the Parquet file has no rows")
    frame_columns: dict[str, pd.Series] = {}
    string_columns: list[str] = []
    other_kinds: dict[str, str] = {}
    names = _unique_names(column_names)
    for index, (raw_name, col_name) in enumerate(zip(column_names, names, strict=True)):
        if re.fullmatch(r"__index_level_\d+__", raw_name):
            continue
        kind = kinds[index]
        if _is_text_type(kind):
            string_columns.append(col_name)
        elif (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
              or pa.types.is_nested(kind)):
            other_kinds[col_name] = str(kind)
        frame_columns[col_name] = pd.Series(cells[index], dtype=object)
        cells[index] = []
    notes = [f"column {name!r} holds dates or times outside Python's range (years 1 to 9999): its cells are "
             "Arrow's text form, '<value out of range: N>' for those" for name in out_of_range]
    return _Table(frame=pd.DataFrame(frame_columns), string_columns=string_columns, notes=notes,
                  other_kinds=other_kinds)


def _python_cells(column: object, name: str, display: str, out_of_range: dict[str, None]) -> list[object]:
    """``column.to_pylist()``; text that is not valid UTF-8 (a damaged file) is the library's error. A
    date or time Python cannot hold (year 10000, a sentinel such as 2**31 days) makes the column Arrow's
    text of it, with ``name`` added to ``out_of_range``."""
    import pyarrow as pa

    try:
        return column.to_pylist()  # type: ignore[attr-defined]
    except UnicodeDecodeError as err:
        raise CorpusError(f"column {name!r} of {display!r} holds text that is not valid UTF-8 ({err.reason}); "
                          "the Parquet file is damaged or was written wrongly: re-export it") from None
    except OverflowError:
        try:
            text = column.cast(pa.string()).to_pylist()  # type: ignore[attr-defined]
        except pa.ArrowException:  # nested, e.g. a list of timestamps
            raise CorpusError(f"column {name!r} of {display!r} holds dates or times outside Python's range "
                              "(years 1 to 9999) inside lists or structs; re-export it with those values as "
                              "text, or without the column") from None
        out_of_range[name] = None
        return text


def _is_text_type(kind: object) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def _decoded_size(column: object) -> int:
    """Bytes of text the cells of one Arrow column become (dictionary values counted per use),
    plus ``_CELL_OVERHEAD`` per cell."""
    import pyarrow as pa
    import pyarrow.compute as pc

    assert isinstance(column, pa.ChunkedArray)
    total = _CELL_OVERHEAD * len(column)
    for chunk in column.chunks:
        if isinstance(chunk, pa.DictionaryArray):
            lengths = pc.binary_length(chunk.dictionary)
            total += int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0)
        elif _is_text_type(chunk.type) or pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type):
            total += int(pc.sum(pc.binary_length(chunk)).as_py() or 0)
        else:
            total += 2 * chunk.nbytes  # numbers, lists, structs: their text is about this long or shorter
    return total


def _too_much_decoded(display: str, n_bytes: int, cap_bytes: int, how: str) -> CorpusError:
    def _format_size(n: int) -> str:
        return f"{n / 2**20:,.1f} MiB ({n:,} bytes)"

    return CorpusError(
        f"{display!r} is a compressed Parquet file and {how} {_format_size(n_bytes)}, over "
        f"{PARQUET_DECODE_FACTOR} x the size cap ({_format_size(PARQUET_DECODE_FACTOR * cap_bytes)}); raise "
        f"the cap with max_bytes= (CLI: --max-bytes, or the {MAX_BYTES_ENV} environment variable) or load a "
        "sample of the file"
    )
