"""Tests of inbedder_core.clustering: reducers, clusterers, noise, quality, the stage-caching session.

Synthetic, well-separated Gaussian blobs (a few hundred points, dimension 32-48) keep the file
fast; UMAP is fitted on small inputs only (its numba compilation is paid once per process).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from inbedder_core import clustering
from inbedder_core.cluster.base import nearest_vote, row_vote
from inbedder_core.clustering import (
    ClusteringOutcome,
    ClusteringSession,
    HDBSCANClusterer,
    IdentityReducer,
    KMeansClusterer,
    NeighborGraph,
    PCAReducer,
    UMAPReducer,
    assign_noise,
    clustering_quality,
    configure_numba_cache,
)
from inbedder_core.errors import ClusteringError, InBedderError
from inbedder_core.results import NOISE


def blobs(n: int = 300, centers: int = 5, dim: int = 32, scale: float = 0.05, seed: int = 0):
    """Points around ``centers`` random unit vectors, float32, and their true labels."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    truth = np.arange(n) % centers
    X = c[truth] + rng.normal(scale=scale, size=(n, dim))
    return X.astype(np.float32), truth


@pytest.fixture(scope="module")
def blob_data():
    return blobs(n=300, centers=5, dim=32)


@pytest.fixture(scope="module")
def blob_reduced(blob_data):
    X, truth = blob_data
    return UMAPReducer(n_components=5, random_state=0).fit_transform(X), truth


# --------------------------------------------------------------------------- import and numba


def test_import_is_cheap_and_changes_nothing():
    code = (
        "import os, sys; before = dict(os.environ); import inbedder_core.clustering, inbedder_core.comparison; "
        "heavy = [m for m in ('umap', 'hdbscan', 'numba', 'sklearn', 'pynndescent') if m in sys.modules]; "
        "print(heavy, os.environ == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] True"


def test_configure_numba_cache_sets_the_folder_and_respects_the_user(tmp_path):
    code = (
        "import os, sys; from inbedder_core.clustering import configure_numba_cache; "
        "p = configure_numba_cache(sys.argv[1]); print(p, os.environ['NUMBA_CACHE_DIR'], os.path.isdir(p))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    target = tmp_path / "cache" / "numba"
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out == [str(target), str(target), "True"]

    # Without an explicit folder, a NUMBA_CACHE_DIR the user set wins over our default.
    code_default = (
        "import os; from inbedder_core.clustering import configure_numba_cache; "
        "print(configure_numba_cache(), os.environ['NUMBA_CACHE_DIR'])"
    )
    mine = tmp_path / "mine"
    out = subprocess.run(
        [sys.executable, "-c", code_default],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "NUMBA_CACHE_DIR": str(mine)},
    ).stdout.split()
    assert out == [str(mine), str(mine)]


def test_configure_numba_cache_default_is_under_the_user_cache(monkeypatch, tmp_path):
    # The function used by every umap import sets the variable when missing, under the user cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert clustering.default_numba_cache_dir() == tmp_path / "inbedder-explorer" / "numba"
    assert configure_numba_cache() is not None
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "inbedder-explorer" / "numba")


def test_warm_up_compiles_umap():
    # approximate=False: the NN-descent path would add 20-40 s of compilation to this file.
    seconds = clustering.warm_up(n_points=60, approximate=False)
    assert isinstance(seconds, float) and seconds >= 0
    assert "umap" in sys.modules


# --------------------------------------------------------------------------- reducers


def test_umap_reducer_shape_dtype_and_reproducible(blob_data):
    X, _ = blob_data
    a = UMAPReducer(n_components=5, random_state=0).fit_transform(X)
    b = UMAPReducer(n_components=5, random_state=0).fit_transform(X)
    assert a.shape == (300, 5) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    m = UMAPReducer(n_components=2, min_dist=0.1, random_state=0)
    coords = m.fit_transform(X)
    assert coords.shape == (300, 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    assert m.method_ == "umap" and m.init_ == "spectral" and m.n_neighbors_ == 15 and m.notes_ == []


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("n_components", [5, 2])
def test_umap_reducer_tiny_inputs_get_a_fixed_layout(n, n_components):
    X, _ = blobs(n=n, centers=1, dim=32, seed=n)
    reducer = UMAPReducer(n_components=n_components, random_state=0)
    out = reducer.fit_transform(X)
    assert out.shape == (n, n_components) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, UMAPReducer(n_components=n_components).fit_transform(X))
    assert reducer.method_ == "trivial" and reducer.notes_
    if n > 1:  # distinct points stay distinct
        assert len({tuple(row) for row in out}) == n


