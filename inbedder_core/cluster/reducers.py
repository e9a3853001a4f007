"""Reducers: ``fit_transform(X float32 (n, d)) -> float32 (n, n_components)``; ``UMAPReducer``,
``PCAReducer`` and ``IdentityReducer`` (skip the stage), plus the shared UMAP ``NeighborGraph``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from inbedder_core.errors import ClusteringError

from .base import _all_identical, _as_points, _check_int, _Params
from .runtime import _import_umap, mark_nn_descent_compiled, nn_descent_compiled

# Below this many points UMAP cannot build a neighbour graph worth the name (it needs
# n_neighbors >= 2, so n >= 3, and its spectral start needs more): a deterministic
# PCA layout is returned instead.
MIN_UMAP_POINTS = 4

# Below this many documents umap-learn would compute all pairwise distances itself (its "small
# data" path); an exact graph costs a fraction of a second there whatever else is compiled.
UMAP_SMALL_DATA_POINTS = 4096

# From this many documents the session computes the neighbour graph once and shares it between
# the clustering reduction and the 2-D map (below, UMAP's small-input guards apply).
SHARED_KNN_MIN_POINTS = MIN_UMAP_POINTS

# Up to this many documents the neighbour graph is exact, by blocked matrix products (BLAS,
# multi-threaded, deterministic, no numba compile), unless the run is unseeded and NN-descent is
# already compiled in this process (the app's warm-up does that), where NN-descent is several times
# faster; above it, always NN-descent (pynndescent). See benchmarks/README.md.
EXACT_KNN_MAX_POINTS = 20_000

INITS = ("spectral", "pca", "random", "reduction")

# Layout epochs of the 2-D map when it starts from the clustering reduction (``init="reduction"``):
# UMAP's own choice is 500 up to 10,000 documents and 200 above, from a spectral start.
MAP_EPOCHS = 200


# --------------------------------------------------------------------------- reducers


def _trivial_layout(X: np.ndarray, n_components: int, metric: str = "euclidean") -> np.ndarray:
    """A deterministic layout for a handful of points: PCA coordinates, zero-padded.

    Rows are L2-normalised first for ``metric="cosine"``. The sign of each axis is fixed
    so that its largest coordinate is positive.
    """
    A = X.astype(np.float64)
    if metric == "cosine":
        A = _unit_rows(A)
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


def exact_neighbors(X: np.ndarray, k: int, metric: str = "cosine",
                    block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest neighbours of every row of ``X`` (itself first), by blocked matrix products.

    ``metric`` is ``"cosine"`` (distance ``1 - cos``, as UMAP's) or ``"euclidean"``. Returns
    ``(indices int64 (n, k), distances float32 (n, k))``, sorted by distance, ties by index;
    deterministic. Memory: a few ``block x n`` arrays at a time (``block`` default: ~8M entries).
    """
    return _exact_knn(X, X, k, metric, block, itself_first=True)


