"""Reduce and cluster embeddings: UMAP (or PCA, or nothing) -> HDBSCAN (or KMeans).

Stages are small scikit-learn style objects: constructors only store parameters,
fitted state ends in ``_``, and every stage of one kind has the same method, so any
of them can be swapped in:

- reducers: ``fit_transform(X float32 (n, d)) -> float32 (n, n_components)``
  (``UMAPReducer``, ``PCAReducer``, ``IdentityReducer`` to skip the stage);
- clusterers: ``fit_predict(Z float32 (n, k)) -> int64 (n,)`` with ``NOISE`` (-1)
  for unclustered points (``HDBSCANClusterer``, ``KMeansClusterer``).

``ClusteringSession`` holds one instruction's embeddings and memoises the reduced
vectors and the 2-D map, so changing ``min_cluster_size`` or ``k`` only re-runs the
clusterer. ``umap``, ``hdbscan`` and scikit-learn are imported inside the functions
that need them: importing this module is cheap and changes nothing.

UMAP spends 25-40 s compiling with numba on its first use in a process.
``configure_numba_cache`` points numba's on-disk cache at a user cache folder so
that this is paid once per machine, and ``warm_up`` triggers the compilation (call
it from a background thread when the app or CLI starts).
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inbedder_core.errors import ClusteringError
from inbedder_core.results import NOISE

NUMBA_CACHE_SUBDIR = ("inbedder-explorer", "numba")

# Below this many points UMAP cannot build a neighbour graph worth the name (it needs
# n_neighbors >= 2, so n >= 3, and its spectral start needs more): a deterministic
# PCA layout is returned instead.
MIN_UMAP_POINTS = 4

# UMAP computes exact neighbours below this size (its own threshold); above it the
# session computes the approximate neighbour graph once and shares it between the
# clustering reduction and the 2-D map.
SHARED_KNN_MIN_POINTS = 4096

# Silhouette is quadratic in the number of points; above this it is estimated on a
# fixed random sample (seeded, so the figure is reproducible).
SILHOUETTE_SAMPLE_SIZE = 2000


# --------------------------------------------------------------------------- numba


def default_numba_cache_dir() -> Path:
    """The folder used for numba's compiled-function cache: ``<user cache>/inbedder-explorer/numba``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(NUMBA_CACHE_SUBDIR[0], appauthor=False)) / NUMBA_CACHE_SUBDIR[1]


