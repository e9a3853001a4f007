"""The pipeline: stages memoised per instruction, knobs re-cluster without re-embedding, tiny corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inbedder_core.analysis import (
    Analysis,
    AnalysisSettings,
    auto_min_cluster_size,
    compare_pair,
    compare_results,
    gold_scores,
    names_of,
    summarize_clusters,
)
from inbedder_core.corpus import Corpus, LoadReport, load_corpus
from inbedder_core.encoder import HashEncoder
from inbedder_core.errors import InBedderError
from inbedder_core.results import NOISE, ClusterName, InstructionResult

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "banking77.csv"
NEED = "What does the customer need?"
FEEL = "How does the customer feel?"


def make_corpus(texts: list[str]) -> Corpus:
    table = pd.DataFrame({"text": texts})
    return Corpus([str(i + 1) for i in range(len(texts))], list(texts), table, "text", "test",
                  LoadReport(len(texts), len(texts)))


@pytest.fixture(scope="module")
def sample() -> Corpus:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    keep = frame[frame["intent"].isin(sorted(frame["intent"].unique())[:6])]
    corpus = load_corpus(keep.to_csv(index=False).encode(), name="six-intents.csv")
    assert len(corpus) > 200
    return corpus


def test_run_gives_a_consistent_result(sample):
    analysis = Analysis(sample, HashEncoder(dim=48), AnalysisSettings(random_state=0))
    result = analysis.run(NEED)
    n = len(sample)
    assert result.labels.shape == (n,) and result.labels.dtype == np.int64
    assert result.coords.shape == (n, 2) and result.coords.dtype == np.float32
    assert sum(c.size for c in result.clusters) == n
    assert result.answers is not None and len(result.answers) == n
    ids = [c.cluster_id for c in result.clusters]
    assert sorted(ids) == sorted(set(result.labels.tolist()))
    if NOISE in ids:
        assert ids[-1] == NOISE  # noise listed last
    assert set(result.timings) >= {"embed", "reduce", "map", "cluster", "label"}
    assert result.quality["n_clusters"] == len([i for i in ids if i != NOISE])


def test_changing_knobs_reclusters_without_reembedding_or_reducing(sample):
    encoder = HashEncoder(dim=48)
    analysis = Analysis(sample, encoder, AnalysisSettings(random_state=0, min_cluster_size=15))
    said: list[str] = []
    first = analysis.run(NEED, stage=said.append)
    calls = encoder.calls
    session = analysis._states[NEED].session
    second = analysis.with_settings(min_cluster_size=40).run(NEED, stage=said.append)
    assert said[0] == f"embedded {len(sample)} documents (0 from cache)"
    assert f"reused the embeddings of {len(sample)} documents" in said[1:] and not any(
        s.startswith("embedded") for s in said[1:])
    third = analysis.with_settings(k=4).run(NEED)
    assert encoder.calls == calls and analysis.n_embeddings_ == 1
    assert session.n_reductions_ == 1 and session.n_maps_ == 1
    np.testing.assert_array_equal(first.coords, second.coords)
    assert set(third.labels.tolist()) <= {0, 1, 2, 3}
    assert second.quality["n_clusters"] <= first.quality["n_clusters"]
    analysis.with_settings(k=None, n_neighbors=5).run(NEED)
    assert session.n_reductions_ == 2  # a UMAP knob does recompute the reduction


def test_min_samples_is_fixed_so_hdbscan_trees_are_reused(sample):
    settings = AnalysisSettings(min_cluster_size=30)
    assert settings.effective_min_samples(1000) == 5
    assert AnalysisSettings(min_cluster_size=4).effective_min_samples(1000) == 4
    assert settings.as_dict(1000)["min_samples"] == 5
    analysis = Analysis(sample, HashEncoder(dim=48), AnalysisSettings(random_state=0, min_cluster_size=15))
    analysis.run(NEED)
    analysis.with_settings(min_cluster_size=25).run(NEED)
    assert len(list(Path(analysis._tree_cache).rglob("output.pkl"))) == 1


def test_instructions_are_embedded_once_each_and_compared(sample):
    encoder = HashEncoder(dim=48)
    analysis = Analysis(sample, encoder, AnalysisSettings(random_state=0))
    results = analysis.run_all([NEED, FEEL, NEED])
    assert analysis.n_embeddings_ == 2
    pairwise = compare_results(results)
    assert pairwise.ari.shape == (3, 3)
    assert pairwise.ari.iloc[0, 2] == pytest.approx(1.0)  # the same instruction twice agrees with itself
    pair = compare_pair(results[0], results[1])
    assert int(pair.contingency.to_numpy().sum()) == len(sample)
    scores = gold_scores(results, sample.table["intent"].tolist())
    assert [s["instruction_index"] for s in scores] == [1, 2, 3]
    assert all(0.0 <= s["v_measure"] <= 1.0 for s in scores)


@pytest.mark.parametrize("texts", [["only one"], ["one", "two"], ["a b", "c d", "e f"], ["same"] * 5])
def test_tiny_and_degenerate_corpora_give_a_valid_result(texts):
    result = Analysis(make_corpus(texts), HashEncoder(dim=8)).run(NEED)
    assert result.labels.shape == (len(texts),) and result.coords.shape == (len(texts), 2)
    assert np.isfinite(result.coords).all()
    assert sum(c.size for c in result.clusters) == len(texts)


def test_an_empty_instruction_is_a_clear_error():
    with pytest.raises(InBedderError, match="instruction is empty"):
        Analysis(make_corpus(["a", "b"]), HashEncoder(dim=8)).run("  ")


def test_an_instruction_with_a_nul_is_refused_before_embedding_not_at_export():
    analysis = Analysis(make_corpus(["a", "b"]), HashEncoder(dim=8))
    with pytest.raises(InBedderError, match=r"'Why\\x00\?' contains a NUL character"):
        analysis.run("Why\x00?")
    assert analysis.n_embeddings_ == 0


def test_summaries_count_answers_and_order_noise_last():
    labels = np.array([0, 0, 1, NOISE, 1, 1])
    names = [ClusterName(0, "zero", "d0"), ClusterName(1, "one", "d1"), ClusterName(NOISE, "Noise", "", source="noise")]
    answers = ["a", "a", "b", "x", "b", "c"]
    summaries = summarize_clusters(labels, names, answers)
    assert [s.cluster_id for s in summaries] == [1, 0, NOISE]
    assert summaries[0].top_answers[0] == ("b", 2) and summaries[0].share == pytest.approx(0.5)


def test_clusters_sharing_a_name_are_told_apart_by_their_id():
    labels = np.array([0, 0, 1, 1, 2, NOISE])
    names = [ClusterName(0, "card declined", ""), ClusterName(1, "card declined", ""), ClusterName(2, "refund", ""),
             ClusterName(NOISE, "Noise", "", source="noise")]
    summaries = summarize_clusters(labels, names, None)
    result = InstructionResult(instruction="q", answers=None, labels=labels, raw_labels=labels,
                               coords=np.zeros((6, 2), np.float32), clusters=summaries, quality={}, timings={})
    assert names_of(result) == {0: "card declined #0", 1: "card declined #1", 2: "refund", NOISE: "Noise"}
    rows = compare_pair(result, result).contingency.index.tolist()  # ids already lead there: plain names
    assert "0: card declined" in rows and "1: card declined" in rows and not any("#" in r for r in rows)


def test_auto_min_cluster_size_scales_and_is_bounded():
    assert auto_min_cluster_size(10) == 5 and auto_min_cluster_size(2999) == 18
    assert auto_min_cluster_size(22_500) == 50 and auto_min_cluster_size(50_000) == 75
    assert auto_min_cluster_size(1_000_000) == 100
    sizes = [auto_min_cluster_size(n) for n in range(0, 200_000, 997)]
    assert sizes == sorted(sizes)  # never shrinks as the corpus grows


def test_default_min_samples_is_5_for_small_clusters_10_for_large_and_never_above_the_size():
    for n, expected in ((2999, 5), (10_084, 5), (22_500, 10), (50_000, 10), (30, 5)):
        settings = AnalysisSettings()
        assert settings.effective_min_samples(n) == expected
        assert settings.effective_min_samples(n) <= settings.effective_min_cluster_size(n)
    assert AnalysisSettings(min_cluster_size=3).effective_min_samples(5000) == 3
    assert AnalysisSettings(min_samples=7).effective_min_samples(5000) == 7


class FlakyLabeler:
    """A deterministic labeler collaborator: fails (keyword-style fallback with errors_) the first ``fail`` calls."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls = 0
        self.errors_: list[str] = []

    def label(self, texts, labels, answers=None, instruction=None, *, vectors=None):
        self.calls += 1
        failed = self.calls <= self.fail
        self.errors_ = ["cluster 0: the endpoint answered 500"] if failed else []
        source = "keywords" if failed else "llm"
        return [ClusterName(int(c), f"{source} {c}", "", source=source) for c in sorted(set(labels.tolist()))]