@pytest.mark.parametrize("n", [4, 6, 7, 12])
def test_umap_reducer_small_inputs_clamp_n_neighbors(n):
    X, _ = blobs(n=n, centers=2, dim=32, seed=n)
    reducer = UMAPReducer(n_components=5, n_neighbors=15, random_state=0)
    out = reducer.fit_transform(X)
    assert out.shape == (n, 5) and np.isfinite(out).all()
    assert reducer.method_ == "umap" and reducer.n_neighbors_ == n - 1
    assert any("n_neighbors lowered from 15" in note for note in reducer.notes_)
    assert reducer.init_ == ("spectral" if n > 6 else "random")


def test_umap_reducer_all_duplicates():
    X = np.tile(np.linspace(-1, 1, 32, dtype=np.float32), (40, 1))
    out = UMAPReducer(random_state=0).fit_transform(X)
    assert out.shape == (40, 5) and np.isfinite(out).all()


def test_pca_and_identity_reducers():
    X, _ = blobs(n=50, dim=32)
    pca = PCAReducer(n_components=5, random_state=0)
    out = pca.fit_transform(X)
    assert out.shape == (50, 5) and out.dtype == np.float32 and pca.n_components_ == 5
    # Fewer points than components: clamped, padded with zeros, said so.
    small = PCAReducer(n_components=5)
    out = small.fit_transform(X[:3])
    assert out.shape == (3, 5) and small.n_components_ == 3 and small.notes_
    assert np.all(out[:, 3:] == 0)
    assert PCAReducer(n_components=5).fit_transform(X[:1]).shape == (1, 5)
    ident = IdentityReducer().fit_transform(X.astype(np.float64))
    assert ident.dtype == np.float32
    np.testing.assert_array_equal(ident, X)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 8), np.float32), "0 rows"),
        (np.zeros(8, np.float32), "2-D"),
        (np.array([[0.0, 1.0], [np.nan, 1.0]], np.float32), "row 1"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_reducers_and_clusterers_reject_bad_input(bad, message):
    for stage in (UMAPReducer().fit_transform, PCAReducer().fit_transform, HDBSCANClusterer().fit_predict):
        with pytest.raises(ClusteringError, match=message):
            stage(bad)


def test_invalid_parameters_raise_clustering_error():
    X = np.eye(10, dtype=np.float32)
    with pytest.raises(ClusteringError, match="min_cluster_size=1"):
        HDBSCANClusterer(min_cluster_size=1).fit_predict(X)
    with pytest.raises(ClusteringError, match="k=0"):
        KMeansClusterer(k=0).fit_predict(X)
    with pytest.raises(ClusteringError, match="n_neighbors=1"):
        UMAPReducer(n_neighbors=1).fit_transform(X)
    with pytest.raises(ClusteringError, match="min_dist"):
        UMAPReducer(min_dist=2.0).fit_transform(X)
    with pytest.raises(ClusteringError, match="cluster_selection_method"):
        HDBSCANClusterer(cluster_selection_method="best").fit_predict(X)
    assert issubclass(ClusteringError, InBedderError)


def test_constructors_only_store_parameters():
    r = UMAPReducer(n_components=3, random_state=7)
    assert r.get_params() == {
        "n_components": 3, "n_neighbors": 15, "min_dist": 0.0, "metric": "cosine", "random_state": 7, "n_jobs": -1,
        "n_epochs": None, "init": "spectral", "pca_components": None, "backend": "umap",
    }
    assert not [k for k in vars(r) if k.endswith("_")]
    assert "random_state=7" in repr(r)
    assert HDBSCANClusterer(min_cluster_size=4).get_params()["min_cluster_size"] == 4


# --------------------------------------------------------------------------- clusterers


def test_blobs_recovered_by_hdbscan_and_kmeans(blob_reduced):
    Z, truth = blob_reduced
    hdb = HDBSCANClusterer(min_cluster_size=15)
    labels = hdb.fit_predict(Z)
    assert labels.dtype == np.int64 and labels.shape == (300,)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert hdb.fit(Z) is hdb and np.array_equal(hdb.labels_, labels)
    km = KMeansClusterer(k=5, random_state=0).fit_predict(Z)
    assert km.dtype == np.int64 and adjusted_rand_score(truth, km) > 0.9


def test_clusterers_are_reproducible(blob_reduced):
    Z, _ = blob_reduced
    np.testing.assert_array_equal(
        HDBSCANClusterer(min_cluster_size=10).fit_predict(Z), HDBSCANClusterer(min_cluster_size=10).fit_predict(Z)
    )
    np.testing.assert_array_equal(
        KMeansClusterer(k=7, random_state=3).fit_predict(Z), KMeansClusterer(k=7, random_state=3).fit_predict(Z)
    )


def test_fixed_random_state_gives_the_same_labels_twice_end_to_end(blob_data):
    X, _ = blob_data
    runs = [
        ClusteringSession(X[:120], reducer=UMAPReducer(random_state=1), map_reducer=IdentityReducer())
        .cluster(HDBSCANClusterer(min_cluster_size=8))
        .labels
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_hdbscan_tiny_inputs_give_one_cluster(n):
    Z, _ = blobs(n=n, centers=1, dim=5, seed=n)
    clusterer = HDBSCANClusterer(min_cluster_size=10)
    labels = clusterer.fit_predict(Z)
    assert labels.dtype == np.int64 and labels.shape == (n,)
    np.testing.assert_array_equal(labels, np.zeros(n, dtype=np.int64))
    assert clusterer.notes_
    if n > 1:
        assert clusterer.min_cluster_size_ == n
        assert any("min_cluster_size lowered from 10" in note for note in clusterer.notes_)


def test_hdbscan_min_cluster_size_above_n_is_clamped_and_noted():
    Z, _ = blobs(n=30, centers=2, dim=5, scale=0.01)
    clusterer = HDBSCANClusterer(min_cluster_size=100)
    labels = clusterer.fit_predict(Z)
    assert clusterer.min_cluster_size_ == 30 and clusterer.min_samples_ == 29
    assert set(np.unique(labels)) <= {NOISE, 0}
    assert any("min_cluster_size lowered from 100 to 30" in note for note in clusterer.notes_)


def test_hdbscan_explicit_min_samples_above_n_is_clamped_and_noted():
    Z, _ = blobs(n=30, centers=2, dim=5, scale=0.01)
    clusterer = HDBSCANClusterer(min_cluster_size=5, min_samples=50)
    labels = clusterer.fit_predict(Z)
    assert labels.shape == (30,) and clusterer.min_samples_ == 29
    assert clusterer.notes_[0] == "min_samples lowered from 50 to 29 (30 documents)"


def test_all_identical_points():
    Z = np.ones((50, 5), dtype=np.float32)
    h = HDBSCANClusterer(min_cluster_size=10)
    np.testing.assert_array_equal(h.fit_predict(Z), np.zeros(50, dtype=np.int64))
    assert any("identical" in note for note in h.notes_)
    km = KMeansClusterer(k=3, random_state=0)
    np.testing.assert_array_equal(km.fit_predict(Z), np.zeros(50, dtype=np.int64))
    assert km.k_ == 1 and km.notes_


@pytest.mark.parametrize("n", [1, 2, 3])
def test_kmeans_k_above_n_is_clamped(n):
    Z, _ = blobs(n=n, centers=n, dim=5, seed=n)
    km = KMeansClusterer(k=8, random_state=0)
    labels = km.fit_predict(Z)
    assert labels.dtype == np.int64 and km.k_ == n
    assert len(np.unique(labels)) == n
    assert km.notes_ and "k lowered from 8" in km.notes_[0]


def test_clusterers_swap_in_a_session(blob_data):
    X, truth = blob_data
    session = ClusteringSession(X, reducer=PCAReducer(n_components=5, random_state=0), map_reducer=PCAReducer(2))
    for clusterer in (HDBSCANClusterer(min_cluster_size=15), KMeansClusterer(k=5, random_state=0)):
        outcome = session.cluster(clusterer)
        assert adjusted_rand_score(truth, outcome.labels) > 0.9
    assert session.coords().shape == (300, 2)


# --------------------------------------------------------------------------- noise


@pytest.fixture(scope="module")
def noisy():
    """Three tight 5-D blobs of 60 and 30 scattered points (labels from HDBSCAN on them)."""
    rng = np.random.default_rng(5)
    centers = np.array([[0, 0, 0, 0, 0], [10, 0, 0, 0, 0], [0, 10, 0, 0, 0]], dtype=np.float64)
    X = np.concatenate([c + rng.normal(scale=0.3, size=(60, 5)) for c in centers])
    X = np.concatenate([X, rng.uniform(-8, 18, size=(30, 5))]).astype(np.float32)
    labels = HDBSCANClusterer(min_cluster_size=15).fit_predict(X)
    return X, labels


def test_hdbscan_reports_noise(noisy):
    Z, labels = noisy
    n_noise = int((labels == NOISE).sum())
    assert n_noise > 0
    q = clustering_quality(Z, labels)
    assert q["n_clusters"] == 3
    assert q["n_noise"] == n_noise and q["noise_share"] == pytest.approx(n_noise / 210)
    assert q["all_noise"] is False
    assert sum(q["cluster_sizes"].values()) + n_noise == 210


def test_assign_noise_leaves_no_noise_and_keeps_the_rest(noisy):
    Z, labels = noisy
    before = labels.copy()
    assigned = assign_noise(Z, labels)
    np.testing.assert_array_equal(labels, before)  # input untouched
    assert assigned.dtype == np.int64 and not (assigned == NOISE).any()
    kept = labels != NOISE
    np.testing.assert_array_equal(assigned[kept], labels[kept])
    ids = np.unique(labels[kept])
    centroids = np.stack([Z[labels == c].mean(axis=0) for c in ids])
    for i in np.flatnonzero(~kept):
        assert assigned[i] == ids[np.argmin(np.linalg.norm(centroids - Z[i], axis=1))]


def test_session_keeps_raw_labels_when_assigning_noise(noisy):
    Z, labels = noisy
    session = ClusteringSession(Z, reducer=IdentityReducer(), map_reducer=PCAReducer(2))
    outcome = session.cluster(HDBSCANClusterer(min_cluster_size=15), assign_noise=True)
    assert isinstance(outcome, ClusteringOutcome)
    np.testing.assert_array_equal(outcome.raw_labels, labels)
    assert not (outcome.labels == NOISE).any()
    assert outcome.quality["n_noise"] == (labels == NOISE).sum() == outcome.quality["n_noise_assigned"]
    kept = session.cluster(HDBSCANClusterer(min_cluster_size=15))
    np.testing.assert_array_equal(kept.labels, kept.raw_labels)
    assert kept.quality["n_noise_assigned"] == 0


def test_all_noise_is_kept_and_reported():
    rng = np.random.default_rng(0)
    Z = rng.uniform(size=(100, 5)).astype(np.float32)
    clusterer = HDBSCANClusterer(min_cluster_size=60)
    session = ClusteringSession(Z, reducer=IdentityReducer(), map_reducer=IdentityReducer())
    outcome = session.cluster(clusterer, assign_noise=True)
    assert (outcome.raw_labels == NOISE).all() and (outcome.labels == NOISE).all()
    q = outcome.quality
    assert q["all_noise"] is True and q["n_clusters"] == 0 and q["noise_share"] == 1.0 and q["silhouette"] is None
    assert any("no cluster found" in note for note in q["notes"])
    assert any("HDBSCAN found no cluster" in note for note in q["notes"])
    np.testing.assert_array_equal(assign_noise(Z, outcome.raw_labels), outcome.raw_labels)


def test_assign_noise_rejects_mismatched_shapes():
    with pytest.raises(ClusteringError, match="3 entries but there are 4 points"):
        assign_noise(np.zeros((4, 2), np.float32), np.array([0, 0, -1]))
    with pytest.raises(ClusteringError, match="-2"):
        assign_noise(np.zeros((2, 2), np.float32), np.array([0, -2]))


# --------------------------------------------------------------------------- quality


def test_quality_figures_on_a_hand_made_clustering():
    rng = np.random.default_rng(1)
    Z = np.concatenate(
        [rng.normal(0, 0.1, size=(20, 3)), rng.normal(5, 0.1, size=(10, 3)), [[2.5, 2.5, 2.5], [9, 9, 9]]]
    ).astype(np.float32)
    labels = np.array([4] * 20 + [1] * 10 + [NOISE, NOISE])
    q = clustering_quality(Z, labels)
    assert q["n_points"] == 32 and q["n_clusters"] == 2 and q["n_noise"] == 2
    assert q["noise_share"] == pytest.approx(2 / 32)
    assert q["cluster_sizes"] == {1: 10, 4: 20}
    assert q["largest_cluster_share"] == pytest.approx(20 / 32)
    expected = silhouette_score(Z[:30], labels[:30])
    assert q["silhouette"] == pytest.approx(expected) and q["silhouette"] > 0.9
    assert q["silhouette_sample_size"] == 30

    one = clustering_quality(Z, np.where(labels == 1, 4, labels))
    assert one["n_clusters"] == 1 and one["silhouette"] is None and one["silhouette_sample_size"] == 0


def test_quality_samples_the_silhouette_reproducibly(blob_reduced):
    Z, truth = blob_reduced
    a = clustering_quality(Z, truth, silhouette_sample_size=100, random_state=3)
    b = clustering_quality(Z, truth, silhouette_sample_size=100, random_state=3)
    assert a["silhouette_sample_size"] == 100 and a["silhouette"] == b["silhouette"]
    assert any("sample of 100" in note for note in a["notes"])
    full = clustering_quality(Z, truth)
    assert full["silhouette_sample_size"] == 300
    assert abs(a["silhouette"] - full["silhouette"]) < 0.1


# --------------------------------------------------------------------------- session


def test_session_reuses_the_reduction_when_only_the_clusterer_changes(blob_data):
    X, truth = blob_data
    session = ClusteringSession(
        X,
        reducer=UMAPReducer(n_components=5, random_state=0),
        map_reducer=UMAPReducer(n_components=2, min_dist=0.1, random_state=0),
    )
    first = session.cluster(HDBSCANClusterer(min_cluster_size=10))
    assert session.n_reductions_ == 1 and first.timings["reduce"] > 0
    second = session.cluster(HDBSCANClusterer(min_cluster_size=25))
    third = session.cluster(KMeansClusterer(k=5, random_state=0))
    assert session.n_reductions_ == 1 and session.n_clusterings_ == 3
    assert second.timings["reduce"] == 0.0 and set(second.timings) == {"reduce", "cluster", "assign_noise", "quality"}
    assert adjusted_rand_score(truth, third.labels) > 0.9
    Z1 = session.reduced()
    assert session.reduced() is Z1

    coords = session.coords()
    assert coords.shape == (300, 2) and session.n_maps_ == 1
    assert session.coords() is coords and session.n_maps_ == 1 and session.n_reductions_ == 1

    # A different reduction configuration is computed (once), the old one is kept.
    session.reducer = UMAPReducer(n_components=5, n_neighbors=10, random_state=0)
    session.cluster(HDBSCANClusterer(min_cluster_size=10))
    session.cluster(HDBSCANClusterer(min_cluster_size=12))
    assert session.n_reductions_ == 2
    assert session.reduced(UMAPReducer(n_components=5, random_state=0)) is Z1
    assert session.n_reductions_ == 2


def test_session_shares_one_neighbour_graph_between_reduction_and_map(blob_data):
    """From ``shared_knn_min_points`` both UMAP fits reuse one neighbour graph."""
    X, truth = blob_data
    session = ClusteringSession(
        X,
        reducer=UMAPReducer(n_components=5, n_neighbors=10, random_state=0),
        map_reducer=UMAPReducer(n_components=2, n_neighbors=15, min_dist=0.1, random_state=0),
        shared_knn_min_points=100,
    )
    Z = session.reduced()
    coords = session.coords()
    assert session.n_knn_ == 1 and "knn" in session.timings_
    assert Z.shape == (300, 5) and coords.shape == (300, 2) and np.isfinite(coords).all()
    assert adjusted_rand_score(truth, session.cluster(HDBSCANClusterer(min_cluster_size=15)).labels) > 0.9
    below = ClusteringSession(X, reducer=UMAPReducer(n_components=5, n_neighbors=10, random_state=0),
                              shared_knn_min_points=1000)
    below.reduced()
    assert below.n_knn_ == 0


def test_umap_reducer_rejects_a_neighbour_graph_of_other_data(blob_data):
    X, _ = blob_data
    graph = NeighborGraph(np.zeros((10, 15), np.int32), np.zeros((10, 15), np.float32))
    with pytest.raises(ClusteringError, match=r"knn graph has shape \(10, 15\); expected \(300, >= 15\)"):
        UMAPReducer(random_state=0).fit_transform(X, knn=graph)


def test_session_on_tiny_corpora_end_to_end():
    for n in (1, 2, 3):
        X, _ = blobs(n=n, centers=1, dim=32, seed=n)
        session = ClusteringSession(X, reducer=UMAPReducer(random_state=0))
        outcome = session.cluster(HDBSCANClusterer(min_cluster_size=10), assign_noise=True)
        np.testing.assert_array_equal(outcome.labels, np.zeros(n, dtype=np.int64))
        assert session.coords().shape == (n, 2)
        assert outcome.quality["n_clusters"] == 1 and outcome.quality["notes"]


def test_session_rejects_bad_embeddings_and_bad_clusterer_output():
    with pytest.raises(ClusteringError, match="0 rows"):
        ClusteringSession(np.zeros((0, 4), np.float32))

    class Broken:
        def fit_predict(self, Z):
            return np.zeros(len(Z) - 1)

    session = ClusteringSession(np.eye(6, dtype=np.float32), reducer=IdentityReducer())
    with pytest.raises(ClusteringError, match="clusterer labels has 5 entries"):
        session.cluster(Broken())


def test_hdbscan_memory_reuses_the_tree_and_gives_the_same_labels(tmp_path):
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(6, 5)) * 8
    Z = (centers[rng.integers(0, 6, 600)] + rng.normal(size=(600, 5))).astype(np.float32)
    cached = tmp_path / "trees"
    for size in (10, 25, 40):
        with_memory = HDBSCANClusterer(min_cluster_size=size, min_samples=5, memory=str(cached)).fit_predict(Z)
        fresh = HDBSCANClusterer(min_cluster_size=size, min_samples=5).fit_predict(Z)
        np.testing.assert_array_equal(with_memory, fresh)
    stored = [p for p in cached.rglob("output.pkl")]
    assert len(stored) == 1  # one spanning tree, computed once, reused for every min_cluster_size


# --------------------------------------------------------------------------- speed features (issue 18)


def test_exact_neighbors_match_brute_force_and_put_each_point_first():
    from inbedder_core.cluster.reducers import exact_neighbors

    X, _ = blobs(n=257, centers=4, dim=24, seed=5)
    for metric in ("cosine", "euclidean"):
        idx, dist = exact_neighbors(X, 9, metric, block=50)
        assert idx.shape == (257, 9) and dist.dtype == np.float32
        np.testing.assert_array_equal(idx[:, 0], np.arange(257))
        assert (np.diff(dist, axis=1) >= -1e-6).all() and (dist >= 0).all()
        if metric == "cosine":
            A = X / np.linalg.norm(X, axis=1, keepdims=True)
            D = 1.0 - A @ A.T
        else:
            D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(D, -1.0)
        expected = np.sort(D, axis=1)[:, 1:9]
        np.testing.assert_allclose(dist[:, 1:], expected, atol=1e-5)
    with pytest.raises(ClusteringError, match="metric"):
        exact_neighbors(X, 5, "manhattan")


def test_same_seed_gives_identical_reduction_map_and_labels():
    X, _ = blobs(n=400, centers=6, dim=32, seed=2)

    def run():
        session = ClusteringSession(
            X, reducer=UMAPReducer(random_state=3),
            map_reducer=UMAPReducer(n_components=2, min_dist=0.1, random_state=3, init="reduction", n_epochs=50))
        labels = session.cluster(HDBSCANClusterer(min_cluster_size=10, min_samples=5)).labels
        return session.reduced(), session.coords(), labels

    (Z1, C1, L1), (Z2, C2, L2) = run(), run()
    np.testing.assert_array_equal(Z1, Z2)
    np.testing.assert_array_equal(C1, C2)
    np.testing.assert_array_equal(L1, L2)


def test_shared_neighbour_graph_gives_the_same_result_as_recomputing_it():
    X, _ = blobs(n=300, centers=5, dim=32, seed=4)
    shared = ClusteringSession(X, reducer=UMAPReducer(random_state=0),
                               map_reducer=UMAPReducer(n_components=2, min_dist=0.1, random_state=0))
    Z, C = shared.reduced(), shared.coords()
    assert shared.n_knn_ == 1
    alone = ClusteringSession(X, reducer=UMAPReducer(random_state=0),
                              map_reducer=UMAPReducer(n_components=2, min_dist=0.1, random_state=0),
                              shared_knn_min_points=10**9)
    np.testing.assert_array_equal(Z, alone.reduced())
    np.testing.assert_array_equal(C, alone.coords())
    assert alone.n_knn_ == 0
    # and the same as UMAP computing its own (exact) neighbours below its approximation threshold
    own = UMAPReducer(random_state=0)
    own_knn = own.nearest_neighbors(X)
    np.testing.assert_array_equal(Z, UMAPReducer(random_state=0).fit_transform(X, knn=own_knn))


def test_map_from_the_reduction_starts_there_and_is_memoised_with_it():
    X, truth = blobs(n=300, centers=5, dim=32, seed=6)
    map_reducer = UMAPReducer(n_components=2, min_dist=0.1, random_state=0, init="reduction", n_epochs=30)
    session = ClusteringSession(X, reducer=UMAPReducer(random_state=0), map_reducer=map_reducer)
    coords = session.coords()
    assert session.n_reductions_ == 1 and session.n_maps_ == 1 and map_reducer.init_ == "reduction"
    assert coords.shape == (300, 2) and np.isfinite(coords).all()
    assert adjusted_rand_score(truth, KMeansClusterer(k=5, random_state=0).fit_predict(coords)) > 0.9
    session.reduced()
    assert session.n_reductions_ == 1 and session.coords() is coords
    # another clustering reduction gives another map
    other = session.coords(reducer=UMAPReducer(n_neighbors=10, random_state=0))
    assert other is not coords and session.n_maps_ == 2
    # without coordinates to start from, init="reduction" falls back to a spectral start
    alone = UMAPReducer(n_components=2, random_state=0, init="reduction", n_epochs=30)
    alone.fit_transform(X)
    assert alone.init_ == "spectral"
    with pytest.raises(ClusteringError, match="init"):
        UMAPReducer(init="umap").fit_transform(X)


def test_pca_before_umap_projects_wide_embeddings():
    X, truth = blobs(n=300, centers=5, dim=48, seed=7)
    reducer = UMAPReducer(random_state=0, pca_components=16)
    assert reducer._project(X).shape == (300, 16)
    assert UMAPReducer(pca_components=64)._project(X) is X  # not wider: unchanged
    Z = ClusteringSession(X, reducer=reducer, map_reducer=IdentityReducer()).reduced()
    assert adjusted_rand_score(truth, HDBSCANClusterer(min_cluster_size=15).fit_predict(Z)) > 0.9


def test_unseeded_settings_run_in_parallel_and_kmeans_stays_seeded():
    from inbedder_core.analysis import AnalysisSettings

    settings = AnalysisSettings()
    assert settings.random_state is None and settings.reducer().random_state is None
    assert settings.map_reducer().init == "reduction"
    assert settings.clusterer(1000).__class__ is HDBSCANClusterer
    assert AnalysisSettings(k=5).clusterer(1000).random_state == 0
    assert AnalysisSettings(random_state=9).reducer().random_state == 9


def test_enable_numba_caching_turns_the_disk_cache_on_for_umap_kernels(tmp_path):
    code = (
        "import sys, os; os.environ['NUMBA_CACHE_DIR'] = sys.argv[1]; "
        "from inbedder_core.cluster.runtime import _import_umap, enable_numba_caching; _import_umap(); "
        "from numba.core.caching import NullCache; import umap.layouts as L; "
        "print(type(L._nb_optimize_layout_euclidean_single_epoch_parallel._cache).__name__, enable_numba_caching())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["FunctionCache", "0"]
    env = {**os.environ, "INBEDDER_NUMBA_CACHE": "0"}
    off = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         env=env)
    assert off.stdout.split() == ["NullCache", "0"]


def test_umap_fitted_on_our_exact_graph_still_transforms_new_points():
    """From 4,096 documents UMAP keeps no pairwise matrix; fitted on our exact graph it has no NN-descent
    index either, so ``ExactSearchIndex`` stands in: new points land beside the fitted ones they copy."""
    from inbedder_core.cluster.reducers import ExactSearchIndex

    X, truth = blobs(n=4200, centers=4, dim=16, seed=8)
    reducer = UMAPReducer(n_components=2, random_state=0, n_epochs=30)
    coords = reducer.fit_transform(X)
    assert isinstance(reducer.model_._knn_search_index, ExactSearchIndex)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(X), size=40, replace=False)
    placed = reducer.model_.transform(X[picks] + rng.normal(scale=1e-4, size=(40, X.shape[1])).astype(np.float32))
    centres = np.stack([coords[truth == c].mean(axis=0) for c in range(4)])
    nearest_centre = np.argmin(((placed[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest_centre == truth[picks]).mean() >= 0.95
    index = ExactSearchIndex(X, "euclidean")
    idx, dist = index.query(X[:5], k=3)
    np.testing.assert_array_equal(idx[:, 0], np.arange(5))
    assert (dist[:, 0] < 1e-3).all() and (np.diff(dist, axis=1) >= 0).all()
    with pytest.raises(ClusteringError, match="metric"):
        ExactSearchIndex(X, "manhattan")


# --------------------------------------------------------------------------- fitting on a sample (issue 15)


def test_session_fits_on_a_sample_and_places_the_rest():
    """Above the sample size UMAP and the clusterer see only the sample; every other document is
    placed (UMAP transform, a vote of the nearest sample documents) and lands with its own blob."""
    X, truth = blobs(n=1500, centers=6, dim=32, seed=3)
    session = ClusteringSession(X, reducer=UMAPReducer(n_components=5, random_state=0),
                                map_reducer=UMAPReducer(n_components=2, min_dist=0.1, random_state=0,
                                                        init="reduction", n_epochs=100),
                                fit_sample=500, sample_seed=7)
    sample = session.sample_index_
    assert sample is not None and len(sample) == 500 and len(np.unique(sample)) == 500
    assert np.array_equal(sample, np.sort(sample))
    outcome = session.cluster(HDBSCANClusterer(min_cluster_size=20, min_samples=5))
    fitted = session.fitted(session.reducer)
    assert fitted.model_.embedding_.shape == (500, 5)  # UMAP was fitted on the sample only
    assert outcome.raw_labels.shape == (1500,) and (outcome.raw_labels != NOISE).mean() > 0.9
    rest = np.setdiff1d(np.arange(1500), sample)
    assert adjusted_rand_score(truth[rest], outcome.raw_labels[rest]) > 0.95
    assert adjusted_rand_score(truth, outcome.raw_labels) > 0.95
    assert "place" in outcome.timings and session.place_seconds_ > 0
    assert any("random sample of 500 of 1,500 documents" in note for note in outcome.quality["notes"])
    # the outside documents' neighbours were searched once, for the reduction, the map and the vote alike
    coords = session.coords()
    assert len(session._rest_graphs) == 1
    assert coords.shape == (1500, 2) and np.isfinite(coords).all()
    # placed documents sit on the map beside their own blob's sample documents
    centres = np.stack([coords[sample][truth[sample] == c].mean(axis=0) for c in range(6)])
    nearest = np.argmin(((coords[rest][:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == truth[rest]).mean() > 0.95
    # the same seed draws the same sample; below the sample size nothing is sampled
    again = ClusteringSession(X, fit_sample=500, sample_seed=7)
    assert np.array_equal(again.sample_index_, sample)
    assert ClusteringSession(X, fit_sample=1500).sample_index_ is None
    with pytest.raises(ClusteringError, match="fit_sample=10 is too small"):
        ClusteringSession(X, fit_sample=10)


def test_nearest_vote_takes_the_majority_and_breaks_ties_by_the_nearer():
    fitted = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 2, 2])
    got, strength = nearest_vote(np.array([[0.4], [10.6], [1.6], [0.0]], dtype=np.float32), fitted, labels, 3)
    # 0.4: neighbours 0,1 (label 0) and 2 (label 1) -> 0; 10.6: 11, 10, 2 -> 2; 1.6: 2 (1), 1 (0), 0 (0) -> 0
    assert got.tolist() == [0, 2, 0, 0]
    assert np.allclose(strength, [2 / 3, 2 / 3, 2 / 3, 2 / 3])
    tie, _ = nearest_vote(np.array([[1.6]], dtype=np.float32), fitted, labels, 2)  # 2 (label 1) is nearer than 1
    assert tie.tolist() == [1]
    none, zero = nearest_vote(np.zeros((2, 1), np.float32), np.zeros((0, 1), np.float32), np.zeros(0, int), 3)
    assert none.tolist() == [NOISE, NOISE] and zero.tolist() == [0.0, 0.0]
    # masked votes do not count; a row without any valid vote is noise
    labels, shares = row_vote(np.array([[4, 7, 7], [3, 3, 9], [1, 1, 1]]),
                              np.array([[True, True, False], [False, True, True], [False, False, False]]))
    assert labels.tolist() == [4, 3, NOISE] and np.allclose(shares, [0.5, 0.5, 0.0])