def configure_numba_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Point numba's on-disk cache at a persistent folder, before ``umap`` is imported.

    Sets ``NUMBA_CACHE_DIR`` unless the user already set it (their choice wins), creates
    the folder and, when numba is already imported, makes it re-read its settings. Has
    effect only for functions compiled after the call: call it before the first
    ``import umap`` (every function of this module that imports umap calls it first).

    Args:
        cache_dir: folder to use; default ``default_numba_cache_dir()``.

    Returns:
        The cache folder in effect, or ``None`` when it could not be created (numba
        then uses its own default and UMAP still works, only slower to start).
    """
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir is not None:
        chosen = os.fspath(cache_dir)
    elif not chosen:
        chosen = os.fspath(default_numba_cache_dir())
    try:
        Path(chosen).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if os.environ.get("NUMBA_CACHE_DIR") != chosen:
        os.environ["NUMBA_CACHE_DIR"] = chosen
        if "numba" in sys.modules:
            from numba.core import config as numba_config

            numba_config.reload_config()
    return Path(chosen)


def _import_umap() -> Any:
    configure_numba_cache()
    import umap

    return umap


def warm_up(n_points: int = 60, random_state: int = 0, approximate: bool = True) -> float:
    """Compile UMAP's numba code now (or load it from the cache), off the analyst's path.

    Fits a tiny UMAP on random data: on the exact-neighbour path UMAP uses for small
    corpora and, when ``approximate``, once more forcing the approximate path
    (NN-descent) used from 4,096 documents, which has the most code numba does not
    cache on disk. Safe to call from a background thread; calling it again is cheap.

    Returns:
        Seconds spent.
    """
    start = time.perf_counter()
    try:  # torch before scipy: scipy's array-API helpers trip over a torch half-imported by another thread
        import torch  # noqa: F401
    except ImportError:
        pass
    umap = _import_umap()
    rng = np.random.default_rng(random_state)
    X = rng.normal(size=(max(int(n_points), 10), 16)).astype(np.float32)
    for force in (False, True) if approximate else (False,):
        umap.UMAP(
            n_components=2,
            n_neighbors=5,
            metric="cosine",
            random_state=random_state,
            n_jobs=1,
            force_approximation_algorithm=force,
            n_epochs=20,
        ).fit_transform(X)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- checks


def _as_points(X: Any, what: str = "embeddings") -> np.ndarray:
    """``X`` as a finite float32 ``(n, d)`` array with n, d >= 1, or a ClusteringError."""
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ClusteringError(f"{what} must be a numeric array of shape (n_docs, dim); {exc}") from exc
    if arr.ndim != 2:
        raise ClusteringError(
            f"{what} must be a 2-D array of shape (n_docs, dim); got shape {arr.shape}. "
            "Pass one row per document."
        )
    if arr.shape[0] == 0:
        raise ClusteringError(f"{what} has 0 rows: there is nothing to cluster; check that the corpus is not empty")
    if arr.shape[1] == 0:
        raise ClusteringError(f"{what} has 0 columns; expected one vector per document")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ClusteringError(
            f"{what} contain {bad.size} row(s) with NaN or infinite values (first at row {int(bad[0])}); "
            "re-encode those documents or drop them"
        )
    return arr


def as_labels(labels: Any, n: int | None = None, what: str = "labels") -> np.ndarray:
    """``labels`` as ``int64 (n,)`` cluster ids (``NOISE`` = -1); whole-valued floats are accepted.

    Raises:
        ClusteringError: not 1-D, not whole numbers, below -1, or not ``n`` long (when given).
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ClusteringError(f"{what} must be a 1-D array of cluster ids; got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
            raise ClusteringError(f"{what} must hold integer cluster ids (-1 for noise); got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < NOISE:
        raise ClusteringError(
            f"{what} contain {int(arr.min())}; cluster ids must be >= 0, with {NOISE} for noise"
        )
    if n is not None and arr.shape[0] != n:
        raise ClusteringError(f"{what} has {arr.shape[0]} entries but there are {n} points; they must match")
    return arr


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ClusteringError(f"{name}={value!r} is invalid; expected an integer >= {minimum}")
    return int(value)


def _all_identical(Z: np.ndarray) -> bool:
    return bool(np.all(Z == Z[0]))


# --------------------------------------------------------------------------- params


class _Params:
    """``get_params`` and ``repr`` from the constructor's signature (no scikit-learn import)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for a parameter value (identity for mutable objects such as a RandomState)."""
    if value is None or isinstance(value, (bool, int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    return ("id", id(value))


def stage_key(stage: Any) -> Hashable:
    """The memo key of a stage: its class and parameters (``id`` for objects without ``get_params``)."""
    if hasattr(stage, "get_params"):
        params = stage.get_params()
        return (type(stage).__qualname__, tuple((k, _freeze(v)) for k, v in sorted(params.items())))
    return (type(stage).__qualname__, ("id", id(stage)))


class Reducer(Protocol):
    """What a reduction stage offers."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray: ...


class Clusterer(Protocol):
    """What a clustering stage offers."""

    def fit_predict(self, Z: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- reducers


def _trivial_layout(X: np.ndarray, n_components: int, metric: str = "euclidean") -> np.ndarray:
    """A deterministic layout for a handful of points: PCA coordinates, zero-padded.

    Rows are L2-normalised first for ``metric="cosine"``. The sign of each axis is fixed
    so that its largest coordinate is positive.
    """
    A = X.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(A, axis=1, keepdims=True)
        A = np.divide(A, norms, out=np.zeros_like(A), where=norms > 0)
    A = A - A.mean(axis=0)
    out = np.zeros((A.shape[0], n_components), dtype=np.float32)
    if A.shape[0] > 1 and np.any(A):
        U, S, _ = np.linalg.svd(A, full_matrices=False)
        coords = U * S
        m = min(n_components, coords.shape[1])
        coords = coords[:, :m]
        signs = np.sign(coords[np.argmax(np.abs(coords), axis=0), np.arange(m)])
        signs[signs == 0] = 1.0
        out[:, :m] = coords * signs
    return out


@dataclass
class NeighborGraph:
    """A k-nearest-neighbour graph of the embeddings, shareable between UMAP fits.

    Attributes:
        indices: ``int (n, k)`` neighbour ids per point (the point itself first).
        distances: ``float32 (n, k)`` distances in the input metric.
        search_index: pynndescent's ``NNDescent`` index when built by NN-descent, else ``None``.
    """

    indices: np.ndarray
    distances: np.ndarray
    search_index: Any = None

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])


class UMAPReducer(_Params):
    """UMAP to ``n_components`` dimensions (5 for clustering; 2 with ``min_dist=0.1`` for the map).

    Args:
        n_components: output dimension.
        n_neighbors: neighbourhood size; clamped to ``n - 1`` on small inputs (see
            ``n_neighbors_`` and ``notes_``).
        min_dist: how tightly points may be packed, in [0, 1]; 0.0 suits clustering.
        metric: input-space metric, ``"cosine"`` for sentence embeddings.
        random_state: seed passed to UMAP; when set UMAP runs single-threaded and is
            reproducible.
        n_jobs: threads when ``random_state`` is ``None`` (UMAP ignores it otherwise).
        n_epochs: layout optimisation epochs; ``None`` keeps UMAP's choice (500 up to
            10,000 documents, 200 above). The layout is most of UMAP's time: fewer epochs
            (e.g. 200 for the 2-D map) are proportionally faster.

    Fitted attributes:
        embedding_: ``float32 (n, n_components)``.
        n_neighbors_: the neighbourhood size actually used.
        method_: ``"umap"``, or ``"trivial"`` (a PCA layout) below ``MIN_UMAP_POINTS`` points.
        init_: UMAP's starting layout (``"spectral"``, or ``"random"`` when there are too few
            points for a spectral start).
        notes_: human-readable lines about anything adjusted.
    """

    def __init__(
        self,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int = -1,
        n_epochs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.n_epochs = n_epochs

    def _validate(self) -> tuple[int, int]:
        n_components = _check_int("n_components", self.n_components, 1)
        n_neighbors = _check_int("n_neighbors", self.n_neighbors, 2)
        if self.n_epochs is not None:
            _check_int("n_epochs", self.n_epochs, 1)
        if not 0.0 <= float(self.min_dist) <= 1.0:
            raise ClusteringError(f"min_dist={self.min_dist!r} is invalid; expected a number in [0, 1]")
        return n_components, n_neighbors

    def effective_n_neighbors(self, n: int) -> int:
        """The neighbourhood size used for ``n`` points: ``min(n_neighbors, n - 1)``."""
        return max(1, min(int(self.n_neighbors), n - 1))

    def nearest_neighbors(self, X: np.ndarray, n_neighbors: int | None = None) -> NeighborGraph:
        """The approximate neighbour graph (NN-descent) UMAP would build on ``X``.

        ``k`` is ``n_neighbors`` (default: this reducer's, clamped to ``n - 1``). Pass the
        result to ``fit_transform(X, knn=...)`` of UMAP reducers with the same metric and
        at most ``k`` neighbours to skip recomputing it.
        """
        X = _as_points(X)
        self._validate()
        k = self.effective_n_neighbors(X.shape[0]) if n_neighbors is None else int(n_neighbors)
        umap = _import_umap()
        from sklearn.utils import check_random_state

        indices, dists, search_index = umap.umap_.nearest_neighbors(
            X,
            k,
            self.metric,
            {},
            False,
            check_random_state(self.random_state),
            low_memory=True,
            use_pynndescent=True,
            n_jobs=1 if self.random_state is not None else self.n_jobs,
        )
        return NeighborGraph(indices=indices, distances=dists, search_index=search_index)

    def fit(self, X: np.ndarray, knn: NeighborGraph | None = None) -> UMAPReducer:
        """Fit on ``X`` (``float32 (n, d)``); see ``fit_transform``. Returns self."""
        self.fit_transform(X, knn=knn)
        return self

    def fit_transform(self, X: np.ndarray, knn: NeighborGraph | None = None) -> np.ndarray:
        """Reduce ``X`` (``float32 (n, d)``) to ``float32 (n, n_components)``.

        Args:
            X: one row per document, finite.
            knn: optional neighbour graph from ``nearest_neighbors`` on the same ``X`` (same
                metric, at least ``n_neighbors_`` neighbours), to skip that step.

        Raises:
            ClusteringError: empty or non-finite input, invalid parameters, a ``knn`` that
                does not fit ``X``, or UMAP failing.
        """
        X = _as_points(X)
        n_components, n_neighbors = self._validate()
        n = X.shape[0]
        self.notes_: list[str] = []
        self.n_neighbors_ = self.effective_n_neighbors(n)
        if n < MIN_UMAP_POINTS:
            self.method_ = "trivial"
            self.init_ = "pca"
            self.notes_.append(
                f"{n} document(s) are too few for UMAP (needs at least {MIN_UMAP_POINTS}); "
                "used a fixed PCA layout instead"
            )
            self.embedding_ = _trivial_layout(X, n_components, self.metric)
            return self.embedding_
        if self.n_neighbors_ < n_neighbors:
            self.notes_.append(
                f"n_neighbors lowered from {n_neighbors} to {self.n_neighbors_}: UMAP needs fewer "
                f"neighbours than documents ({n})"
            )
        # UMAP's spectral start solves for n_components + 1 eigenvectors, which needs more points.
        self.init_ = "spectral" if n > n_components + 1 else "random"
        if self.init_ == "random":
            self.notes_.append(f"random UMAP start: {n} documents are too few for a spectral start")
        self.method_ = "umap"
        umap = _import_umap()
        kwargs: dict[str, Any] = {}
        if knn is not None:
            if knn.indices.shape[0] != n or knn.k < self.n_neighbors_:
                raise ClusteringError(
                    f"knn graph has shape {knn.indices.shape}; expected ({n}, >= {self.n_neighbors_}); "
                    "compute it with nearest_neighbors() on the same embeddings"
                )
            # UMAP marks disconnected edges in place: hand it copies.
            kwargs["precomputed_knn"] = (
                np.array(knn.indices[:, : self.n_neighbors_]),
                np.array(knn.distances[:, : self.n_neighbors_]),
                knn.search_index,
            )
        model = umap.UMAP(
            n_components=n_components,
            n_neighbors=self.n_neighbors_,
            min_dist=float(self.min_dist),
            metric=self.metric,
            random_state=self.random_state,
            n_jobs=1 if self.random_state is not None else self.n_jobs,
            init=self.init_,
            n_epochs=None if self.n_epochs is None else int(self.n_epochs),
            **kwargs,
        )
        try:
            embedding = model.fit_transform(X)
        except (ValueError, TypeError) as exc:
            raise ClusteringError(
                f"UMAP failed on {n} documents with n_neighbors={self.n_neighbors_}, "
                f"n_components={n_components}: {exc}; try PCAReducer or fewer n_components"
            ) from exc
        embedding = np.asarray(embedding, dtype=np.float32)
        if not np.isfinite(embedding).all():
            raise ClusteringError(
                "UMAP produced non-finite coordinates; try a different random_state or PCAReducer"
            )
        self.embedding_ = embedding
        return embedding


class PCAReducer(_Params):
    """PCA to ``n_components`` dimensions: fast, linear, no compilation.

    ``n_components`` is clamped to ``min(n, d)``; the output is zero-padded back to
    ``n_components`` columns so its shape never depends on the input size.

    Fitted attributes: ``embedding_``, ``n_components_`` (used), ``notes_``.
    """

    def __init__(self, n_components: int = 5, random_state: int | np.random.RandomState | None = None) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> PCAReducer:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Reduce ``X`` (``float32 (n, d)``) to ``float32 (n, n_components)``. Raises ClusteringError."""
        X = _as_points(X)
        n_components = _check_int("n_components", self.n_components, 1)
        n, d = X.shape
        self.notes_: list[str] = []
        self.n_components_ = min(n_components, n, d)
        if self.n_components_ < n_components:
            self.notes_.append(
                f"PCA kept {self.n_components_} of {n_components} components ({n} documents, dimension {d}); "
                "the rest are zero"
            )
        out = np.zeros((n, n_components), dtype=np.float32)
        if n > 1 and not _all_identical(X):
            from sklearn.decomposition import PCA

            pca = PCA(n_components=self.n_components_, random_state=self.random_state)
            out[:, : self.n_components_] = pca.fit_transform(X)
        self.embedding_ = out
        return out


class IdentityReducer(_Params):
    """Skip the reduction stage: returns the embeddings themselves (as float32)."""

    def fit(self, X: np.ndarray) -> IdentityReducer:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` unchanged, as ``float32 (n, d)``. Raises ClusteringError on empty or non-finite input."""
        self.embedding_ = _as_points(X)
        return self.embedding_


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

    The core-distance computation runs on one thread (``core_dist_n_jobs=1``).

    Fitted attributes: ``labels_`` (int64), ``probabilities_`` (float, 1.0 for the
    trivial cases), ``min_cluster_size_``, ``min_samples_`` (used), ``notes_``.
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
            **({} if self.memory is None else {"memory": self.memory}),
        )
        try:
            labels = model.fit_predict(Z.astype(np.float64))
        except ValueError as exc:
            raise ClusteringError(
                f"HDBSCAN failed on {n} points with min_cluster_size={self.min_cluster_size_}, "
                f"min_samples={self.min_samples_}, metric={self.metric!r}: {exc}"
            ) from exc
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        if not (self.labels_ != NOISE).any():
            self.notes_.append(
                f"HDBSCAN found no cluster: all {n} documents are noise; lower min_cluster_size "
                f"(now {self.min_cluster_size_}) or min_samples"
            )
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


# --------------------------------------------------------------------------- session


@dataclass
class ClusteringOutcome:
    """One clustering of a session's embeddings.

    Attributes:
        labels: ``int64 (n,)`` final labels (noise assigned to the nearest cluster when
            asked, else equal to ``raw_labels``).
        raw_labels: ``int64 (n,)`` the clusterer's labels, ``NOISE`` for noise.
        quality: ``clustering_quality`` of the raw labels, plus ``n_noise_assigned`` (int);
            its ``notes`` also carry what the reducer and clusterer adjusted.
        timings: seconds spent by this call: ``reduce`` (0 when reused), ``cluster``,
            ``assign_noise``, ``quality``.
    """

    labels: np.ndarray
    raw_labels: np.ndarray
    quality: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


class ClusteringSession:
    """One set of embeddings, with memoised reduction and 2-D map, clustered on demand.

    The reduced vectors are computed once per reducer configuration (class and
    parameters) and the map once per map-reducer configuration; when both are UMAP with
    the same metric on at least ``SHARED_KNN_MIN_POINTS`` documents, the neighbour graph
    is computed once and shared. Changing the clusterer re-runs only the clusterer.

    Args:
        embeddings: ``float32 (n, d)``; not copied when already float32 (do not mutate it).
        reducer: the clustering-space reducer; default ``UMAPReducer()`` (5-D).
        map_reducer: the 2-D map reducer; default ``UMAPReducer(n_components=2, min_dist=0.1)``.
        shared_knn_min_points: from this many documents both UMAP fits share one neighbour graph.

    Attributes:
        n_reductions_: reducer fits run for ``reduced()`` (a test can check it stays 1).
        n_maps_: map-reducer fits run for ``coords()``.
        n_knn_: neighbour graphs computed for sharing.
        n_clusterings_: clusterer runs.
        timings_: seconds of the last ``knn``, ``reduce`` and ``map`` computations.
        notes_: what the reducers adjusted (e.g. n_neighbors clamped).

    Thread-safe: concurrent calls compute each stage once.

    Raises:
        ClusteringError: on empty or non-finite embeddings.
    """

    def __init__(self, embeddings: np.ndarray, reducer: Any = None, map_reducer: Any = None,
                 shared_knn_min_points: int = SHARED_KNN_MIN_POINTS) -> None:
        self.embeddings = _as_points(embeddings)
        self.shared_knn_min_points = shared_knn_min_points
        self.reducer = UMAPReducer() if reducer is None else reducer
        self.map_reducer = UMAPReducer(n_components=2, min_dist=0.1) if map_reducer is None else map_reducer
        self.n_reductions_ = 0
        self.n_maps_ = 0
        self.n_knn_ = 0
        self.n_clusterings_ = 0
        self.timings_: dict[str, float] = {}
        self.notes_: list[str] = []
        self._memo: dict[Hashable, np.ndarray] = {}
        self._memo_notes: dict[Hashable, list[str]] = {}
        self._knn: dict[Hashable, NeighborGraph] = {}
        self._lock = threading.RLock()

    @property
    def n_points(self) -> int:
        return int(self.embeddings.shape[0])

    def _knn_for(self, reducer: UMAPReducer) -> NeighborGraph | None:
        n = self.n_points
        if n < self.shared_knn_min_points:
            return None
        umaps = [r for r in (self.reducer, self.map_reducer, reducer) if isinstance(r, UMAPReducer)]
        key = (reducer.metric, _freeze(reducer.random_state))
        same = [r for r in umaps if (r.metric, _freeze(r.random_state)) == key]
        need = reducer.effective_n_neighbors(n)
        cached = self._knn.get(key)
        if cached is not None and cached.k >= need:
            return cached
        k = max(r.effective_n_neighbors(n) for r in same)
        start = time.perf_counter()
        graph = reducer.nearest_neighbors(self.embeddings, n_neighbors=k)
        self.timings_["knn"] = time.perf_counter() - start
        self.n_knn_ += 1
        self._knn[key] = graph
        return graph

    def _fit(self, reducer: Any) -> tuple[np.ndarray, bool]:
        """``(vectors, whether they were computed now)``, memoised by the reducer's configuration."""
        key = stage_key(reducer)
        if key in self._memo:
            return self._memo[key], False
        if isinstance(reducer, UMAPReducer):
            knn = self._knn_for(reducer)
            out = reducer.fit_transform(self.embeddings, knn=knn)
        else:
            out = reducer.fit_transform(self.embeddings)
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != self.n_points:
            raise ClusteringError(
                f"{type(reducer).__name__} returned shape {out.shape}; expected ({self.n_points}, n_components)"
            )
        self._memo[key] = out
        notes = list(getattr(reducer, "notes_", []))
        self._memo_notes[key] = notes
        self.notes_.extend(n for n in notes if n not in self.notes_)
        return out, True

    def reduced(self, reducer: Any = None) -> np.ndarray:
        """The clustering-space vectors, ``float32 (n, n_components)``, computed once per configuration.

        Args:
            reducer: use this reducer instead of the session's (memoised separately).
        """
        with self._lock:
            start = time.perf_counter()
            out, computed = self._fit(self.reducer if reducer is None else reducer)
            if computed:
                self.n_reductions_ += 1
                self.timings_["reduce"] = time.perf_counter() - start
            return out

    def coords(self, map_reducer: Any = None) -> np.ndarray:
        """The 2-D map, ``float32 (n, 2)`` (for a 2-component map reducer), computed once per configuration."""
        with self._lock:
            start = time.perf_counter()
            out, computed = self._fit(self.map_reducer if map_reducer is None else map_reducer)
            if computed:
                self.n_maps_ += 1
                self.timings_["map"] = time.perf_counter() - start
            return out

    def cluster(self, clusterer: Any, *, assign_noise: bool = False, reducer: Any = None) -> ClusteringOutcome:
        """Cluster the (memoised) reduced vectors.

        Args:
            clusterer: any object with ``fit_predict(Z) -> int labels`` (``NOISE`` for noise).
            assign_noise: give noise points the nearest cluster (raw labels are kept in
                the outcome).
            reducer: cluster in this reducer's space instead of the session's.

        Returns:
            A ``ClusteringOutcome``.

        Raises:
            ClusteringError: from the stages, or labels of the wrong shape.
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        before = self.n_reductions_
        Z = self.reduced(reducer)
        timings["reduce"] = time.perf_counter() - start if self.n_reductions_ != before else 0.0
        with self._lock:
            reducer_notes = list(self._memo_notes.get(stage_key(self.reducer if reducer is None else reducer), []))
        start = time.perf_counter()
        raw = as_labels(clusterer.fit_predict(Z), Z.shape[0], "clusterer labels")
        timings["cluster"] = time.perf_counter() - start
        self.n_clusterings_ += 1
        start = time.perf_counter()
        labels = _assign_to_nearest_centroid(Z, raw) if assign_noise else raw.copy()
        timings["assign_noise"] = time.perf_counter() - start
        start = time.perf_counter()
        quality = clustering_quality(Z, raw)
        timings["quality"] = time.perf_counter() - start
        quality["n_noise_assigned"] = int(((raw == NOISE) & (labels != NOISE)).sum())
        quality["notes"] = reducer_notes + list(getattr(clusterer, "notes_", [])) + quality["notes"]
        return ClusteringOutcome(labels=labels, raw_labels=raw, quality=quality, timings=timings)
