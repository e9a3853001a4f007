"""Export: the per-document table, the cluster summary, and CSV / Parquet / JSON files.

Over the ~600-line guide: the table builders and the injection-safe writers share the cell rules.

The export table is the input table, untouched, plus six columns per instruction
(numbered from 1 in the order the instructions were given)::

    answer_<i>       the model's short answer (missing when the run produced none)
    cluster_<i>      int64 cluster id, -1 (``NOISE``) for noise
    label_<i>        the cluster's name; "Noise" for -1
    description_<i>  the cluster's description ("" for noise without a summary)
    x_<i>, y_<i>     float64 map coordinates of the document (the 2-D map the app draws)

and a ``doc_id`` column in front when the input has no ``id`` column.

Column names are a stable contract: these names always hold *our* columns. An input
column that already bears one of them is renamed, never overwritten: ``input_`` is
put in front of its name, repeatedly until the name is unique (``cluster_1`` ->
``input_cluster_1``; if that is also taken, ``input_input_cluster_1``). The column
keeps its position and its data. ``run_payload`` lists the renames under
``"renamed_columns"``. Re-clustering an exported file therefore works: the old
results move to ``input_*`` and the new ones take the standard names.

CSV files are for people with spreadsheets, so they are defended against formula
injection (OWASP "CSV Injection"): see ``write_csv``. ``read_csv_export`` undoes that
defence exactly, so a write/read round trip returns every text unchanged.

Every writer writes to a temporary file beside the target and renames it into place,
so a failed export never leaves a half-written file or clobbers an earlier one.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ExportError
from .io.corpus import Corpus
from .landmarks import N_REPRESENTATIVES, representative_documents
from .results import NOISE, NOISE_NAME, ClusterSummary, InstructionResult

"""``label_<i>`` (and the summary ``name``) of the noise bucket, cluster id -1."""

INPUT_PREFIX = "input_"
"""Put in front of an input column's name when it collides with an export column."""

SUMMARY_COLUMNS = (
    "instruction_index",
    "instruction",
    "cluster_id",
    "name",
    "description",
    "size",
    "share",
    "keywords",
    "top_answers",
    "name_source",
    "generated_name",  # edits (issue 14): the LLM/keyword name of a renamed cluster, else ""
    "interesting",  # False for a cluster marked "not interesting"
)

PAYLOAD_SCHEMA = "inbedder-explorer/run/1"

# A cell a spreadsheet would evaluate starts with one of these (OWASP CSV Injection).
_FORMULA_STARTERS = "=+-@\t\r"
# Cells that get a protective "'" on write: formula starters, and - so that the
# escaping can be undone exactly - any run of "'" followed by a formula starter.
_NEEDS_QUOTE = re.compile(f"'*[{re.escape(_FORMULA_STARTERS)}]")
# Cells whose protective "'" is removed on read: at least one "'" then a starter.
_QUOTED = re.compile(f"'+[{re.escape(_FORMULA_STARTERS)}]")
# Plain decimal numbers ("-1", "+2.5", "-.5", "-1e-05") are data, not formulas; they
# are written bare so that noise (-1) and negative values stay numbers in a spreadsheet.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_INT_TEXT = re.compile(r"-?[0-9]+")
_TYPED_INT_COLUMNS = re.compile(r"cluster_[0-9]+|cluster_id|instruction_index|size")
_TYPED_FLOAT_COLUMNS = re.compile(r"share|[xy]_[0-9]+")

