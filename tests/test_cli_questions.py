"""``inbedder drill`` and ``inbedder stability`` (issue 13) end to end with the tiny random model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from inbedder_core.export import read_csv_export
from inbedder_core.results import NOT_APPLICABLE_NAME

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "banking77.csv"
NEED, FEEL = "What does the customer need?", "How does the customer feel?"


def inbedder(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENAI_API_KEY="")
    return subprocess.run([sys.executable, "-m", "inbedder_core.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    part = pd.concat([frame[frame["intent"] == name].head(25) for name in sorted(frame["intent"].unique())[:6]])
    part = pd.concat([part, pd.DataFrame({"id": [f"n{i}" for i in range(12)], "intent": "none",
                                          "text": [f"None of your business {i}" for i in range(12)]})])
    path = tmp_path_factory.mktemp("q") / "small.csv"
    part.to_csv(path, index=False)
    return path


def test_drill_into_clusters_twice_and_the_not_applicable_group(small, tiny_roberta, tmp_path):
    run = tmp_path / "run.csv"
    done = inbedder("cluster", str(small), "-i", NEED, "--model", str(tiny_roberta), "--k", "4", "--not-applicable",
                    "--out", str(run), "-q")
    assert done.returncode == 0, done.stderr
    table = read_csv_export(run, typed=True)
    report = json.loads(run.with_suffix(".json").read_text())
    assert report["parameters"]["not_applicable"] is True
    dna = table["label_1"] == NOT_APPLICABLE_NAME
    assert dna.sum() == report["instructions"][0]["quality"]["not_applicable"]
    assert (table.loc[dna, "cluster_1"] == -2).all()
    assert set(table.loc[~dna, "cluster_1"]) <= set(range(4))
    biggest = int(table.loc[~dna, "cluster_1"].value_counts().index[0])
    out = tmp_path / "drill.csv"
    done = inbedder("drill", str(run), "--question", "1", "--cluster", str(biggest), "-i", FEEL, "--out", str(out),
                    "--min-cluster-size", "5", "-q")
    assert done.returncode == 0, done.stderr
    sub = read_csv_export(out, typed=True)
    chosen = table[table["cluster_1"] == biggest]
    assert sub["text"].tolist() == chosen["text"].tolist() and sub["id"].tolist() == chosen["id"].tolist()
    assert {"answer_1", "cluster_1", "label_1", "description_1", "path", "intent"} <= set(sub.columns)
    assert sub["path"].str.startswith(f"{NEED} > cluster \"").all() and sub["path"].str.endswith(FEEL).all()
    assert json.loads(out.with_suffix(".json").read_text())["instructions"][0]["instruction"] == FEEL
    deeper = tmp_path / "deeper.csv"
    again = inbedder("drill", str(out), "--cluster", str(int(sub["cluster_1"].iloc[0])), "-i", "When?",
                     "--out", str(deeper), "--min-cluster-size", "3", "-q")
    if (sub["cluster_1"] == sub["cluster_1"].iloc[0]).sum() >= 10:
        assert again.returncode == 0, again.stderr
        assert read_csv_export(deeper)["path"].str.endswith(f"{FEEL} > cluster \"" + read_csv_export(deeper)
                                                             ["path"].iloc[0].split('cluster "')[-1]).all()
    else:
        assert again.returncode == 2 and "needs at least 10" in again.stderr
    bad = inbedder("drill", str(run), "--question", "3", "--cluster", "0", "-i", FEEL, "--out", str(out))
    assert bad.returncode == 2 and "--question 3 is out of range; the run has questions 1..1" in bad.stderr


def test_stability_prints_the_table_and_writes_the_report(small, tiny_roberta, tmp_path):
    out = tmp_path / "stability.json"
    done = inbedder("stability", str(small), "-i", NEED, "--rewording", NEED, "--rewording", "What is needed?",
                    "--model", str(tiny_roberta), "--k", "3", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert "best-match Jaccard" in done.stdout and "ARI" in done.stdout
    report = json.loads(out.read_text())
    assert report["rewordings"] == ["What is needed?"]  # the question itself is not a rewording
    assert len(report["clusters"]) == 3 and all(0 <= c["jaccard"] <= 1 for c in report["clusters"])
    assert len(report["document_share"]) == 162 and report["ari"][0][0] == 1.0
    column = read_csv_export(out.with_suffix(".csv"))
    assert {"stability", "cluster_stability", "cluster_1"} <= set(column.columns) and len(column) == 162


def test_drill_and_stability_refuse_to_write_onto_what_they_read(small, tmp_path):
    """As ``cluster`` and ``embed`` do (issue 20): checked before any work, the input left as it was."""
    run = tmp_path / "run.csv"
    run.write_bytes(small.read_bytes())
    before = run.read_bytes()
    done = inbedder("drill", str(run), "--cluster", "0", "-i", FEEL, "--out", str(run), "-q")
    assert done.returncode == 2 and "would overwrite" in done.stderr and "choose another output name" in done.stderr
    # stability's per-document CSV goes beside its report: run.json would put it onto run.csv
    done = inbedder("stability", str(run), "-i", NEED, "--out", str(tmp_path / "run.json"), "-q")
    assert done.returncode == 2 and "would overwrite" in done.stderr
    assert run.read_bytes() == before and not (tmp_path / "run.json").exists()
