"""``inbedder_core.presentation``: the tables the app shows and the bytes it offers, without Streamlit."""

from __future__ import annotations

import io
import json

import pandas as pd
from test_export import make_corpus, make_result

from inbedder_core.analysis import AnalysisSettings
from inbedder_core.export import read_csv_export
from inbedder_core.presentation import (
    cluster_frame,
    document_frame,
    labeled_csv,
    map_html,
    report_json,
    summary_csv,
)


def _corpus_and_results():
    corpus = make_corpus(["my card was declined", "refund please", "card stolen"], intent=["a", "b", "a"])
    results = [make_result("What does the customer need?", [0, 1, 0], answers=["card", "refund", "card"]),
               make_result("How does the customer feel?", [0, -1, 0])]
    return corpus, results


def test_labeled_csv_is_the_cli_export_and_summary_has_a_row_per_cluster(tmp_path):
    corpus, results = _corpus_and_results()
    path = tmp_path / "labeled.csv"
    path.write_bytes(labeled_csv(corpus, results))
    table = read_csv_export(path)
    assert list(table["text"]) == corpus.texts
    assert {"cluster_1", "label_1", "answer_1", "cluster_2", "label_2"} <= set(table.columns)
    summary = pd.read_csv(io.BytesIO(summary_csv(results)), dtype=str)
    assert len(summary) == sum(len(r.clusters) for r in results)


def test_report_json_and_map_html_name_the_run():
    corpus, results = _corpus_and_results()
    report = json.loads(report_json(corpus, results, settings=AnalysisSettings(k=2), model="tiny", fingerprint=None,
                                    labeler="keywords", gold="intent"))
    assert report["model"] == "tiny" and len(report["instructions"]) == 2
    page = map_html(corpus, results[0]).decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") or "<html" in page[:500]
    assert "What does the customer need?" in page


def test_cluster_and_document_frames():
    corpus, results = _corpus_and_results()
    clusters = cluster_frame(results[0])
    assert list(clusters["cluster"]) == [0, 1] and list(clusters["size"]) == [2, 1]
    docs = document_frame(corpus, results[0], range(len(corpus)), "intent", search="CARD")
    assert list(docs["id"]) == ["1", "3"] and list(docs["intent"]) == ["a", "a"]
    assert list(document_frame(corpus, results[0], [1], None, search="")["cluster"]) == ["name 1"]