def test_names_are_memoised_per_labeler_and_never_after_a_failure(sample):
    flaky = FlakyLabeler(fail=1)
    analysis = Analysis(sample, HashEncoder(dim=48), AnalysisSettings(random_state=0), labeler=flaky)
    first = analysis.run(NEED)
    assert first.quality["naming_errors"] == ["cluster 0: the endpoint answered 500"]
    second = analysis.run(NEED)  # the failure was not memoised: naming runs again, and succeeds
    assert flaky.calls == 2 and "naming_errors" not in second.quality
    assert all(c.source == "llm" for c in second.clusters)
    analysis.run(NEED)
    assert flaky.calls == 2  # a success is memoised
    analysis.labeler = FlakyLabeler(fail=0)  # a new labeler (e.g. another endpoint) names again
    analysis.run(NEED)
    assert analysis.labeler.calls == 1
    other = analysis.run(FEEL)
    assert "naming_errors" not in other.quality


def test_parse_instructions_and_settings_records():
    from inbedder_core.analysis import parse_instructions, settings_from_record, settings_record

    assert parse_instructions("  a?\n\nb?\na?\n") == ["a?", "b?"]
    with pytest.raises(InBedderError, match="at most 2 per run"):
        parse_instructions("a\nb\nc", max_instructions=2)
    settings = AnalysisSettings(n_neighbors=7, k=4)
    record = settings_record(settings, 100, naming_mode="LLM", device="cpu")
    assert record["naming_mode"] == "LLM" and record["effective"] == settings.as_dict(100)
    record["analysis"]["from_a_newer_version"] = 1
    assert settings_from_record(record) == settings
    assert settings_from_record({}) == AnalysisSettings()


def test_the_estimate_of_a_run_fitted_on_a_sample_counts_the_fit_on_the_sample_and_places_the_rest():
    from inbedder_core.analysis import describe_estimate, estimate_stages

    texts = [f"text {i}" for i in range(3000)]
    whole = estimate_stages(HashEncoder(), texts, 2)
    sampled = estimate_stages(HashEncoder(), texts, 2, fitted=500)
    assert whole["place"] == 0 and sampled["place"] > 0
    for stage in ("reduce", "map", "cluster"):
        assert 0 < sampled[stage] < whole[stage]
    assert sampled["total"] == pytest.approx(sum(v for k, v in sampled.items() if k != "total"))
    assert "place ~" in describe_estimate(sampled, 3000, "cpu")
    assert "place ~" not in describe_estimate(whole, 3000, "cpu")