# Key names that look like credentials: run files (run_payload) and saved runs (runs.save_run) refuse them.
_CREDENTIAL_KEY = re.compile(
    r"api[_-]?key|secret|passw(?:or)?d|authorization|^token$|(?:access|auth|bearer|api|hf|openai)[_-]?token",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- tables


def instruction_columns(index: int) -> tuple[str, str, str, str]:
    """The export column names of instruction ``index`` (1-based).

    >>> instruction_columns(2)
    ('answer_2', 'cluster_2', 'label_2', 'description_2')
    """
    return (f"answer_{index}", f"cluster_{index}", f"label_{index}", f"description_{index}")


def map_columns(index: int) -> tuple[str, str]:
    """The export columns of instruction ``index``'s map coordinates: ``('x_2', 'y_2')`` for 2."""
    return (f"x_{index}", f"y_{index}")


def export_table(corpus: Corpus, results: Sequence[InstructionResult]) -> pd.DataFrame:
    """One row per document: every input column, then four columns per instruction.

    Columns, left to right: ``doc_id`` (``corpus.ids``; only when they are not already the
    table's ``id`` column, e.g. no ``id`` column or one that was not unique), every column of
    ``corpus.table`` in its order, then for instruction ``i`` (1-based, in the order of
    ``results``) ``answer_i`` (str; all missing when ``answers`` is None), ``cluster_i``
    (int64, -1 for noise), ``label_i`` (str, the cluster name, ``"Noise"`` for -1) and
    ``description_i`` (str), ``x_i`` and ``y_i`` (float64, the document's place on the map).

    An input column whose name equals one of the added names is renamed by prefixing
    ``"input_"`` (repeated until unique); it keeps its position and data. Nothing is
    dropped or overwritten. The result has a 0..n-1 ``RangeIndex``.

    Raises:
        ExportError: the table, ids, answers or labels do not have one entry per
            document, labels are not integers, or a label has no cluster summary.
    """
    n_docs = len(corpus.texts)
    table = corpus.table
    if len(table) != n_docs or len(corpus.ids) != n_docs:
        raise ExportError(
            f"corpus {corpus.source!r} is inconsistent: {n_docs} texts, {len(corpus.ids)} ids and "
            f"{len(table)} table rows; they must be equal (rebuild the Corpus from its loader)"
        )
    add_doc_id = _needs_doc_id(corpus)
    renamed, _ = _plan_columns(list(table.columns), len(results), add_doc_id=add_doc_id)

    out = table.reset_index(drop=True).copy()
    out.columns = pd.Index(renamed)
    added: dict[str, pd.Series] = {}
    for index, result in enumerate(results, start=1):
        answer_col, cluster_col, label_col, description_col = instruction_columns(index)
        labels = _checked_labels(result, index, n_docs)
        answers = _checked_answers(result, index, n_docs)
        summaries = _summaries_by_id(result, index, labels)
        added[answer_col] = pd.Series(answers, dtype="str")
        added[cluster_col] = pd.Series(labels, dtype="int64")
        added[label_col] = pd.Series(
            [NOISE_NAME if label == NOISE else summaries[label].name for label in labels.tolist()],
            dtype="str",
        )
        added[description_col] = pd.Series(
            [summaries[label].description if label in summaries else "" for label in labels.tolist()],
            dtype="str",
        )
        coords = np.asarray(result.coords, dtype=np.float64)
        if coords.shape != (n_docs, 2):
            raise ExportError(f"instruction {index} has map coordinates of shape {coords.shape} for {n_docs} "
                              f"documents; expected ({n_docs}, 2) (rerun the instruction)")
        for axis, column in enumerate(map_columns(index)):
            added[column] = pd.Series(np.round(coords[:, axis], 5), dtype="float64")
    parts = [out]
    if added:
        parts.append(pd.DataFrame(added, index=out.index))
    result_frame = pd.concat(parts, axis=1) if len(parts) > 1 else out
    if add_doc_id:
        result_frame.insert(0, "doc_id", pd.Series(list(corpus.ids), dtype="str"))
    return result_frame


def renamed_input_columns(corpus: Corpus, n_instructions: int) -> dict[str, str]:
    """Input columns that ``export_table`` renames, as ``{old name: new name}``.

    With one instruction, an input column ``cluster_1`` gives ``{"cluster_1": "input_cluster_1"}``.
    """
    columns = list(corpus.table.columns)
    renamed, _ = _plan_columns(columns, n_instructions, add_doc_id=_needs_doc_id(corpus))
    return {str(old): str(new) for old, new in zip(columns, renamed, strict=True) if old != new}


def _needs_doc_id(corpus: Corpus) -> bool:
    """Whether the document ids are not already the table's ``id`` column (absent, or not unique)."""
    table = corpus.table
    return "id" not in table.columns or [str(v) for v in table["id"].tolist()] != list(corpus.ids)


def summary_table(results: Sequence[InstructionResult], corpus: Corpus | None = None,
                  n_representatives: int = N_REPRESENTATIVES) -> pd.DataFrame:
    """One row per (instruction, cluster), in the order of ``results`` and their ``clusters``.

    Columns: ``instruction_index`` (int64, 1-based), ``instruction`` (str), ``cluster_id``
    (int64), ``name`` (str; ``"Noise"`` for -1, as in ``label_i``), ``description`` (str),
    ``size`` (int64), ``share`` (float64), ``keywords`` (str, ``"; "``-joined),
    ``top_answers`` (str, ``"answer (count); ..."``), ``name_source`` (str: llm, keywords
    or noise), ``generated_name`` (str: the generated name of a cluster the analyst renamed, else
    ``""``) and ``interesting`` (bool: False when marked "not interesting"). No results give an
    empty table with these columns.

    With ``corpus``, two more columns name each cluster's representative documents (the
    ``n_representatives`` closest to its centre on the map, ``landmarks.representative_documents``;
    none for noise): ``representative_ids`` (``"; "``-joined ids) and ``representative_texts``
    (the texts, one per line).
    """
    rows: dict[str, list[Any]] = {name: [] for name in SUMMARY_COLUMNS}
    if corpus is not None:
        rows.update({"representative_ids": [], "representative_texts": []})
    for index, result in enumerate(results, start=1):
        for summary in result.clusters:
            rows["instruction_index"].append(index)
            rows["instruction"].append(result.instruction)
            rows["cluster_id"].append(int(summary.cluster_id))
            rows["name"].append(_display_name(summary))
            rows["description"].append(summary.description)
            rows["size"].append(int(summary.size))
            rows["share"].append(float(summary.share))
            rows["keywords"].append("; ".join(summary.keywords))
            rows["top_answers"].append("; ".join(f"{answer} ({int(count)})" for answer, count in summary.top_answers))
            rows["name_source"].append(summary.source)
            rows["generated_name"].append(summary.generated_name or "")  # edits (issue 14)
            rows["interesting"].append(bool(summary.interesting))
        if corpus is not None:
            central = representative_documents(result.coords, result.labels, n_representatives)
            for summary in result.clusters:
                docs = central.get(int(summary.cluster_id), [])
                rows["representative_ids"].append("; ".join(corpus.ids[i] for i in docs))
                rows["representative_texts"].append("\n".join(corpus.texts[i] for i in docs))
    dtypes = {"instruction_index": "int64", "cluster_id": "int64", "size": "int64", "share": "float64",
              "interesting": "bool"}
    return pd.DataFrame({name: pd.Series(values, dtype=dtypes.get(name, "str")) for name, values in rows.items()})


# --------------------------------------------------------------------------- CSV


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, excel: bool = False) -> None:
    """Write ``df`` as CSV: every field quoted, UTF-8, formula injection neutralized.

    - Header row = the column names; the index is not written.
    - Every field is quoted (``csv.QUOTE_ALL``); rows end with CRLF (RFC 4180). Newlines,
      CRs, quotes, commas and tabs inside a field are kept verbatim inside its quotes.
    - Encoding is plain UTF-8; ``excel=True`` adds a byte-order mark so that Excel detects
      UTF-8 (``read_csv_export`` accepts both).
    - Missing values (None, NaN, NA, NaT) are written as empty fields; other non-string
      values as ``str(value)``.
    - Neutralization, applied to every cell and to the header: a cell starting with
      ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'`` (OWASP CSV Injection).
      So that this can be undone exactly, a cell that starts with one or more ``'``
      followed by one of those characters gets one more ``'`` too. Exception: a plain
      decimal number (``-1``, ``+2.5``, ``-1e-05``) is written bare: a spreadsheet reads
      it as a number, not a formula, and noise (-1) must stay a number there.

    Raises:
        ExportError: ``df`` has no columns; a cell or column name contains NUL (``\\x00``),
            which CSV tools truncate or reject (the message names the row and column;
            remove the NUL or export Parquet/JSON, which keep it); the file cannot be
            written.
    """
    encoding = "utf-8-sig" if excel else "utf-8"
    text = _csv_text(df)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as handle:
            handle.write(text)


