"""Placing new documents into a saved run (``placement``, ``living``): the fitted documents land in
their own clusters, edits are respected, changed files and other encoders are refused, drift is said.

One small synthetic corpus (four topics, the deterministic ``HashEncoder``), fitted once per module.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from inbedder_core.analysis import Analysis, AnalysisSettings, run_report, settings_from_record, settings_record
from inbedder_core.corpus import Corpus, LoadReport
from inbedder_core.edits import merge_edit, rename_edit, split_edit
from inbedder_core.encoder import HashEncoder
from inbedder_core.errors import RunError
from inbedder_core.export import export_table, summary_table
from inbedder_core.living import assign, assignment_table, open_run, save_living_run, sizes_with_new
from inbedder_core.placement import DRIFT_MESSAGE, PlacementError, check_fingerprint, load_placement
from inbedder_core.results import NOISE

Q = "What is it about?"
TOPICS = [["card", "declined", "payment", "refused", "blocked", "shop"],
          ["transfer", "pending", "arrive", "sent", "account", "bank"],
          ["pin", "forgot", "reset", "code", "change", "locked"],
          ["cash", "atm", "withdraw", "machine", "fee", "street"]]


def topic_corpus(n_per: int, seed: int, topics=TOPICS) -> Corpus:
    rng = np.random.default_rng(seed)
    texts, gold = [], []
    for number, words in enumerate(topics):
        for _ in range(n_per):
            texts.append(" ".join(rng.choice(words, 3, replace=False)))
            gold.append(number)
    table = pd.DataFrame({"text": texts, "gold": gold})
    return Corpus([f"d{seed}-{i}" for i in range(len(texts))], texts, table, "text", "topics.csv",
                  LoadReport(len(texts), len(texts)))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """``(corpus, encoder, result, run folder)`` of an HDBSCAN run and of a KMeans run."""
    root = tmp_path_factory.mktemp("runs")
    corpus, encoder = topic_corpus(40, 0), HashEncoder(dim=32)
    out = {}
    for name, settings in (("hdbscan", AnalysisSettings(random_state=0, min_cluster_size=8)),
                           ("kmeans", AnalysisSettings(random_state=0, k=4)),
                           # fitted on 100 of the 160 documents, the others placed (issue 15, bounded fits)
                           ("sampled", AnalysisSettings(random_state=0, min_cluster_size=8, fit_sample_above=100,
                                                        fit_sample_size=100))):
        analysis = Analysis(corpus, encoder, settings)
        result = analysis.run(Q)
        info, folder, note = save_living_run(corpus, [result], analysis, model="hash-encoder",
                                             settings=settings_record(settings, len(corpus)),
                                             fingerprint=dataclasses.asdict(encoder.fingerprint), root=root / name)
        assert note is None
        out[name] = (corpus, encoder, result, folder)
    return out


@pytest.mark.parametrize("algorithm", ["hdbscan", "kmeans", "sampled"])
def test_assigning_the_fitted_documents_reproduces_their_clusters(fitted, algorithm):
    corpus, encoder, result, folder = fitted[algorithm]
    assignment = assign(open_run(folder.parent.parent), corpus, encoder)  # the --save-run DIR finds the run
    placed = assignment.results[0]
    kept = result.labels != NOISE
    assert kept.mean() > 0.8
    assert (placed.labels[kept] == result.labels[kept]).mean() >= 0.99
    strength = assignment.placements[0].strength
    assert strength.shape == (len(corpus),) and np.isfinite(strength).all()
    if algorithm != "kmeans":
        assert ((strength >= 0) & (strength <= 1)).all()
    assert not assignment.drifts[0].drifted


def test_a_run_fitted_on_a_sample_says_so_and_clusters_every_document(fitted):
    from sklearn.metrics import v_measure_score

    corpus, _, result, folder = fitted["sampled"]
    assert any("random sample of 100 of 160 documents" in note for note in result.quality["notes"])
    assert result.timings["place"] > 0 and len(result.labels) == len(corpus)
    full = fitted["hdbscan"][2]
    assert v_measure_score(corpus.table["gold"], result.labels) > 0.8
    assert v_measure_score(corpus.table["gold"], result.labels) > v_measure_score(corpus.table["gold"],
                                                                                  full.labels) - 0.1
    reopened = settings_from_record(open_run(folder).saved.info.settings)
    assert (reopened.fit_sample_above, reopened.fit_sample_size) == (100, 100)
    assert settings_record(reopened, len(corpus))["effective"]["fitted_documents"] == 100


def test_new_documents_of_the_same_topics_score_like_the_fitted_ones(fitted):
    from sklearn.metrics import v_measure_score

    corpus, encoder, result, folder = fitted["hdbscan"]
    new = topic_corpus(15, 1)
    assignment = assign(open_run(folder), new, encoder)
    fitted_v = v_measure_score(corpus.table["gold"], result.labels)
    new_v = v_measure_score(new.table["gold"], assignment.results[0].labels)
    assert new_v > fitted_v - 0.1
    table = assignment_table(new, assignment)
    assert list(table.columns)[-8:] == ["answer_1", "cluster_1", "label_1", "description_1", "x_1", "y_1",
                                        "assigned_1", "placement_strength_1"]
    assert table["assigned_1"].all() and len(table) == len(new)


def test_documents_unlike_the_map_are_reported_as_drift(fitted):
    corpus, encoder, result, folder = fitted["hdbscan"]
    other = topic_corpus(20, 2, topics=[["weather", "rain", "cloud", "storm", "wind", "sun"],
                                        ["football", "goal", "match", "team", "score", "win"]])
    drift = assign(open_run(folder), other, encoder).drifts[0]
    assert drift.drifted and drift.new_share > drift.fitted_share
    assert DRIFT_MESSAGE in drift.describe()


def test_another_encoder_is_refused_naming_both(fitted):
    corpus, _, _, folder = fitted["hdbscan"]
    with pytest.raises(PlacementError, match=r"pattern: run .*, new documents .*\{input\}!"):
        assign(open_run(folder), corpus, HashEncoder(dim=32, pattern="{input}!"))
    with pytest.raises(PlacementError, match="model_id: run 'a', new documents 'b'"):
        check_fingerprint({"model_id": "a", "kind": "k", "pattern": "p", "dtype": "d"},
                          {"model_id": "b", "kind": "k", "pattern": "p", "dtype": "d"})
    baseline = {"model_id": "m", "kind": "sentence-transformers", "pattern": "p", "dtype": "d"}
    whole = dict(baseline, pooling="sentence-transformers;max_seq_length=256")
    document = dict(baseline, pooling="sentence-transformers;max_seq_length=256;document-tokens")
    with pytest.raises(PlacementError, match="pool_prompt=True"):
        check_fingerprint(whole, document)
    check_fingerprint(whole, dict(whole))


def test_a_changed_pickle_is_not_loaded(fitted, tmp_path):
    import shutil

    _, _, _, folder = fitted["kmeans"]
    copy = tmp_path / folder.parent.name / folder.name
    shutil.copytree(folder, copy)
    load_placement(copy)  # intact: loads
    pickle_file = copy / "placement" / "reducer_0.pkl"
    data = bytearray(pickle_file.read_bytes())
    data[-2] ^= 1
    pickle_file.write_bytes(bytes(data))
    with pytest.raises(PlacementError, match="SHA-256 differs"):
        load_placement(copy)
    (copy / "run.json").write_text(json.dumps({"schema": "something else"}), encoding="utf-8")
    with pytest.raises(PlacementError, match="not a saved run"):
        load_placement(copy)
    with pytest.raises(RunError, match="no saved run"):
        open_run(tmp_path / "empty")


def test_edits_survive_save_reopen_export_and_assignment(fitted, tmp_path):
    import shutil

    corpus, encoder, result, original = fitted["hdbscan"]
    folder = tmp_path / original.parent.name / original.name
    shutil.copytree(original, folder)
    run = open_run(folder)
    clusters = [c.cluster_id for c in run.results[0].clusters if c.cluster_id != NOISE]
    a, b = clusters[0], clusters[1]
    run.log.do(merge_edit(run.results[0], [a, b]))
    run.log.do(rename_edit(run.results[0], a, "Merged by hand"))
    run.save_edits()

    reopened = open_run(folder)
    edited = reopened.results[0]
    names = {c.cluster_id: c for c in edited.clusters}
    assert b not in names and names[a].name == "Merged by hand" and names[a].generated_name
    assert names[a].size == int(np.isin(result.labels, [a, b]).sum())
    table = export_table(corpus, reopened.results)
    assert set(table.loc[np.isin(result.labels, [a, b]), "label_1"]) == {"Merged by hand"}
    summary = summary_table(reopened.results)
    row = summary[summary["cluster_id"] == a].iloc[0]
    assert row["name"] == "Merged by hand" and row["generated_name"] == names[a].generated_name
    report = run_report(corpus, reopened.results, settings=AnalysisSettings(), model="m", fingerprint=None,
                        labeler="keywords", edits=reopened.log.as_json())
    assert [e["op"] for e in report["edits"]] == ["merge", "rename"]

    placed = assign(reopened, corpus, encoder).results[0]
    both = np.isin(result.labels, [a, b])
    assert (placed.labels[both] == a).mean() >= 0.99  # a merged cluster receives the documents of both parts
    assert b not in placed.labels
    assert {c.cluster_id: c.name for c in placed.clusters}[a] == "Merged by hand"
    sizes = sizes_with_new(edited, placed).set_index("cluster")
    assert sizes.loc[a, "fitted"] == names[a].size and sizes.loc[a, "new"] == int((placed.labels == a).sum())

    split = split_edit(edited, a, np.asarray(edited.coords))
    reopened.log.do(split)
    parts = set(reopened.results[0].labels[both].tolist())
    assert len(parts) == 2
    placed = assign(reopened, corpus, encoder).results[0]
    agree = (placed.labels[both] == reopened.results[0].labels[both]).mean()
    assert agree >= 0.9  # a split cluster's documents go to the part nearest on the map
