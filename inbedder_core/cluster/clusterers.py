"""Clusterers: ``fit_predict(Z float32 (n, k)) -> int64 (n,)`` with ``NOISE`` (-1) for unclustered
points (``HDBSCANClusterer``, ``KMeansClusterer``), noise reassignment and ``clustering_quality``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inbedder_core.errors import ClusteringError
from inbedder_core.results import NOISE

from .base import _all_identical, _as_points, _check_int, _Params, as_labels

# Silhouette is quadratic in the number of points; above this it is estimated on a
# fixed random sample (seeded, so the figure is reproducible).
SILHOUETTE_SAMPLE_SIZE = 2000


# --------------------------------------------------------------------------- clusterers


class HDBSCANClusterer(_Params):
    """HDBSCAN (the ``hdbscan`` package) on the reduced vectors; noise is ``NOISE`` (-1).

    Args:
        min_cluster_size: smallest group called a cluster (>= 2). Clamped to ``n`` when
            larger, and then a single cluster is allowed (else HDBSCAN could only
            answer "all noise").
        min_samples: neighbourhood for core distances; ``None`` means ``min_cluster_size``.
            Clamped to ``n - 1``.
        metric: distance in the reduced space.
        cluster_selection_method: ``"eom"`` (excess of mass) or ``"leaf"``.
        allow_single_cluster: let HDBSCAN answer with one cluster.
        algorithm: HDBSCAN's algorithm (``"best"`` picks Boruvka KD-tree for euclidean).
        approx_min_span_tree: faster, approximate minimum spanning tree (HDBSCAN's default).
        leaf_size: leaf size of HDBSCAN's space tree. 100 (HDBSCAN's default is 40) made the
            Boruvka KD-tree 20-25 % faster on 50,000 5-D points with identical labels
            (``benchmarks/bench_clustering.py --hdbscan-variants``).
        memory: a ``joblib.Memory`` or a directory, handed to HDBSCAN, which caches its
            minimum spanning tree there keyed on the data and ``min_samples``: a new
            ``min_cluster_size`` with the same ``min_samples`` then skips the expensive
            part (``None``: no caching).
        prediction_data: keep HDBSCAN's prediction data, so that ``hdbscan.approximate_predict``
            can place new points (``placement``); costs a little time and memory.
        backend: ``"hdbscan"`` (default), ``"fast_hdbscan"`` (the ``fast-hdbscan`` package:
            numba, multi-core; no ``memory``) or ``"cuml"`` (RAPIDS cuML on a GPU; optional,
            not tested here). See ``benchmarks/README.md`` for how they compare.

    The core-distance computation runs on one thread (``core_dist_n_jobs=1``).

    Fitted attributes: ``labels_`` (int64), ``probabilities_`` (float, 1.0 for the
    trivial cases), ``min_cluster_size_``, ``min_samples_`` (used), ``notes_``, ``model_`` (the
    fitted ``hdbscan.HDBSCAN``; ``None`` for the trivial cases).
    """

    def __init__(
        self,
        min_cluster_size: int = 10,
        min_samples: int | None = None,
        metric: str = "euclidean",
        cluster_selection_method: str = "eom",
        allow_single_cluster: bool = False,
        algorithm: str = "best",
        approx_min_span_tree: bool = True,
        leaf_size: int = 100,
        memory: Any = None,
        prediction_data: bool = False,
        backend: str = "hdbscan",
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.metric = metric
        self.cluster_selection_method = cluster_selection_method
        self.allow_single_cluster = allow_single_cluster
        self.algorithm = algorithm
        self.approx_min_span_tree = approx_min_span_tree
        self.leaf_size = leaf_size
        self.memory = memory
        self.prediction_data = prediction_data
        self.backend = backend

    def fit(self, Z: np.ndarray) -> HDBSCANClusterer:
        self.fit_predict(Z)
        return self

    def fit_predict(self, Z: np.ndarray) -> np.ndarray:
        """Cluster ``Z`` (``float32 (n, k)``) into ``int64 (n,)`` labels, ``NOISE`` for noise.

        One point, or points that are all identical, form a single cluster (all 0).

        Raises:
            ClusteringError: empty or non-finite input, invalid parameters.
        """
        Z = _as_points(Z, "reduced vectors")
        min_cluster_size = _check_int("min_cluster_size", self.min_cluster_size, 2)
        min_samples = None if self.min_samples is None else _check_int("min_samples", self.min_samples, 1)
        if self.cluster_selection_method not in ("eom", "leaf"):
            raise ClusteringError(
                f"cluster_selection_method={self.cluster_selection_method!r} is invalid; expected 'eom' or 'leaf'"
            )
        n = Z.shape[0]
        self.notes_: list[str] = []
        self.min_cluster_size_ = min_cluster_size
        self.min_samples_ = min_cluster_size if min_samples is None else min_samples
        self.model_: Any = None
        if n == 1 or _all_identical(Z):
            self.notes_.append(
                "one document: it forms a single cluster" if n == 1
                else f"all {n} documents have identical vectors: they form a single cluster"
            )
            self.labels_ = np.zeros(n, dtype=np.int64)
            self.probabilities_ = np.ones(n)
            return self.labels_
        allow_single = bool(self.allow_single_cluster)
        if min_cluster_size > n:
            self.min_cluster_size_ = n
            allow_single = True
            self.notes_.append(
                f"min_cluster_size lowered from {min_cluster_size} to {n} (the number of documents); "
                "a single cluster is allowed"
            )
        if min_samples is None:
            self.min_samples_ = self.min_cluster_size_
        if self.min_samples_ > n - 1:
            if min_samples is not None:
                self.notes_.append(f"min_samples lowered from {min_samples} to {n - 1} ({n} documents)")
            self.min_samples_ = n - 1
        if self.backend not in HDBSCAN_BACKENDS:
            raise ClusteringError(f"backend={self.backend!r} is invalid; expected one of {list(HDBSCAN_BACKENDS)}")
        if self.backend != "hdbscan":
            model = _other_hdbscan(self.backend, self.min_cluster_size_, self.min_samples_,
                                   self.cluster_selection_method, allow_single)
        else:
            import hdbscan

            model = hdbscan.HDBSCAN(
                min_cluster_size=self.min_cluster_size_,
                min_samples=self.min_samples_,
                metric=self.metric,
                cluster_selection_method=self.cluster_selection_method,
                allow_single_cluster=allow_single,
                algorithm=self.algorithm,
                approx_min_span_tree=self.approx_min_span_tree,
                leaf_size=_check_int("leaf_size", self.leaf_size, 1),
                core_dist_n_jobs=1,
                prediction_data=bool(self.prediction_data),
                **({} if self.memory is None else {"memory": self.memory}),
            )
        try:
            labels = model.fit_predict(Z.astype(np.float64))
        except ValueError as exc:
            raise ClusteringError(
                f"HDBSCAN failed on {n} points with min_cluster_size={self.min_cluster_size_}, "
                f"min_samples={self.min_samples_}, metric={self.metric!r}: {exc}"
            ) from exc
        self.labels_ = np.asarray(getattr(labels, "get", lambda: labels)(), dtype=np.int64)  # cuML: device array
        probabilities = getattr(model, "probabilities_", None)
        if probabilities is not None and hasattr(probabilities, "get"):
            probabilities = probabilities.get()
        self.probabilities_ = (np.ones(n) if probabilities is None else np.asarray(probabilities, dtype=np.float64))
        self.model_ = model
        if not (self.labels_ != NOISE).any():
            self.notes_.append(
                f"HDBSCAN found no cluster: all {n} documents are noise; lower min_cluster_size "
                f"(now {self.min_cluster_size_}) or min_samples"
            )
        return self.labels_


HDBSCAN_BACKENDS = ("hdbscan", "fast_hdbscan", "cuml")


def _other_hdbscan(backend: str, min_cluster_size: int, min_samples: int, method: str, allow_single: bool) -> Any:
    """fast-hdbscan's or cuML's HDBSCAN with the same parameters (Euclidean)."""
    try:
        if backend == "fast_hdbscan":
            from fast_hdbscan import HDBSCAN
        else:  # pragma: no cover - needs a GPU and RAPIDS
            from cuml.cluster import HDBSCAN
    except ImportError as exc:
        package = "fast-hdbscan" if backend == "fast_hdbscan" else "cuml (RAPIDS, a CUDA GPU)"
        raise ClusteringError(f"HDBSCAN backend {backend!r} needs the {package} package: {exc}") from exc
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, cluster_selection_method=method,
                   allow_single_cluster=allow_single)


class EVoCClusterer(_Params):
    """EVoC (the ``evoc`` package, optional): clusters the embeddings themselves, no UMAP first.

    Use it with ``IdentityReducer`` as the session's reducer. Noise is ``NOISE``.

    Args:
        base_min_cluster_size: EVoC's smallest cluster at its finest layer.
        noise_level: EVoC's noise knob (0: assign more, 1: call more noise).
        random_state: seed (EVoC's own; ``None`` runs in parallel).

    Fitted attributes: ``labels_`` (int64), ``n_layers_``, ``notes_``.
    """

    def __init__(self, base_min_cluster_size: int = 5, noise_level: float = 0.5,
                 random_state: int | None = None) -> None:
        self.base_min_cluster_size = base_min_cluster_size
        self.noise_level = noise_level
        self.random_state = random_state

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        X = _as_points(X)
        self.notes_: list[str] = []
        try:
            import evoc
        except ImportError as exc:
            raise ClusteringError(f"EVoCClusterer needs the evoc package (pip install evoc): {exc}") from exc
        model = evoc.EVoC(base_min_cluster_size=_check_int("base_min_cluster_size", self.base_min_cluster_size, 2),
                          noise_level=float(self.noise_level), random_state=self.random_state)
        self.labels_ = np.asarray(model.fit_predict(X), dtype=np.int64)
        self.n_layers_ = len(getattr(model, "cluster_layers_", []) or [])
        return self.labels_


class KMeansClusterer(_Params):
    """k-means with ``k`` clusters (scikit-learn, ``n_init="auto"``); never produces noise.

    ``k`` is clamped to the number of distinct points (so to ``n`` at most); see
    ``k_`` and ``notes_``.

    Fitted attributes: ``labels_`` (int64), ``k_``, ``cluster_centers_``, ``notes_``.
    """

    def __init__(self, k: int = 8, random_state: int | np.random.RandomState | None = None) -> None:
        self.k = k
        self.random_state = random_state

    def fit(self, Z: np.ndarray) -> KMeansClusterer:
        self.fit_predict(Z)
        return self

    def fit_predict(self, Z: np.ndarray) -> np.ndarray:
        """Cluster ``Z`` (``float32 (n, k)``) into ``int64 (n,)`` labels 0..k_-1.

        Raises:
            ClusteringError: empty or non-finite input, ``k < 1``.
        """
        Z = _as_points(Z, "reduced vectors")
        k = _check_int("k", self.k, 1)
        n = Z.shape[0]
        self.notes_: list[str] = []
        n_distinct = int(np.unique(Z, axis=0).shape[0])
        self.k_ = min(k, n_distinct)
        if self.k_ < k:
            self.notes_.append(
                f"k lowered from {k} to {self.k_}: there are only {n_distinct} distinct document vectors"
            )
        if self.k_ == 1:
            self.labels_ = np.zeros(n, dtype=np.int64)
            self.cluster_centers_ = Z.mean(axis=0, keepdims=True)
            return self.labels_
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=self.k_, n_init="auto", random_state=self.random_state)
        self.labels_ = np.asarray(model.fit_predict(Z), dtype=np.int64)
        self.cluster_centers_ = model.cluster_centers_.astype(np.float32)
        return self.labels_


# --------------------------------------------------------------------------- noise and quality


def assign_noise(Z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every noise point the cluster whose centroid is nearest in the reduced space.

    Args:
        Z: ``float32 (n, k)`` reduced vectors the labels were computed on.
        labels: ``int (n,)`` with ``NOISE`` for noise; not modified.

    Returns:
        New ``int64 (n,)`` labels with no ``NOISE`` left, except when there is no cluster
        at all: then the labels come back unchanged (all noise), since there is nothing to
        assign to; ``clustering_quality`` reports that case.

    Raises:
        ClusteringError: shapes that do not match, invalid labels.
    """
    Z = _as_points(Z, "reduced vectors")
    return _assign_to_nearest_centroid(Z, as_labels(labels, Z.shape[0]))


def _assign_to_nearest_centroid(Z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = labels.copy()
    noise = labels == NOISE
    clusters = np.unique(labels[~noise])
    if not noise.any() or clusters.size == 0:
        return out
    Zd = Z.astype(np.float64)
    centroids = np.stack([Zd[labels == c].mean(axis=0) for c in clusters])
    P = Zd[noise]
    # squared distances via |p|^2 - 2 p.c + |c|^2, in blocks to bound memory
    nearest = np.empty(P.shape[0], dtype=np.int64)
    c2 = (centroids**2).sum(axis=1)
    block = 65_536
    for start in range(0, P.shape[0], block):
        chunk = P[start : start + block]
        d2 = c2[None, :] - 2.0 * chunk @ centroids.T
        nearest[start : start + block] = np.argmin(d2, axis=1)
    out[noise] = clusters[nearest]
    return out


def clustering_quality(
    Z: np.ndarray,
    labels: np.ndarray,
    *,
    silhouette_sample_size: int = SILHOUETTE_SAMPLE_SIZE,
    random_state: int = 0,
) -> dict[str, Any]:
    """Figures describing one clustering of the reduced vectors.

    Args:
        Z: ``float32 (n, k)`` reduced vectors.
        labels: ``int (n,)``, ``NOISE`` for noise (pass the clusterer's raw labels, so
            that the noise share is the clusterer's).
        silhouette_sample_size: above this many non-noise points, the silhouette is
            estimated on a seeded random sample of this size.
        random_state: seed of that sample.

    Returns:
        A dict with ``n_points`` (int), ``n_clusters`` (int, noise excluded), ``n_noise``
        (int), ``noise_share`` (float in [0, 1]), ``all_noise`` (bool: no cluster found),
        ``silhouette`` (float in [-1, 1] over non-noise points, Euclidean in the reduced
        space, or ``None`` when undefined: fewer than 2 clusters, or no more points than
        clusters), ``silhouette_sample_size`` (int, points it was computed on, 0 when
        ``None``), ``cluster_sizes`` (dict cluster id -> size, ids ascending, noise
        excluded), ``largest_cluster_share`` (float) and ``notes`` (list of str).

    Raises:
        ClusteringError: shapes that do not match, invalid labels.
    """
    Z = _as_points(Z, "reduced vectors")
    labels = as_labels(labels, Z.shape[0])
    n = int(labels.shape[0])
    noise = labels == NOISE
    n_noise = int(noise.sum())
    ids, counts = np.unique(labels[~noise], return_counts=True)
    notes: list[str] = []
    if ids.size == 0:
        notes.append(f"no cluster found: all {n} documents are noise")
    silhouette: float | None = None
    used = 0
    kept = int(n - n_noise)
    if ids.size < 2:
        if ids.size == 1:
            notes.append("silhouette undefined: only one cluster")
    elif kept <= ids.size:
        notes.append("silhouette undefined: every clustered document is alone in its cluster")
    else:
        from sklearn.metrics import silhouette_score

        Zk = Z[~noise]
        lk = labels[~noise]
        if kept > silhouette_sample_size:
            rng = np.random.default_rng(random_state)
            idx = np.sort(rng.choice(kept, size=silhouette_sample_size, replace=False))
            Zk, lk = Zk[idx], lk[idx]
        n_sample_labels = np.unique(lk).size
        if 2 <= n_sample_labels <= lk.shape[0] - 1:
            silhouette = float(silhouette_score(Zk, lk, metric="euclidean"))
            used = int(lk.shape[0])
            if used < kept:
                notes.append(f"silhouette estimated on a random sample of {used} of {kept} clustered documents")
        else:
            notes.append("silhouette undefined on the sample drawn")
    return {
        "n_points": n,
        "n_clusters": int(ids.size),
        "n_noise": n_noise,
        "noise_share": n_noise / n if n else 0.0,
        "all_noise": bool(ids.size == 0),
        "silhouette": silhouette,
        "silhouette_sample_size": used,
        "cluster_sizes": {int(i): int(c) for i, c in zip(ids, counts, strict=True)},
        "largest_cluster_share": float(counts.max() / n) if ids.size else 0.0,
        "notes": notes,
    }