def csv_bytes(df: pd.DataFrame, *, excel: bool = False) -> bytes:
    """``df`` exactly as ``write_csv`` writes it, as bytes (for downloads).

    Raises:
        ExportError: as ``write_csv``.
    """
    return _csv_text(df).encode("utf-8-sig" if excel else "utf-8")


def check_csv_cells(df: pd.DataFrame) -> None:
    """Check, without writing, that ``write_csv`` can carry every column name and text cell of ``df``:
    a front end calls it on the input table before hours of work whose CSV would repeat it.

    Raises:
        ExportError: a column name or a string cell contains NUL (``\\x00``), named as ``write_csv`` names it.
    """
    header = [_cell_text(name) for name in df.columns]
    _check_header(header)
    for position in range(df.shape[1]):
        column = df.iloc[:, position]
        if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
            found = column.map(lambda value: isinstance(value, str) and "\x00" in value).to_numpy(dtype=bool)
            if found.any():
                row = int(found.argmax())
                raise _nul_in_cell(row, df.index[row], header[position])


def _check_header(header: list[str]) -> None:
    for position, name in enumerate(header, start=1):
        if "\x00" in name:
            raise ExportError(
                f"column name {name!r} (column {position}) contains a NUL character (\\x00), which CSV "
                "cannot carry; rename the column or export Parquet/JSON instead"
            )


