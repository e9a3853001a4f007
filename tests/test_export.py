"""Tests for inbedder_core.export: tables, CSV safety and round trips, Parquet, JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbedder_core.corpus import Corpus, LoadReport
from inbedder_core.errors import ExportError
from inbedder_core.export import (
    SUMMARY_COLUMNS,
    check_csv_cells,
    export_table,
    neutralize_cell,
    read_csv_export,
    run_payload,
    summary_table,
    to_jsonable,
    unneutralize_cell,
    write_csv,
    write_json,
    write_parquet,
)
from inbedder_core.results import ClusterSummary, InstructionResult

STARTERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A whole file in which every field is quoted: "..." fields (with "" for a quote), commas, CRLF rows.
ALL_QUOTED = re.compile(r'(?:"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*\r\n)*')

HOSTILE = [
    "=1+1",
    "+SUM(A1:A2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1)",
    "\t=1",
    "\rhidden",
    "'=already quoted",
    "''+two quotes",
    "'plain quote",
    "-1",
    "-0.5",
    "+3e5",
    "- 1",
    "-1 ",
    "-inf",
    'say "hi", then\r\nleave',
    "line1\nline2\rline3",
    "emoji 😀 and ünïcödé, 中文",
    "\ufeffstarts with a BOM character",
    "",
    " ",
]

# Text with many of the characters CSV and the neutralization care about.
TRICKY = st.text(alphabet=st.sampled_from(list("=+-@\t\r\n'\",; a1.eé😀\ufeff")), max_size=12)
ANY_TEXT = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20)
CELL = st.one_of(TRICKY, ANY_TEXT)


def make_corpus(texts: list[str], **extra: list[str]) -> Corpus:
    table = pd.DataFrame({"text": texts, **extra}, dtype="str")
    return Corpus(
        ids=[str(i + 1) for i in range(len(texts))],
        texts=list(texts),
        table=table,
        text_column="text",
        source="docs.csv",
        report=LoadReport(n_rows=len(texts) + 1, n_kept=len(texts), skipped={"empty text": 1}),
    )


def make_result(
    instruction: str, labels: list[int], answers: list[str] | None = None, noise_summary: bool = True
) -> InstructionResult:
    array = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    clusters = []
    for cluster_id in sorted(set(labels)):
        if cluster_id == -1 and not noise_summary:
            continue
        size = labels.count(cluster_id)
        clusters.append(
            ClusterSummary(
                cluster_id=cluster_id,
                size=size,
                share=size / n,
                name="unclustered" if cluster_id == -1 else f"name {cluster_id}",
                description="no cluster" if cluster_id == -1 else f"about {cluster_id}",
                keywords=[f"kw{cluster_id}a", f"kw{cluster_id}b"],
                top_answers=[(f"ans{cluster_id}", size), ("other", 1)],
                source="noise" if cluster_id == -1 else "llm",
            )
        )
    return InstructionResult(
        instruction=instruction,
        answers=answers,
        labels=array,
        raw_labels=array.copy(),
        coords=np.zeros((n, 2), dtype=np.float32),
        clusters=clusters,
        quality={"n_clusters": len([c for c in clusters if c.cluster_id != -1])},
        timings={"cluster": 0.5},
    )


@pytest.fixture
def corpus() -> Corpus:
    return make_corpus(["apples are red", "=cmd|'/C calc'!A0", "bananas\nare yellow"], topic=["a", "b", "c"])


def raw_cells(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


# --------------------------------------------------------------------------- export_table


def test_columns_for_one_instruction(corpus: Corpus) -> None:
    table = export_table(corpus, [make_result("Q1?", [0, -1, 0], answers=["x", "y", "z"])])
    assert list(table.columns) == [
        "doc_id",
        "text",
        "topic",
        "answer_1",
        "cluster_1",
        "label_1",
        "description_1",
        "x_1",
        "y_1",
    ]
    assert table["doc_id"].tolist() == ["1", "2", "3"]
    assert table["text"].tolist() == corpus.texts
    assert table["answer_1"].tolist() == ["x", "y", "z"]
    assert table["cluster_1"].dtype == np.int64
    assert table["cluster_1"].tolist() == [0, -1, 0]
    assert table["label_1"].tolist() == ["name 0", "Noise", "name 0"]
    assert table["description_1"].tolist() == ["about 0", "no cluster", "about 0"]
    assert isinstance(table.index, pd.RangeIndex)


def test_columns_for_three_instructions_in_order(corpus: Corpus) -> None:
    results = [
        make_result("first?", [0, 0, 1], answers=["a", "b", "c"]),
        make_result("second?", [1, 0, -1], answers=["d", "e", "f"]),
        make_result("third?", [2, 2, 2], answers=["g", "h", "i"]),
    ]
    table = export_table(corpus, results)
    expected = ["doc_id", "text", "topic"]
    for i in (1, 2, 3):
        expected += [f"answer_{i}", f"cluster_{i}", f"label_{i}", f"description_{i}", f"x_{i}", f"y_{i}"]
    assert list(table.columns) == expected
    assert table["cluster_2"].tolist() == [1, 0, -1]
    assert table["label_3"].tolist() == ["name 2"] * 3
    assert table["answer_2"].tolist() == ["d", "e", "f"]


def test_map_coordinates_are_exported_per_instruction_and_read_back_as_numbers(corpus: Corpus, tmp_path) -> None:
    result = make_result("Q?", [0, -1, 0])
    result.coords = np.array([[0.5, -1.25], [3.0, 2.0], [-0.125, 7.5]], dtype=np.float32)
    clash = make_corpus(["t1", "t2", "t3"], x_1=["a", "b", "c"])
    table = export_table(clash, [result])
    assert table["x_1"].dtype == np.float64 and table["x_1"].tolist() == [0.5, 3.0, -0.125]
    assert table["y_1"].tolist() == [-1.25, 2.0, 7.5]
    assert table["input_x_1"].tolist() == ["a", "b", "c"]  # an input column of that name is kept, renamed
    path = tmp_path / "labeled.csv"
    write_csv(table, path)
    back = read_csv_export(path, typed=True)
    assert back["x_1"].dtype == np.float64 and back["y_1"].tolist() == [-1.25, 2.0, 7.5]
    result.coords = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ExportError, match="map coordinates"):
        export_table(corpus, [result])


def test_summary_with_the_corpus_names_each_clusters_representative_documents() -> None:
    corpus = make_corpus([f"t{i}" for i in range(8)])
    result = make_result("Q?", [0, 0, 0, 0, 0, 1, 1, -1])
    result.coords = np.array([[0, 0], [1, 0], [5, 5], [-1, 0.5], [0.2, 0.1], [9, 9], [9.5, 9], [0.2, 0.1]],
                             dtype=np.float32)
    summary = summary_table([result], corpus, n_representatives=2)
    by_id = summary.set_index("cluster_id")
    assert by_id.loc[0, "representative_texts"] == "t4\nt0"  # the median (0.2, 0.1) itself, then the nearest
    assert by_id.loc[0, "representative_ids"] == "5; 1"
    assert sorted(by_id.loc[1, "representative_texts"].split("\n")) == ["t5", "t6"]
    assert by_id.loc[-1, "representative_texts"] == ""  # noise has no centre
    assert "representative_texts" not in summary_table([result]).columns


def test_noise_is_labelled_noise_even_without_a_noise_summary(corpus: Corpus) -> None:
    table = export_table(corpus, [make_result("Q?", [-1, 0, -1], noise_summary=False)])
    assert table["label_1"].tolist() == ["Noise", "name 0", "Noise"]
    assert table["cluster_1"].tolist() == [-1, 0, -1]
    assert table["description_1"].tolist() == ["", "about 0", ""]


def test_missing_answers_give_a_missing_answer_column(corpus: Corpus) -> None:
    table = export_table(corpus, [make_result("Q?", [0, 0, 0], answers=None)])
    assert "answer_1" in table.columns
    assert table["answer_1"].isna().all()


def test_input_column_named_like_an_export_column_is_renamed_not_overwritten() -> None:
    corpus = make_corpus(
        ["t1", "t2"],
        cluster_1=["user a", "user b"],
        input_cluster_1=["taken", "too"],
        doc_id=["d1", "d2"],
        label_3=["unrelated", "kept"],
    )
    table = export_table(corpus, [make_result("Q?", [0, -1])])
    assert list(table.columns) == [
        "doc_id",
        "text",
        "input_input_cluster_1",
        "input_cluster_1",
        "input_doc_id",
        "label_3",
        "answer_1",
        "cluster_1",
        "label_1",
        "description_1",
        "x_1",
        "y_1",
    ]
    assert table["input_input_cluster_1"].tolist() == ["user a", "user b"]
    assert table["input_cluster_1"].tolist() == ["taken", "too"]
    assert table["input_doc_id"].tolist() == ["d1", "d2"]
    assert table["doc_id"].tolist() == ["1", "2"]
    assert table["cluster_1"].tolist() == [0, -1]
    assert table["label_3"].tolist() == ["unrelated", "kept"]
    assert table.columns.is_unique
    payload = run_payload(corpus, [make_result("Q?", [0, -1])], model="m", fingerprint="f", parameters={}, timings={})
    assert payload["renamed_columns"] == {"cluster_1": "input_input_cluster_1", "doc_id": "input_doc_id"}


def test_an_id_column_means_no_doc_id() -> None:
    corpus = make_corpus(["t1", "t2"], id=["a", "b"], doc_id=["x", "y"])
    corpus.ids = ["a", "b"]  # as load_corpus does with a unique id column
    table = export_table(corpus, [make_result("Q?", [0, 0])])
    assert list(table.columns[:3]) == ["text", "id", "doc_id"]
    assert table["doc_id"].tolist() == ["x", "y"]


def test_export_rejects_inconsistent_results(corpus: Corpus) -> None:
    with pytest.raises(ExportError, match="shape"):
        export_table(corpus, [make_result("Q?", [0, 0])])
    with pytest.raises(ExportError, match="answers"):
        export_table(corpus, [make_result("Q?", [0, 0, 0], answers=["only one"])])
    result = make_result("Q?", [0, 1, 1])
    result.clusters = [c for c in result.clusters if c.cluster_id != 1]
    with pytest.raises(ExportError, match=r"\[1\]"):
        export_table(corpus, [result])
    result = make_result("Q?", [0, 1, 1])
    result.labels = result.labels.astype(np.float64)
    with pytest.raises(ExportError, match="dtype"):
        export_table(corpus, [result])


def test_export_does_not_modify_the_corpus_table(corpus: Corpus) -> None:
    before = corpus.table.copy()
    export_table(corpus, [make_result("Q?", [0, 0, 0])])
    pd.testing.assert_frame_equal(corpus.table, before)


# --------------------------------------------------------------------------- summary_table


def test_summary_table_rows_and_formats(corpus: Corpus) -> None:
    results = [make_result("first?", [0, -1, 0]), make_result("second?", [0, 1, 2])]
    summary = summary_table(results)
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["instruction_index"].tolist() == [1, 1, 2, 2, 2]
    assert summary["cluster_id"].tolist() == [-1, 0, 0, 1, 2]
    assert summary["name"].tolist() == ["Noise", "name 0", "name 0", "name 1", "name 2"]
    assert summary["instruction"].tolist()[:2] == ["first?", "first?"]
    first = summary.iloc[1]
    assert first["keywords"] == "kw0a; kw0b"
    assert first["top_answers"] == "ans0 (2); other (1)"
    assert first["size"] == 2
    assert math.isclose(first["share"], 2 / 3)
    assert first["name_source"] == "llm"
    assert summary["size"].dtype == np.int64 and summary["share"].dtype == np.float64


def test_summary_table_without_results_has_the_columns() -> None:
    summary = summary_table([])
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 0


# --------------------------------------------------------------------------- CSV


def hostile_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": pd.Series(HOSTILE, dtype="str"),
            "=HEADER": pd.Series(list(reversed(HOSTILE)), dtype="str"),
            "cluster_1": pd.Series([-1, 0, 1] * 7, dtype="int64"),
            "share": pd.Series([0.25, float("nan"), -1.5] * 7, dtype="float64"),
        }
    )


def test_csv_neutralizes_every_formula_cell_including_headers(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(hostile_frame(), path)
    rows = raw_cells(path)
    assert rows[0] == ["text", "'=HEADER", "cluster_1", "share"]
    for row in rows:
        for cell in row:
            if cell.startswith(STARTERS):
                assert PLAIN_NUMBER.fullmatch(cell), f"unneutralized cell {cell!r}"
    written = dict(zip(HOSTILE, [row[0] for row in rows[1:]], strict=True))
    assert written["=1+1"] == "'=1+1"
    assert written["-2+3+cmd|' /C calc'!A0"] == "'-2+3+cmd|' /C calc'!A0"
    assert written["\rhidden"] == "'\rhidden"
    assert written["'=already quoted"] == "''=already quoted"
    assert written["''+two quotes"] == "'''+two quotes"
    assert written["'plain quote"] == "'plain quote"
    assert written["-1"] == "-1"  # a plain number stays a number in a spreadsheet
    assert written["- 1"] == "'- 1"
    assert written["-inf"] == "'-inf"
    assert [row[2] for row in rows[1:4]] == ["-1", "0", "1"]


def test_csv_quotes_every_field(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(hostile_frame(), path)
    text = path.read_bytes().decode("utf-8")
    assert ALL_QUOTED.fullmatch(text), text[:200]
    assert text.startswith('"text","\'=HEADER","cluster_1","share"\r\n')
    assert '"0.25"' in text and '"-1"' in text and '""' in text


def test_csv_round_trip_of_hostile_text(tmp_path: Path) -> None:
    frame = hostile_frame()
    path = tmp_path / "out.csv"
    write_csv(frame, path)
    back = read_csv_export(path)
    assert list(back.columns) == list(frame.columns)
    assert back["text"].tolist() == HOSTILE
    assert back["=HEADER"].tolist() == list(reversed(HOSTILE))
    assert back["cluster_1"].tolist() == ["-1", "0", "1"] * 7
    assert back["share"].tolist() == ["0.25", "", "-1.5"] * 7


def test_csv_bom_only_with_excel(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": ["é"]})
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    write_csv(frame, plain)
    write_csv(frame, excel, excel=True)
    assert plain.read_bytes() == '"a"\r\n"é"\r\n'.encode()
    assert excel.read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    assert read_csv_export(excel).equals(read_csv_export(plain))
    assert read_csv_export(excel)["a"].tolist() == ["é"]


def test_csv_rejects_nul_naming_row_and_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["fine", "bad\x00byte"], "other": ["x", "y"]})
    path = tmp_path / "out.csv"
    with pytest.raises(ExportError, match=r"row 2 .*'text'.*NUL"):
        write_csv(frame, path)
    assert not path.exists()
    with pytest.raises(ExportError, match="column name"):
        write_csv(pd.DataFrame({"a\x00": ["x"]}), path)


def test_check_csv_cells_names_what_write_csv_would_refuse_without_writing() -> None:
    frame = pd.DataFrame({"text": ["fine", "bad\x00byte"], "n": [1, 2]}, index=[5, 7])
    with pytest.raises(ExportError, match=r"row 2 \(index 7\), column 'text' contains a NUL"):
        check_csv_cells(frame)
    with pytest.raises(ExportError, match="column name"):
        check_csv_cells(pd.DataFrame({"a\x00": ["x"]}))
    check_csv_cells(pd.DataFrame({"text": ["fine", None, "=1+1"], "n": [1.5, float("nan"), 3.0]}))


def test_export_table_csv_round_trip_and_typed(tmp_path: Path, corpus: Corpus) -> None:
    corpus.table["size"] = ["big", "small", "12"]
    results = [make_result("Q1?", [0, -1, 0], answers=["=1", "-x", "'@y"]), make_result("Q2?", [1, 1, 0])]
    table = export_table(corpus, results)
    path = tmp_path / "export.csv"
    write_csv(table, path)
    back = read_csv_export(path)
    assert list(back.columns) == list(table.columns)
    assert back["text"].tolist() == corpus.texts
    assert back["answer_1"].tolist() == ["=1", "-x", "'@y"]
    assert back["answer_2"].tolist() == ["", "", ""]  # missing answers come back empty
    assert back["cluster_1"].tolist() == ["0", "-1", "0"]
    typed = read_csv_export(path, typed=True)
    assert typed["cluster_1"].dtype == np.int64
    assert typed["cluster_1"].tolist() == [0, -1, 0]
    assert typed["cluster_2"].tolist() == [1, 1, 0]
    assert typed["size"].tolist() == ["big", "small", "12"]  # an input column that is not all integers


def test_summary_csv_typed_round_trip(tmp_path: Path) -> None:
    summary = summary_table([make_result("Q?", [0, -1, 0, 1])])
    path = tmp_path / "summary.csv"
    write_csv(summary, path)
    typed = read_csv_export(path, typed=True)
    for column in ("instruction_index", "cluster_id", "size"):
        assert typed[column].dtype == np.int64
        assert typed[column].tolist() == summary[column].tolist()
    assert typed["share"].tolist() == summary["share"].tolist()


def test_csv_write_errors_are_export_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="folder exists"):
        write_csv(pd.DataFrame({"a": ["x"]}), tmp_path / "missing" / "out.csv")
    with pytest.raises(ExportError, match="no columns"):
        write_csv(pd.DataFrame(index=range(3)), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_csv_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old content that is longer than the new one\n" * 10)
    write_csv(pd.DataFrame({"a": ["new"]}), path)
    assert read_csv_export(path)["a"].tolist() == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_read_errors_are_export_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        read_csv_export(tmp_path / "nope.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b'"a"\r\n"caf\xe9"\r\n')
    with pytest.raises(ExportError, match="not UTF-8"):
        read_csv_export(latin)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ExportError, match="empty"):
        read_csv_export(empty)


@given(text=CELL)
@settings(max_examples=200, deadline=None)
def test_neutralization_is_reversible_and_safe(text: str) -> None:
    written = neutralize_cell(text)
    assert unneutralize_cell(written) == text
    assert not written.startswith(STARTERS) or PLAIN_NUMBER.fullmatch(written)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(CELL, min_size=1, max_size=4, unique=True))
    n_rows = draw(st.integers(min_value=0, max_value=6))
    columns = {name: draw(st.lists(CELL, min_size=n_rows, max_size=n_rows)) for name in names}
    return pd.DataFrame(columns, dtype="str", columns=names)


@given(frame=frames(), excel=st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_csv_round_trip_loses_nothing(frame: pd.DataFrame, excel: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.csv"
        write_csv(frame, path, excel=excel)
        raw = path.read_bytes().decode("utf-8-sig")
        back = read_csv_export(path)
    assert ALL_QUOTED.fullmatch(raw)
    for row in csv.reader(io.StringIO(raw, newline="")):
        for cell in row:
            assert not cell.startswith(STARTERS) or PLAIN_NUMBER.fullmatch(cell)
    assert len(back) == len(frame)
    assert list(back.columns) == list(frame.columns)
    assert back.values.tolist() == frame.values.tolist()


# --------------------------------------------------------------------------- Parquet


def test_parquet_round_trip(tmp_path: Path) -> None:
    corpus = make_corpus(["a\x00nul", "😀\r\n'=x", "plain"], cluster_1=["u1", "u2", "u3"])
    table = export_table(corpus, [make_result("Q?", [0, -1, 1], answers=["x", "=y", "z"])])
    path = tmp_path / "out.parquet"
    write_parquet(table, path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table)
    assert back["text"].tolist()[0] == "a\x00nul"


def test_parquet_errors_are_export_errors(tmp_path: Path) -> None:
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ExportError, match="Parquet"):
        write_parquet(duplicated, tmp_path / "dup.parquet")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- JSON


def test_run_payload_is_json_serializable(tmp_path: Path, corpus: Corpus) -> None:
    result = make_result("Q?", [0, -1, 0], answers=["a", "b", "c"])
    # numpy scalars, as the analysis stages may leave them
    result.quality = {"n_clusters": np.int64(1), "silhouette": np.float32(0.5), "dbcv": float("nan")}  # type: ignore[dict-item]
    result.timings = {"encode": np.float64(1.25)}
    payload = run_payload(
        corpus,
        [result, make_result("Q2?", [1, 1, 1])],
        model="KomeijiForce/inbedder-roberta-large",
        fingerprint="abc123",
        parameters={"min_cluster_size": np.int64(5), "n_neighbors": 15, "max_tokens": 3, "noise": np.nan},
        timings={"encode": np.float32(2.5), "total": float("inf")},
        comparisons=pd.DataFrame({"a": [1], "b": [2], "ari": [np.float64(0.25)]}),
        gold_scores={"accuracy": np.float64(0.75), "per_class": np.array([1, 2])},
    )
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text) == payload
    assert payload["schema"] == "inbedder-explorer/run/1"
    assert payload["model"] == "KomeijiForce/inbedder-roberta-large"
    assert payload["fingerprint"] == "abc123"
    assert payload["parameters"] == {"min_cluster_size": 5, "n_neighbors": 15, "max_tokens": 3, "noise": None}
    assert type(payload["parameters"]["min_cluster_size"]) is int
    assert payload["timings"] == {"encode": 2.5, "total": None}
    first = payload["instructions"][0]
    assert first["index"] == 1 and first["instruction"] == "Q?"
    assert first["has_answers"] is True and payload["instructions"][1]["has_answers"] is False
    assert first["columns"] == {
        "answer": "answer_1",
        "cluster": "cluster_1",
        "label": "label_1",
        "description": "description_1",
    }
    assert first["quality"] == {"n_clusters": 1, "silhouette": 0.5, "dbcv": None}
    assert first["n_noise"] == 1 and first["n_clusters"] == 1
    assert [c["name"] for c in first["clusters"]] == ["Noise", "name 0"]
    assert first["clusters"][1]["top_answers"] == [{"answer": "ans0", "count": 2}, {"answer": "other", "count": 1}]
    assert payload["comparisons"] == [{"a": 1, "b": 2, "ari": 0.25}]
    assert payload["gold_scores"] == {"accuracy": 0.75, "per_class": [1, 2]}
    assert payload["corpus"]["load_report"]["n_kept"] == 3
    assert payload["corpus"]["load_report"]["skipped"] == {"empty text": 1}
    assert payload["corpus"]["n_documents"] == 3
    assert payload["renamed_columns"] == {}

    path = tmp_path / "run.json"
    write_json(payload, path)
    assert json.loads(path.read_text(encoding="utf-8")) == payload


def test_run_payload_defaults_and_refuses_credentials(corpus: Corpus) -> None:
    results = [make_result("Q?", [0, 0, 0])]
    payload = run_payload(corpus, results, model="m", fingerprint="f", parameters={}, timings={})
    assert payload["comparisons"] is None and payload["gold_scores"] is None
    for key in ("api_key", "OPENAI_API_KEY", "hf_token", "client_secret", "token", "openai_token", "auth_token_file"):
        with pytest.raises(ExportError, match="credential"):
            run_payload(corpus, results, model="m", fingerprint="f", parameters={key: "sk-1"}, timings={})
    with pytest.raises(ExportError, match="credential"):
        run_payload(corpus, results, model="m", fingerprint="f", parameters={"labeler": {"apiKey": "x"}}, timings={})


def test_data_that_mentions_passwords_is_not_mistaken_for_a_credential(corpus: Corpus) -> None:
    asks = ["Is it about a password reset?", "Which API key or secret is mentioned?"]
    results = [make_result(q, [0, 0, 0]) for q in asks]
    matrix = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=[f"1: {asks[0]}", f"2: {asks[1]}"],
                          columns=[f"1: {asks[0]}", f"2: {asks[1]}"])
    payload = run_payload(corpus, results, model="m", fingerprint="f", parameters={"labeler": "keywords"},
                          timings={}, comparisons={"ari": matrix})
    assert [i["instruction"] for i in payload["instructions"]] == asks
    assert payload["comparisons"]["ari"][0][f"1: {asks[0]}"] == 1.0


def test_write_json_writes_tables_as_records(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": np.array([1, 2]), "score": [0.5, np.nan], "name": ["ü", None]})
    path = tmp_path / "table.json"
    write_json(frame, path)
    assert json.loads(path.read_text(encoding="utf-8")) == [
        {"id": 1, "score": 0.5, "name": "ü"},
        {"id": 2, "score": None, "name": None},
    ]
    assert "ü" in path.read_text(encoding="utf-8")


def test_to_jsonable_rejects_unknown_types_with_their_path() -> None:
    assert to_jsonable({np.int64(3): (np.bool_(True), Path("x"))}) == {"3": [True, "x"]}
    with pytest.raises(ExportError, match=r"payload\['a'\]\[1\]"):
        to_jsonable({"a": [1, object()]})
    with pytest.raises(ExportError, match="JSON key"):
        to_jsonable({(1, 2): "tuple key"})


def test_csv_bytes_are_the_bytes_write_csv_writes(tmp_path):
    from inbedder_core.export import csv_bytes

    frame = pd.DataFrame({"text": ["=1+1", "plain", "line\nbreak", "-1"], "n": [1, 2, 3, -1]})
    for excel in (False, True):
        path = tmp_path / f"x{excel}.csv"
        write_csv(frame, path, excel=excel)
        assert csv_bytes(frame, excel=excel) == path.read_bytes()


def test_doc_id_is_added_when_the_id_column_was_not_used(tmp_path: Path) -> None:
    from inbedder_core.corpus import load_corpus

    path = tmp_path / "dup-ids.csv"
    path.write_text("id,text\n7,alpha\n7,beta\n8,gamma\n", encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.ids == ["1", "2", "3"]  # the id column repeats, so row numbers are the ids
    frame = export_table(corpus, [make_result("Q?", [0, 0, 1])])
    assert frame["doc_id"].tolist() == ["1", "2", "3"] and frame["id"].tolist() == ["7", "7", "8"]
    unique = tmp_path / "ids.csv"
    unique.write_text("id,text\na,alpha\nb,beta\n", encoding="utf-8")
    assert "doc_id" not in export_table(load_corpus(unique), [make_result("Q?", [0, 1])]).columns
