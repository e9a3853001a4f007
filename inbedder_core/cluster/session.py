"""``ClusteringSession``: one instruction's embeddings, with the reduced vectors and the 2-D map
memoised so that changing ``min_cluster_size`` or ``k`` re-runs only the clusterer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inbedder_core.errors import ClusteringError
from inbedder_core.results import NOISE

from .base import _as_points, _freeze, as_labels, nearest_vote, row_vote, stage_key
from .clusterers import _assign_to_nearest_centroid, clustering_quality
from .reducers import MIN_UMAP_POINTS, SHARED_KNN_MIN_POINTS, NeighborGraph, UMAPReducer

FIT_SAMPLE_ABOVE = 200_000
"""Above this many documents a run fits the reducers and the clusterer on a sample of ``FIT_SAMPLE_SIZE``
and places the other documents into it (``ClusteringSession(fit_sample=...)``;
``AnalysisSettings.fit_sample_above``; ``benchmarks/bench_scale.py`` measures both sides of it)."""
FIT_SAMPLE_SIZE = 100_000

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
            ``place`` (sessions fitted on a sample), ``assign_noise``, ``quality``.
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
        map_reducer: the 2-D map reducer; default ``UMAPReducer(n_components=2, min_dist=0.1)``
            (pass one with ``init="reduction"`` to start the map from the clustering vectors).
        shared_knn_min_points: from this many documents both UMAP fits share one neighbour graph.
        fit_sample: fit the UMAPs and the clusterer on this many documents drawn at random (seeded by
            ``sample_seed``, so the sample is the same in every run) and place the others through their
            nearest sample documents in the embedding space (found once, through the fitted UMAP's search
            index, with UMAP's membership strengths: ``UMAPReducer.neighbours``): into the clustering space
            and onto the map at the strength-weighted mean of those documents' positions (where UMAP's
            ``transform`` starts, without its layout epochs), and into the cluster most common among the
            clusterer's ``min_samples`` (else 10) nearest. ``None`` (default), or not fewer than the
            documents: fit on all of them.
        sample_seed: the seed of that draw.

    Attributes:
        n_reductions_: reducer fits run for ``reduced()`` (a test can check it stays 1).
        n_maps_: map-reducer fits run for ``coords()``.
        n_knn_: neighbour graphs computed for sharing.
        sample_index_: ``int64`` sorted indices of the documents fitted on, or ``None`` (all).
        place_seconds_: seconds spent so far placing the documents outside the sample (transforms and votes).
        n_clusterings_: clusterer runs.
        timings_: seconds of the last ``knn``, ``reduce`` and ``map`` computations.
        notes_: what the reducers adjusted (e.g. n_neighbors clamped).

    Thread-safe: concurrent calls compute each stage once.

    Raises:
        ClusteringError: on empty or non-finite embeddings.
    """

    def __init__(self, embeddings: np.ndarray, reducer: Any = None, map_reducer: Any = None,
                 shared_knn_min_points: int = SHARED_KNN_MIN_POINTS, fit_sample: int | None = None,
                 sample_seed: int = 0) -> None:
        self.embeddings = _as_points(embeddings)
        n = self.embeddings.shape[0]
        self.fit_sample = fit_sample
        self.sample_index_: np.ndarray | None = None
        self._rest_index: np.ndarray | None = None
        self._fit_points = self.embeddings
        if fit_sample is not None and int(fit_sample) < n:
            if int(fit_sample) < MIN_UMAP_POINTS * 10:
                raise ClusteringError(f"fit_sample={fit_sample} is too small a sample to fit UMAP on and place "
                                      f"{n:,} documents into; use at least {MIN_UMAP_POINTS * 10}")
            chosen = np.sort(np.random.default_rng(sample_seed).choice(n, size=int(fit_sample), replace=False))
            rest = np.ones(n, dtype=bool)
            rest[chosen] = False
            self.sample_index_ = chosen.astype(np.int64)
            self._rest_index = np.flatnonzero(rest)
            self._fit_points = self.embeddings[chosen]
        self.shared_knn_min_points = shared_knn_min_points
        self.reducer = UMAPReducer() if reducer is None else reducer
        self.map_reducer = UMAPReducer(n_components=2, min_dist=0.1) if map_reducer is None else map_reducer
        self.n_reductions_ = 0
        self.n_maps_ = 0
        self.n_knn_ = 0
        self.n_clusterings_ = 0
        self.place_seconds_ = 0.0
        self.timings_: dict[str, float] = {}
        self.notes_: list[str] = []
        self._memo: dict[Hashable, np.ndarray] = {}
        self._memo_notes: dict[Hashable, list[str]] = {}
        self._knn: dict[Hashable, NeighborGraph] = {}
        self._fitted: dict[Hashable, Any] = {}
        self._rest_graphs: dict[Hashable, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.RLock()

    @property
    def n_points(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def sample_note(self) -> str | None:
        """What the sample was (for the run's notes), or ``None`` when every document was fitted."""
        if self.sample_index_ is None:
            return None
        return (f"fitted on a random sample of {len(self.sample_index_):,} of {self.n_points:,} documents; the other "
                f"{self.n_points - len(self.sample_index_):,} were placed by their nearest sample documents")

    def _rest_key(self, reducer: UMAPReducer) -> Hashable:
        return (reducer.metric, reducer.pca_components, reducer.effective_n_neighbors(len(self._fit_points)))

    def _rest_neighbours(self, reducer: UMAPReducer) -> tuple[np.ndarray, np.ndarray]:
        """The outside documents' nearest sample documents and UMAP strengths (``UMAPReducer.neighbours`` of the
        fitted ``reducer``), found once per metric, projection and neighbourhood size."""
        key = self._rest_key(reducer)
        if key not in self._rest_graphs:
            start = time.perf_counter()
            self._rest_graphs[key] = reducer.neighbours(self.embeddings[self._rest_index])
            self.place_seconds_ += time.perf_counter() - start
        return self._rest_graphs[key]

    def _knn_for(self, reducer: UMAPReducer) -> NeighborGraph | None:
        n = len(self._fit_points)
        if n < self.shared_knn_min_points:
            return None
        umaps = [r for r in (self.reducer, self.map_reducer, reducer) if isinstance(r, UMAPReducer)]

        def graph_key(r: UMAPReducer) -> Hashable:
            return (r.metric, r.pca_components, None if r.uses_exact_neighbors(n) else _freeze(r.random_state))

        key = graph_key(reducer)
        same = [r for r in umaps if graph_key(r) == key]
        need = reducer.effective_n_neighbors(n)
        cached = self._knn.get(key)
        if cached is not None and cached.k >= need:
            return cached
        k = max(r.effective_n_neighbors(n) for r in same)
        start = time.perf_counter()
        graph = reducer.nearest_neighbors(self._fit_points, n_neighbors=k)
        self.timings_["knn"] = time.perf_counter() - start
        self.n_knn_ += 1
        self._knn[key] = graph
        return graph

    def _fit(self, reducer: Any, start_from: Any = None) -> tuple[np.ndarray, bool]:
        """``(vectors, whether they were computed now)``, memoised by the reducer's configuration.

        ``start_from``: for a UMAP reducer with ``init="reduction"``, the reducer whose
        (memoised) vectors it starts from.
        """
        from_reduction = isinstance(reducer, UMAPReducer) and reducer.init == "reduction" and start_from is not None
        key = (stage_key(reducer), stage_key(start_from)) if from_reduction else stage_key(reducer)
        if key in self._memo:
            return self._memo[key], False
        if isinstance(reducer, UMAPReducer) and self.sample_index_ is not None:
            init = self._fit(start_from)[0][self.sample_index_] if from_reduction else None
            fitted = reducer.fit_transform(self._fit_points, knn=self._knn_for(reducer), init=init)
            cols, weights = self._rest_neighbours(reducer)
            start = time.perf_counter()
            out = np.empty((self.n_points, fitted.shape[1]), dtype=np.float32)
            out[self.sample_index_] = fitted
            out[self._rest_index] = _weighted_positions(fitted, cols, weights)
            self.place_seconds_ += time.perf_counter() - start
        elif isinstance(reducer, UMAPReducer):
            init = self._fit(start_from)[0] if from_reduction else None
            knn = self._knn_for(reducer)
            out = reducer.fit_transform(self.embeddings, knn=knn, init=init)
        else:
            out = reducer.fit_transform(self.embeddings)
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != self.n_points:
            raise ClusteringError(
                f"{type(reducer).__name__} returned shape {out.shape}; expected ({self.n_points}, n_components)"
            )
        self._memo[key] = out
        self._fitted[key] = reducer
        notes = list(getattr(reducer, "notes_", []))
        self._memo_notes[key] = notes
        self.notes_.extend(n for n in notes if n not in self.notes_)
        return out, True

    def fitted(self, reducer: Any, start_from: Any = None) -> Any:
        """The reducer object fitted for ``reducer``'s configuration (``None`` if not computed yet).

        A UMAP map with ``init="reduction"`` is looked up as started from ``start_from``'s vectors
        (default: the session's reducer), as ``coords`` computes it. Its ``model_`` (UMAP) can
        ``transform`` new points; ``placement`` saves it.
        """
        with self._lock:
            if isinstance(reducer, UMAPReducer) and reducer.init == "reduction":
                source = self.reducer if start_from is None else start_from
                return self._fitted.get((stage_key(reducer), stage_key(source)))
            return self._fitted.get(stage_key(reducer))

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

    def coords(self, map_reducer: Any = None, reducer: Any = None) -> np.ndarray:
        """The 2-D map, ``float32 (n, 2)`` (for a 2-component map reducer), computed once per configuration.

        A UMAP map reducer with ``init="reduction"`` starts from the clustering vectors of
        ``reducer`` (default: the session's), computing them first if needed.
        """
        with self._lock:
            source = self.reducer if reducer is None else reducer
            chosen = self.map_reducer if map_reducer is None else map_reducer
            if isinstance(chosen, UMAPReducer) and chosen.init == "reduction":
                self.reduced(source)  # memoised; counted and timed as the reduction
            start = time.perf_counter()
            out, computed = self._fit(chosen, start_from=source)
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
        if self.sample_index_ is None:
            raw = as_labels(clusterer.fit_predict(Z), Z.shape[0], "clusterer labels")
            timings["cluster"] = time.perf_counter() - start
        else:
            fitted = as_labels(clusterer.fit_predict(Z[self.sample_index_]), len(self.sample_index_),
                               "clusterer labels")
            timings["cluster"] = time.perf_counter() - start
            start = time.perf_counter()
            raw = np.empty(Z.shape[0], dtype=np.int64)
            raw[self.sample_index_] = fitted
            k = getattr(clusterer, "min_samples_", None) or 10
            used = self.reducer if reducer is None else reducer
            if isinstance(used, UMAPReducer) and self._rest_key(used) in self._rest_graphs:
                cols = self._rest_graphs[self._rest_key(used)][0][:, :k]
                raw[self._rest_index] = row_vote(fitted[np.maximum(cols, 0)], cols >= 0)[0]
            else:  # a reducer without UMAP's neighbours: the nearest sample documents in the clustering space
                raw[self._rest_index] = nearest_vote(Z[self._rest_index], Z[self.sample_index_], fitted, k)[0]
            timings["place"] = time.perf_counter() - start
            self.place_seconds_ += timings["place"]
            reducer_notes.append(self.sample_note or "")
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


def _weighted_positions(fitted: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's strength-weighted mean of its neighbours' positions in ``fitted`` (``cols`` -1: none); a row
    without neighbours goes to the mean of all fitted positions."""
    w = np.where(cols >= 0, weights, 0.0).astype(np.float64)
    total = w.sum(axis=1, keepdims=True)
    out = np.einsum("mk,mkd->md", w / np.maximum(total, 1e-12), fitted[np.maximum(cols, 0)].astype(np.float64))
    out[total[:, 0] <= 0] = fitted.mean(axis=0)
    return out.astype(np.float32)