def _nul_in_cell(row: int, index: Any, column: str) -> ExportError:
    index = index.item() if isinstance(index, np.generic) else index  # 7, not np.int64(7)
    return ExportError(
        f"row {row + 1} (index {index!r}), column {column!r} contains a NUL character (\\x00), which CSV "
        "cannot carry; remove it (text.replace('\\x00', '')) or export Parquet/JSON, which keep it"
    )


def _csv_text(df: pd.DataFrame) -> str:
    if df.shape[1] == 0:
        raise ExportError("nothing to write: the table has no columns")
    header = [_cell_text(name) for name in df.columns]
    _check_header(header)
    columns: list[list[str]] = []
    for position in range(df.shape[1]):
        texts = [_cell_text(value) for value in df.iloc[:, position].tolist()]
        for row, text in enumerate(texts):
            if "\x00" in text:
                raise _nul_in_cell(row, df.index[row], header[position])
        columns.append([neutralize_cell(text) for text in texts])
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([neutralize_cell(name) for name in header])
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue()




def read_csv_export(path: str | os.PathLike[str], *, typed: bool = False) -> pd.DataFrame:
    """Read a file written by ``write_csv`` back, undoing its neutralization.

    Every column comes back as ``str`` (empty fields as ``""``, never NaN), with the
    header and cells exactly as they were before ``write_csv``: one protective ``'`` is
    removed from any cell that starts with one or more ``'`` followed by ``=``, ``+``,
    ``-``, ``@``, tab or CR. A UTF-8 byte-order mark is accepted.
    Duplicate column names are kept as they are.

    ``typed=True`` converts, when every value parses, ``cluster_<i>``, ``cluster_id``,
    ``instruction_index`` and ``size`` to int64 and ``share``, ``x_<i>`` and ``y_<i>`` to float64; a column of
    those names with any other value (an input column that happens to share the name)
    stays ``str``.

    Raises:
        ExportError: the file cannot be read, is not UTF-8, is empty or is not CSV.
    """
    try:
        raw = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError as exc:
        raise ExportError(f"{os.fspath(path)!r} is empty; expected a CSV written by write_csv") from exc
    except UnicodeDecodeError as exc:
        raise ExportError(
            f"{os.fspath(path)!r} is not UTF-8 ({exc.reason} at byte {exc.start}); expected a CSV written by write_csv"
        ) from exc
    except (OSError, pd.errors.ParserError, ValueError) as exc:
        raise ExportError(f"cannot read {os.fspath(path)!r} as CSV: {exc}") from exc
    header = [unneutralize_cell(name) for name in raw.iloc[0].tolist()]
    body = raw.iloc[1:]
    frame = pd.DataFrame(
        {
            position: pd.Series([unneutralize_cell(text) for text in body.iloc[:, position].tolist()], dtype="str")
            for position in range(body.shape[1])
        }
    )
    frame.columns = pd.Index(header, dtype=object)
    if typed:
        frame = _typed(frame)
    return frame


