"""The cluster tree: HDBSCAN's condensed tree and centroid linkage, cuts equal to fresh clusterings
at that level (small synthetic data, no UMAP), merge suggestions and the icicle figure."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from inbedder_core.analysis import summarize_clusters
from inbedder_core.cluster.clusterers import HDBSCANClusterer, KMeansClusterer
from inbedder_core.errors import InBedderError
from inbedder_core.hierarchy import (
    condensed_tree,
    cut,
    cut_labels,
    cut_merges,
    icicle_figure,
    linkage_tree,
    merge_suggestions,
)
from inbedder_core.results import NOISE, InstructionResult


def blobs(centres: list[tuple[float, float]], n: int = 40, spread: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, spread, size=(n, 2)) for c in centres]).astype(np.float32)


def result_of(labels: np.ndarray, answers: list[str] | None = None) -> InstructionResult:
    labels = np.asarray(labels, dtype=np.int64)
    return InstructionResult("Q?", answers, labels, labels.copy(), np.zeros((len(labels), 2), np.float32),
                             summarize_clusters(labels, [], answers))


# two pairs of blobs: four clusters at the finest level, two at the next
PAIRS = [(0, 0), (3, 0), (20, 0), (23, 0)]


def test_kmeans_centroid_tree_cut_equals_a_fresh_kmeans_at_that_level():
    Z = blobs([(0, 0), (10, 0), (0, 10)], n=50)
    fine = KMeansClusterer(k=6, random_state=0).fit_predict(Z)
    tree = linkage_tree(result_of(fine), Z)
    assert tree.source == "centroid-linkage" and sorted(tree.leaves()) == list(range(6))
    coarse = cut_labels(result_of(fine), tree, 3)
    fresh = KMeansClusterer(k=3, random_state=0).fit_predict(Z)
    assert adjusted_rand_score(fresh, coarse) == 1.0
    assert len(set(coarse.tolist())) == 3 and set(coarse.tolist()) <= set(fine.tolist())  # ids kept
    assert adjusted_rand_score(fine, cut_labels(result_of(fine), tree, 6)) == 1.0  # the leaves themselves


def test_hdbscan_condensed_tree_cut_equals_a_fresh_hdbscan_at_the_coarser_level():
    Z = blobs(PAIRS, n=40, spread=0.4)
    clusterer = HDBSCANClusterer(min_cluster_size=15, cluster_selection_method="leaf")
    fine = clusterer.fit_predict(Z)
    assert len(set(fine.tolist()) - {NOISE}) == 4
    tree = condensed_tree(result_of(fine), clusterer.model_)
    assert tree.source == "hdbscan" and sorted(tree.leaves()) == [0, 1, 2, 3]
    coarse = cut_labels(result_of(fine), tree, 2)
    fresh = HDBSCANClusterer(min_cluster_size=60).fit_predict(Z)  # blobs of 40 cannot be clusters: pairs only
    both = (coarse != NOISE) & (fresh != NOISE)
    assert both.mean() > 0.8
    assert adjusted_rand_score(fresh[both], coarse[both]) == 1.0
    assert adjusted_rand_score(np.repeat([0, 1], 80)[both], coarse[both]) == 1.0
    assert (coarse[fine == NOISE] == NOISE).all()
    assert len(cut_merges(tree, 2)) == 2 and cut_merges(tree, 4) == []


def test_condensed_tree_refuses_edited_labels_and_cut_checks_its_range():
    Z = blobs(PAIRS, n=40, spread=0.4)
    clusterer = HDBSCANClusterer(min_cluster_size=15, cluster_selection_method="leaf")
    fine = clusterer.fit_predict(Z)
    merged = np.where(fine == 1, 0, fine)
    with pytest.raises(InBedderError, match="edited"):
        condensed_tree(result_of(merged), clusterer.model_)
    tree = linkage_tree(result_of(fine), Z)
    with pytest.raises(InBedderError, match="1 to 4"):
        cut(tree, 5)
    assert set(cut(tree, 1).values()) == {0}


def test_merge_suggestions_pair_close_clusters_sharing_answers():
    Z = blobs([(0, 0), (2, 0), (30, 0), (0, 60)], n=30, spread=0.3)
    labels = np.repeat([0, 1, 2, 3], 30)
    answers = (["card declined"] * 20 + ["card blocked"] * 10 + ["card declined"] * 15 + ["refused"] * 15
               + ["pin"] * 30 + ["card declined"] * 30)
    suggestions = merge_suggestions(result_of(labels, answers), Z)
    assert [(s.a, s.b) for s in suggestions][:1] in ([(0, 1)], [(1, 0)])
    assert all({s.a, s.b} != {0, 3} for s in suggestions)  # same answers, but far apart
    assert "card declined" in suggestions[0].examples_a + suggestions[0].examples_b
    texts = [f"doc {i}" for i in range(120)]
    no_answers = merge_suggestions(result_of(labels), Z, texts)
    assert [{s.a, s.b} for s in no_answers] == [{0, 1}] and no_answers[0].examples_a == ["doc 0", "doc 1", "doc 2"]


def test_icicle_has_every_cluster_and_escapes_names():
    Z = blobs([(0, 0), (10, 0), (0, 10)], n=20)
    labels = np.repeat([0, 1, 2], 20)
    tree = linkage_tree(result_of(labels), Z)
    fig = icicle_figure(tree, {0: "<b>bold</b>", 1: "one", 2: "two"})
    icicle = fig.data[0]
    assert "&lt;b&gt;bold&lt;/b&gt;" in icicle.labels and "one" in icicle.labels
    assert sum(v for v, p in zip(icicle.values, icicle.parents, strict=True) if p == "") == 60
