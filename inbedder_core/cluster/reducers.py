"""Reducers: ``fit_transform(X float32 (n, d)) -> float32 (n, n_components)``; ``UMAPReducer``,
``PCAReducer`` and ``IdentityReducer`` (skip the stage), plus the shared UMAP ``NeighborGraph``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inbedder_core.errors import ClusteringError

from .base import _all_identical, _as_points, _check_int, _Params
from .runtime import _import_umap

# Below this many points UMAP cannot build a neighbour graph worth the name (it needs
# n_neighbors >= 2, so n >= 3, and its spectral start needs more): a deterministic
# PCA layout is returned instead.
MIN_UMAP_POINTS = 4

# UMAP computes exact neighbours below this size (its own threshold); above it the
# session computes the approximate neighbour graph once and shares it between the
# clustering reduction and the 2-D map.
SHARED_KNN_MIN_POINTS = 4096


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

    Over the ~150-line class guide: UMAP's small-input guards and the shared neighbour graph are one job.

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
        self.model_ = model  # the fitted umap.UMAP, kept so a saved run can place new documents (placement)
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