def neutralize_cell(text: str) -> str:
    """``text`` as ``write_csv`` writes it: safe to open in a spreadsheet, reversible.

    >>> neutralize_cell("=HYPERLINK(1)"), neutralize_cell("'=x"), neutralize_cell("-1"), neutralize_cell("a")
    ("'=HYPERLINK(1)", "''=x", '-1', 'a')
    """
    if _NEEDS_QUOTE.match(text) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def unneutralize_cell(text: str) -> str:
    """Undo ``neutralize_cell``: ``unneutralize_cell(neutralize_cell(t)) == t`` for every ``t``."""
    if _QUOTED.match(text):
        return text[1:]
    return text


# --------------------------------------------------------------------------- Parquet and JSON


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``df`` to Parquet (pyarrow), without the index; dtypes and NUL characters are kept.

    Raises:
        ExportError: column names are duplicated or not strings, a column mixes types
            Parquet cannot store, or the file cannot be written.
    """
    with atomic_path(path) as tmp:
        try:
            df.to_parquet(tmp, index=False, engine="pyarrow")
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise ExportError(f"cannot write {os.fspath(path)!r} as Parquet: {exc}") from exc


def write_json(payload: Any, path: str | os.PathLike[str]) -> None:
    """Write ``payload`` as UTF-8 JSON (indented, non-ASCII kept, trailing newline).

    ``payload`` goes through ``to_jsonable`` first, so a DataFrame (at any depth) is
    written as records (a list of ``{column: value}``), numpy scalars and arrays become
    plain numbers and lists, and NaN / infinity become ``null``.

    Raises:
        ExportError: a value has no JSON form (the message gives its path), or the file
            cannot be written.
    """
    text = json_bytes(payload).decode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def json_bytes(payload: Any) -> bytes:
    """``payload`` exactly as ``write_json`` writes it, as UTF-8 bytes (for downloads).

    Raises:
        ExportError: a value has no JSON form (the message gives its path).
    """
    return (json.dumps(to_jsonable(payload), ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode("utf-8")


def to_jsonable(value: Any, where: str = "payload") -> Any:
    """``value`` as plain JSON types: dict (str keys), list, str, int, float, bool, None.

    numpy scalars -> int/float/bool; NaN, infinities, None, NA and NaT -> None; arrays,
    tuples and lists -> lists; DataFrames -> records; Series -> lists; dataclasses ->
    dicts; dates -> ISO 8601 strings; paths -> strings; integer keys -> strings.

    Raises:
        ExportError: a value or key of another type, named by its path in ``value``.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, pd.DataFrame):
        if not value.columns.is_unique:
            raise ExportError(f"{where}: a table with duplicate column names cannot be written as JSON records")
        names = [to_jsonable_key(name, where) for name in value.columns]
        return [
            {name: to_jsonable(cell, f"{where}[{row}][{name!r}]") for name, cell in zip(names, record, strict=True)}
            for row, record in enumerate(value.itertuples(index=False, name=None))
        ]
    if isinstance(value, (pd.Series, np.ndarray)):
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value.tolist())]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = to_jsonable_key(key, where)
            out[name] = to_jsonable(item, f"{where}[{name!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable({field.name: getattr(value, field.name) for field in dataclasses.fields(value)}, where)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ExportError(
        f"{where}: {type(value).__name__} value {value!r:.80} has no JSON form; "
        "convert it to str, a number, a list or a dict first"
    )


def to_jsonable_key(key: Any, where: str = "payload") -> str:
    """A JSON object key: strings as they are, integers (numpy too) as decimal strings.

    Raises:
        ExportError: any other key type.
    """
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return str(int(key))
    raise ExportError(f"{where}: key {key!r} of type {type(key).__name__} cannot be a JSON key; use a str")