def _exact_knn(Q: np.ndarray, X: np.ndarray, k: int, metric: str, block: int | None = None, *,
               itself_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest rows of ``X`` for every row of ``Q`` (``exact_neighbors``; with
    ``itself_first`` ``Q`` is ``X`` and each row's own index comes first, at distance 0)."""
    if metric not in ("cosine", "euclidean"):
        raise ClusteringError(f"exact neighbours support metric 'cosine' or 'euclidean', not {metric!r}")
    A = np.ascontiguousarray(X, dtype=np.float32)
    B = np.ascontiguousarray(Q, dtype=np.float32)
    if metric == "cosine":
        A = _unit_rows(A)
        B = A if itself_first else _unit_rows(B)
    n, m = A.shape[0], B.shape[0]
    k = min(int(k), n)
    sq = (A.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    sq_q = sq if itself_first else (B.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    indices = np.empty((m, k), dtype=np.int64)
    distances = np.empty((m, k), dtype=np.float32)
    block = int(block) if block else max(64, min(4096, (1 << 23) // max(n, 1)))
    for start in range(0, m, block):
        stop = min(start + block, m)
        D = B[start:stop] @ A.T  # (b, n) similarities, made distances in place
        if metric == "cosine":
            np.subtract(1.0, D, out=D)
        else:
            D *= -2.0
            D += sq_q[start:stop, None]
            D += sq[None, :]
        if itself_first:
            rows = np.arange(stop - start)
            D[rows, start + rows] = -np.inf  # the point itself first, whatever rounding says
        part = np.argpartition(D, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (stop - start, 1))
        d = np.take_along_axis(D, part, axis=1)
        order = np.lexsort((part, d), axis=1)
        idx = np.take_along_axis(part, order, axis=1)
        d = np.take_along_axis(d, order, axis=1)
        if itself_first:
            d[:, 0] = 0.0
        np.maximum(d, 0.0, out=d)
        if metric == "euclidean":
            np.sqrt(d, out=d)
        indices[start:stop] = idx
        distances[start:stop] = d
    return indices, distances


class ExactSearchIndex:
    """An exact stand-in for pynndescent's ``NNDescent`` search index, for ``umap.UMAP.transform``.

    UMAP fitted on a precomputed neighbour graph has no index to find the fitted neighbours of new
    points; this one finds them by blocked matrix products against the fitted data (deterministic,
    no numba compile). ``query(X, k)`` returns ``(indices int64 (m, k), distances float32 (m, k))``.
    """

    _angular_trees = False

    def __init__(self, data: np.ndarray, metric: str) -> None:
        if metric not in ("cosine", "euclidean"):
            raise ClusteringError(f"exact search supports metric 'cosine' or 'euclidean', not {metric!r}")
        self.data = data
        self.metric = metric

    def query(self, X: np.ndarray, k: int = 10, epsilon: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        del epsilon  # exact: nothing to trade
        return _exact_knn(X, self.data, k, self.metric)


def _unit_rows(A: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return np.divide(A, norms, out=np.zeros_like(A), where=norms > 0)


def _scaled_init(Z: np.ndarray, n_components: int) -> np.ndarray:
    """A UMAP starting layout from other coordinates: their first principal axes, scaled to [0, 10]
    per axis (as UMAP scales its own spectral start), signs fixed."""
    start = _trivial_layout(Z, n_components).astype(np.float64)
    span = start.max(axis=0) - start.min(axis=0)
    span[span == 0] = 1.0
    return (10.0 * (start - start.min(axis=0)) / span).astype(np.float32)


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

    Over the ~150-line class guide: UMAP's small-input guards and the shared neighbour graph are one job.

    Args:
        n_components: output dimension.
        n_neighbors: neighbourhood size; clamped to ``n - 1`` on small inputs (see
            ``n_neighbors_`` and ``notes_``).
        min_dist: how tightly points may be packed, in [0, 1]; 0.0 suits clustering.
        metric: input-space metric, ``"cosine"`` for sentence embeddings.
        random_state: seed passed to UMAP; when set UMAP runs single-threaded and is
            bit-reproducible; ``None`` (default) runs in parallel, and two runs differ slightly.
        n_jobs: threads when ``random_state`` is ``None`` (UMAP ignores it otherwise).
        n_epochs: layout optimisation epochs; ``None`` keeps UMAP's choice (500 up to
            10,000 documents, 200 above). The layout is most of UMAP's time: fewer epochs
            (e.g. 200 for the 2-D map) are proportionally faster.
        init: starting layout: ``"spectral"`` (UMAP's), ``"pca"``, ``"random"``, or
            ``"reduction"``: start from other coordinates handed to ``fit_transform(init=...)``
            (the session hands the map the clustering reduction, so the map starts where the
            clusters are and needs fewer epochs); without them it falls back to spectral.
        pca_components: project the embeddings on this many principal axes first (seeded)
            when they are wider; ``None`` (default) uses them as they are.
        backend: ``"umap"`` (umap-learn, default) or ``"cuml"`` (RAPIDS cuML's UMAP on a CUDA
            GPU; optional and not tested here: it computes its own neighbour graph and ignores
            ``knn``, and an ``init="reduction"`` start becomes spectral).

    Fitted attributes:
        embedding_: ``float32 (n, n_components)``.
        n_neighbors_: the neighbourhood size actually used.
        method_: ``"umap"``, or ``"trivial"`` (a PCA layout) below ``MIN_UMAP_POINTS`` points.
        model_: the fitted ``umap.UMAP`` (its ``transform`` places new points); absent for the trivial layout.
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
        init: str = "spectral",
        pca_components: int | None = None,
        backend: str = "umap",
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.n_epochs = n_epochs
        self.init = init
        self.pca_components = pca_components
        self.backend = backend

    def _validate(self) -> tuple[int, int]:
        n_components = _check_int("n_components", self.n_components, 1)
        n_neighbors = _check_int("n_neighbors", self.n_neighbors, 2)
        if self.n_epochs is not None:
            _check_int("n_epochs", self.n_epochs, 1)
        if self.pca_components is not None:
            _check_int("pca_components", self.pca_components, 2)
        if self.backend not in ("umap", "cuml"):
            raise ClusteringError(f"backend={self.backend!r} is invalid; expected 'umap' or 'cuml'")
        if self.init not in INITS:
            raise ClusteringError(f"init={self.init!r} is invalid; expected one of {list(INITS)}")
        if not 0.0 <= float(self.min_dist) <= 1.0:
            raise ClusteringError(f"min_dist={self.min_dist!r} is invalid; expected a number in [0, 1]")
        return n_components, n_neighbors

    def effective_n_neighbors(self, n: int) -> int:
        """The neighbourhood size used for ``n`` points: ``min(n_neighbors, n - 1)``."""
        return max(1, min(int(self.n_neighbors), n - 1))

    def _project(self, X: np.ndarray) -> np.ndarray:
        """``X`` on its first ``pca_components`` principal axes (seeded), or ``X`` when not set or not wider."""
        if self.pca_components is None or X.shape[1] <= int(self.pca_components) or X.shape[0] <= int(
                self.pca_components):
            return X
        from sklearn.decomposition import PCA

        self.projection_ = PCA(n_components=int(self.pca_components), random_state=0)
        return self.projection_.fit_transform(X).astype(np.float32)

    def uses_exact_neighbors(self, n: int) -> bool:
        """Whether the neighbour graph of ``n`` documents is computed exactly (``EXACT_KNN_MAX_POINTS``)."""
        if n > EXACT_KNN_MAX_POINTS or self.metric not in ("cosine", "euclidean"):
            return False
        if n < UMAP_SMALL_DATA_POINTS:
            return True
        return not (self.random_state is None and nn_descent_compiled())

    def nearest_neighbors(self, X: np.ndarray, n_neighbors: int | None = None) -> NeighborGraph:
        """The neighbour graph UMAP would build on ``X``: exact up to ``EXACT_KNN_MAX_POINTS``
        documents (for ``cosine`` and ``euclidean``; see ``uses_exact_neighbors``), else approximate
        (NN-descent).

        ``k`` is ``n_neighbors`` (default: this reducer's, clamped to ``n - 1``). Pass the
        result to ``fit_transform(X, knn=...)`` of UMAP reducers with the same metric and
        at most ``k`` neighbours to skip recomputing it.
        """
        X = _as_points(X)
        self._validate()
        X = self._project(X)
        k = self.effective_n_neighbors(X.shape[0]) if n_neighbors is None else int(n_neighbors)
        if self.uses_exact_neighbors(X.shape[0]):
            indices, dists = exact_neighbors(X, k, self.metric)
            return NeighborGraph(indices=indices, distances=dists)
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
        mark_nn_descent_compiled()
        return NeighborGraph(indices=indices, distances=dists, search_index=search_index)

    def fit(self, X: np.ndarray, knn: NeighborGraph | None = None, init: np.ndarray | None = None) -> UMAPReducer:
        """Fit on ``X`` (``float32 (n, d)``); see ``fit_transform``. Returns self."""
        self.fit_transform(X, knn=knn, init=init)
        return self

    def fit_transform(self, X: np.ndarray, knn: NeighborGraph | None = None,
                      init: np.ndarray | None = None) -> np.ndarray:
        """Reduce ``X`` (``float32 (n, d)``) to ``float32 (n, n_components)``.

        Args:
            X: one row per document, finite.
            knn: optional neighbour graph from ``nearest_neighbors`` on the same ``X`` (same
                metric, at least ``n_neighbors_`` neighbours), to skip that step.
            init: with ``init="reduction"``: coordinates ``(n, m)`` to start from (their first
                ``n_components`` principal axes, scaled as UMAP scales its spectral start).

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
        start: str | np.ndarray = self.init if self.init != "reduction" else "spectral"
        if self.init == "reduction" and init is not None:
            init = np.asarray(init)
            if init.ndim != 2 or init.shape[0] != n or not np.isfinite(init).all():
                raise ClusteringError(f"init coordinates have shape {init.shape}; expected ({n}, m), finite")
            start = _scaled_init(init, n_components)
            self.init_ = "reduction"
        else:
            self.init_ = str(start)
        if self.init_ == "spectral" and n <= n_components + 1:
            start = self.init_ = "random"
            self.notes_.append(f"random UMAP start: {n} documents are too few for a spectral start")
        self.method_ = "umap"
        X = self._project(X)
        if knn is None and self.backend == "umap" and self.uses_exact_neighbors(n):
            # exact, BLAS: no NN-descent compile, the same graph as a shared one (on the projected data)
            knn = NeighborGraph(*exact_neighbors(X, self.n_neighbors_, self.metric))
        if self.backend == "cuml":  # pragma: no cover - needs a GPU and RAPIDS
            self.embedding_ = _cuml_umap(X, n_components, self.n_neighbors_, float(self.min_dist), self.metric,
                                         self.random_state, "random" if self.init_ == "random" else "spectral",
                                         self.n_epochs)
            return self.embedding_
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
            init=start,
            n_epochs=None if self.n_epochs is None else int(self.n_epochs),
            **kwargs,
        )
        try:
            with warnings.catch_warnings():  # our own exact graph has no NNDescent index: ExactSearchIndex below
                warnings.filterwarnings("ignore", message=".*knn_search_index.*")
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
        if not getattr(model, "_small_data", True):
            if knn is None:
                mark_nn_descent_compiled()  # UMAP ran NN-descent itself
            elif knn.search_index is None:
                # our exact graph came without a search index: give transform() an exact one (placement)
                model._knn_search_index = ExactSearchIndex(model._raw_data, self.metric)
        self.embedding_ = embedding
        self.model_ = model  # the fitted umap.UMAP, kept so a saved run can place new documents (placement)
        return embedding


    def neighbours(self, X: np.ndarray, batch_size: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """For new rows ``X`` (``float32 (m, d)``, the fitted data's width): their ``n_neighbors_`` nearest
        fitted rows (in the embedding space, this reducer's metric, through the fitted UMAP's search index)
        and UMAP's membership strengths, which its ``transform`` averages the new points' start from.

        Returns ``(int64 (m, k) fitted-row indices, -1 where none; float32 (m, k) strengths, 0 there)``,
        strongest first, ``batch_size`` rows at a time. No layout epochs run (unlike ``transform``).

        Raises:
            ClusteringError: not fitted with umap-learn (the trivial layout or cuML), or ``X`` of another width.
        """
        X = _as_points(X)
        model = getattr(self, "model_", None)
        if model is None:
            raise ClusteringError("this reducer has no fitted umap-learn model to place new documents with "
                                  "(too few documents, or the cuML backend); fit it on more documents")
        projection = getattr(self, "projection_", None)
        if projection is not None:
            X = projection.transform(X).astype(np.float32)
        if X.shape[1] != model._raw_data.shape[1]:
            raise ClusteringError(f"rows of width {X.shape[1]} cannot be placed into a UMAP fitted on width "
                                  f"{model._raw_data.shape[1]}")
        k = int(model._n_neighbors)
        cols = np.full((len(X), k), -1, dtype=np.int64)
        weights = np.zeros((len(X), k), dtype=np.float32)
        mode = model.transform_mode
        model.transform_mode = "graph"  # UMAP's transform up to its membership graph, without the layout epochs
        try:
            for start in range(0, len(X), batch_size):
                graph = model.transform(X[start:start + batch_size]).tocsr()
                graph.eliminate_zeros()
                counts = np.diff(graph.indptr)
                rows = np.repeat(np.arange(graph.shape[0]), counts)
                slot = np.arange(graph.nnz) - np.repeat(graph.indptr[:-1], counts)
                block_cols = np.full((graph.shape[0], k), -1, dtype=np.int64)
                block_weights = np.zeros((graph.shape[0], k), dtype=np.float32)
                block_cols[rows, slot] = graph.indices
                block_weights[rows, slot] = graph.data
                order = np.argsort(-block_weights, axis=1, kind="stable")
                cols[start:start + batch_size] = np.take_along_axis(block_cols, order, axis=1)
                weights[start:start + batch_size] = np.take_along_axis(block_weights, order, axis=1)
        finally:
            model.transform_mode = mode
        return cols, weights


def _cuml_umap(X: np.ndarray, n_components: int, n_neighbors: int, min_dist: float, metric: str,
               random_state: Any, init: str, n_epochs: int | None) -> np.ndarray:  # pragma: no cover - GPU only
    try:
        from cuml.manifold import UMAP
    except ImportError as exc:
        raise ClusteringError(f"backend='cuml' needs RAPIDS cuML and a CUDA GPU: {exc}") from exc
    model = UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                 random_state=random_state, init=init, **({} if n_epochs is None else {"n_epochs": int(n_epochs)}))
    out = model.fit_transform(X)
    out = out.get() if hasattr(out, "get") else out
    return np.asarray(out, dtype=np.float32)


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
