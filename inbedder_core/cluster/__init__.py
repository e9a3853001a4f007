"""Stage reduce/cluster: embeddings -> 2-D map and cluster labels (int64, ``NOISE`` = -1).

``base`` (protocols, checks) <- ``runtime`` (numba cache, warm-up) <- ``reducers``, ``clusterers`` <- ``session``.
"""

from __future__ import annotations

from .base import Clusterer, Reducer, as_labels, nearest_vote, stage_key
from .clusterers import (
    HDBSCAN_BACKENDS,
    SILHOUETTE_SAMPLE_SIZE,
    EVoCClusterer,
    HDBSCANClusterer,
    KMeansClusterer,
    assign_noise,
    clustering_quality,
)
from .reducers import (
    EXACT_KNN_MAX_POINTS,
    MAP_EPOCHS,
    MIN_UMAP_POINTS,
    SHARED_KNN_MIN_POINTS,
    IdentityReducer,
    NeighborGraph,
    PCAReducer,
    UMAPReducer,
    exact_neighbors,
)
from .runtime import NUMBA_CACHE_SUBDIR, configure_numba_cache, default_numba_cache_dir, enable_numba_caching, warm_up
from .session import FIT_SAMPLE_ABOVE, FIT_SAMPLE_SIZE, ClusteringOutcome, ClusteringSession

__all__ = [
    "as_labels",
    "stage_key",
    "nearest_vote",
    "Reducer",
    "Clusterer",
    "NUMBA_CACHE_SUBDIR",
    "default_numba_cache_dir",
    "configure_numba_cache",
    "enable_numba_caching",
    "warm_up",
    "MIN_UMAP_POINTS",
    "SHARED_KNN_MIN_POINTS",
    "EXACT_KNN_MAX_POINTS",
    "MAP_EPOCHS",
    "exact_neighbors",
    "NeighborGraph",
    "UMAPReducer",
    "PCAReducer",
    "IdentityReducer",
    "SILHOUETTE_SAMPLE_SIZE",
    "HDBSCANClusterer",
    "HDBSCAN_BACKENDS",
    "EVoCClusterer",
    "KMeansClusterer",
    "assign_noise",
    "clustering_quality",
    "ClusteringOutcome",
    "ClusteringSession",
    "FIT_SAMPLE_ABOVE",
    "FIT_SAMPLE_SIZE",
]