def run_payload(
    corpus: Corpus,
    results: Sequence[InstructionResult],
    *,
    model: str,
    fingerprint: str,
    parameters: Mapping[str, Any],
    timings: Mapping[str, Any],
    comparisons: Any = None,
    gold_scores: Any = None,
) -> dict[str, Any]:
    """The JSON document ``inbedder cluster`` writes beside its CSV, already JSON-safe.

    Keys: ``schema`` (``"inbedder-explorer/run/1"``), ``model``, ``fingerprint`` (of the
    embedding cache), ``parameters``, ``timings`` (seconds per stage), ``corpus`` (source,
    text column, document count and the load report: rows read, kept, skipped by reason,
    duplicates, encoding, whether the text column was guessed, notes), ``instructions``
    (per instruction: 1-based ``index``, ``instruction``, ``has_answers``, the CSV
    ``columns`` holding it, ``n_clusters`` (noise excluded), ``n_noise``, ``quality``,
    ``timings`` and ``clusters`` with their names, descriptions, sizes, shares,
    keywords, ``top_answers`` as ``{"answer", "count"}`` and ``name_source``),
    ``renamed_columns`` (input columns renamed in the CSV, ``{old: new}``),
    ``comparisons`` and ``gold_scores`` (as given, ``null`` when not computed;
    DataFrames become records).

    The function takes no API key, and refuses to write one: a key anywhere in the
    document whose name looks like a credential (``api_key``, ``secret``, ``password``,
    ``hf_token``...) raises.

    Raises:
        ExportError: a value has no JSON form, or a credential-like key is present.
    """
    report = corpus.report
    instructions = []
    for index, result in enumerate(results, start=1):
        labels = np.asarray(result.labels)
        answer_col, cluster_col, label_col, description_col = instruction_columns(index)
        instructions.append(
            {
                "index": index,
                "instruction": result.instruction,
                "has_answers": result.answers is not None,
                "columns": {
                    "answer": answer_col,
                    "cluster": cluster_col,
                    "label": label_col,
                    "description": description_col,
                },
                "n_clusters": sum(1 for s in result.clusters if s.cluster_id != NOISE),
                "n_noise": int(np.count_nonzero(labels == NOISE)),
                "quality": result.quality,
                "timings": result.timings,
                "clusters": [
                    {
                        "cluster_id": summary.cluster_id,
                        "name": _display_name(summary),
                        "description": summary.description,
                        "size": summary.size,
                        "share": summary.share,
                        "keywords": list(summary.keywords),
                        "top_answers": [{"answer": answer, "count": count} for answer, count in summary.top_answers],
                        "name_source": summary.source,
                        "generated_name": summary.generated_name,  # edits (issue 14)
                        "interesting": summary.interesting,
                    }
                    for summary in result.clusters
                ],
            }
        )
    document = {
        "schema": PAYLOAD_SCHEMA,
        "model": model,
        "fingerprint": fingerprint,
        "parameters": parameters,
        "timings": timings,
        "corpus": {
            "source": corpus.source,
            "text_column": corpus.text_column,
            "n_documents": len(corpus.texts),
            "load_report": {
                "n_rows": report.n_rows,
                "n_kept": report.n_kept,
                "skipped": report.skipped,
                "n_duplicates": report.n_duplicates,
                "encoding": report.encoding,
                "text_column_guessed": report.text_column_guessed,
                "notes": report.notes,
            },
        },
        "instructions": instructions,
        "renamed_columns": renamed_input_columns(corpus, len(results)),
        "comparisons": comparisons,
        "gold_scores": gold_scores,
    }
    payload: dict[str, Any] = to_jsonable(document)
    credential = credential_key(payload["parameters"], "parameters")  # data (instructions, names) may say "password"
    if credential:
        raise ExportError(f"{credential} looks like a credential; the run file must never hold API keys "
                          "or secrets: remove it from the parameters before exporting")
    return payload


# --------------------------------------------------------------------------- helpers


def _plan_columns(input_columns: list[Any], n_instructions: int, *, add_doc_id: bool) -> tuple[list[Any], list[str]]:
    """(input column names after renaming, our added column names)."""
    ours = (["doc_id"] if add_doc_id else []) + [
        name for index in range(1, n_instructions + 1) for name in (*instruction_columns(index), *map_columns(index))
    ]
    reserved = set(ours)
    taken = set(input_columns) | reserved
    renamed: list[Any] = []
    for name in input_columns:
        if name in reserved:
            new = f"{INPUT_PREFIX}{name}"
            while new in taken:
                new = f"{INPUT_PREFIX}{new}"
            taken.add(new)
            renamed.append(new)
        else:
            renamed.append(name)
    return renamed, ours


def _checked_labels(result: InstructionResult, index: int, n_docs: int) -> np.ndarray:
    labels = np.asarray(result.labels)
    if labels.ndim != 1 or labels.shape[0] != n_docs:
        raise ExportError(
            f"instruction {index} ({result.instruction!r}): labels have shape {labels.shape}, "
            f"expected ({n_docs},), one per document"
        )
    if labels.dtype.kind not in "iu":
        raise ExportError(
            f"instruction {index} ({result.instruction!r}): labels have dtype {labels.dtype}, "
            "expected integers (int64, -1 for noise)"
        )
    return labels.astype(np.int64, copy=False)


def _checked_answers(result: InstructionResult, index: int, n_docs: int) -> list[str | None]:
    if result.answers is None:
        return [None] * n_docs
    if len(result.answers) != n_docs:
        raise ExportError(
            f"instruction {index} ({result.instruction!r}): {len(result.answers)} answers for "
            f"{n_docs} documents; expected one answer per document (or answers=None)"
        )
    return list(result.answers)


def _summaries_by_id(result: InstructionResult, index: int, labels: np.ndarray) -> dict[int, ClusterSummary]:
    summaries: dict[int, ClusterSummary] = {}
    for summary in result.clusters:
        summaries.setdefault(int(summary.cluster_id), summary)
    missing = sorted({int(x) for x in np.unique(labels)} - set(summaries) - {NOISE})
    if missing:
        raise ExportError(
            f"instruction {index} ({result.instruction!r}): cluster ids {missing} label documents but "
            f"have no cluster summary (summaries exist for {sorted(summaries)}); every cluster id "
            "needs a ClusterSummary"
        )
    return summaries


def _display_name(summary: ClusterSummary) -> str:
    return NOISE_NAME if summary.cluster_id == NOISE else summary.name


def _cell_text(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return ""
    return str(value)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for position, name in enumerate(frame.columns):
        values = frame.iloc[:, position].tolist()
        if not isinstance(name, str):
            continue
        if _TYPED_INT_COLUMNS.fullmatch(name) and all(_INT_TEXT.fullmatch(v) for v in values):
            out.isetitem(position, pd.Series([int(v) for v in values], dtype="int64"))
        elif _TYPED_FLOAT_COLUMNS.fullmatch(name):
            try:
                numbers = [float(v) for v in values]
            except ValueError:
                continue
            out.isetitem(position, pd.Series(numbers, dtype="float64"))
    return out


def credential_key(value: Any, where: str) -> str | None:
    """The path (``where['a'][0]['api_key']``) of the first key in ``value``, through nested mappings,
    lists and tuples, whose name looks like a credential; ``None`` when there is none."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}[{str(key)!r}]"
            if _CREDENTIAL_KEY.search(str(key)):
                return path
            found = credential_key(item, path)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = credential_key(item, f"{where}[{i}]")
            if found:
                return found
    return None


NAME_MAX = 255
"""Bytes a file name may have on the common file systems (ext4, APFS, NTFS in UTF-16 units)."""


def staging_path(target: str | os.PathLike[str], token: str) -> Path:
    """The hidden temporary file beside ``target`` that is written, then moved onto it:
    ``.{name}.{token}.tmp``, the name shortened so that it stays a valid file name (a target name near
    ``NAME_MAX`` bytes would otherwise fail only at its end, after all the work).

    Raises:
        ExportError: ``target``'s own name is longer than ``NAME_MAX`` bytes (so nothing is staged for it).
    """
    target = Path(target)
    if len(os.fsencode(target.name)) > NAME_MAX:
        raise ExportError(f"cannot write '{target.name[:40]}...': a name of {len(os.fsencode(target.name))} bytes, "
                          f"more than the {NAME_MAX} a file name may have; choose a shorter name")
    room = NAME_MAX - len(os.fsencode(f"..{token}.tmp"))
    name = os.fsencode(target.name)[:max(room, 1)].decode("utf-8", "ignore")  # never half a character
    return target.with_name(f".{name}.{token}.tmp")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``."""
    target = Path(path)
    tmp = staging_path(target, str(os.getpid()))
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"cannot write {os.fspath(target)!r}: {exc.strerror or exc}; check that the folder exists and is writable"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
