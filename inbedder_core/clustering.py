"""Kept so that ``from inbedder_core.clustering import ...`` keeps working: a thin re-export of
``inbedder_core.cluster`` (reducers, clusterers, session, runtime). New code imports from there.
"""

from __future__ import annotations

from .cluster.base import (  # noqa: F401
    Clusterer,
    Reducer,
    as_labels,
    stage_key,
)
from .cluster.clusterers import (  # noqa: F401
    SILHOUETTE_SAMPLE_SIZE,
    HDBSCANClusterer,
    KMeansClusterer,
    assign_noise,
    clustering_quality,
)
from .cluster.reducers import (  # noqa: F401
    MIN_UMAP_POINTS,
    SHARED_KNN_MIN_POINTS,
    IdentityReducer,
    NeighborGraph,
    PCAReducer,
    UMAPReducer,
)
from .cluster.runtime import (  # noqa: F401
    NUMBA_CACHE_SUBDIR,
    configure_numba_cache,
    default_numba_cache_dir,
    warm_up,
)
from .cluster.session import (  # noqa: F401
    ClusteringOutcome,
    ClusteringSession,
)

__all__ = [
    "NUMBA_CACHE_SUBDIR",
    "MIN_UMAP_POINTS",
    "SHARED_KNN_MIN_POINTS",
    "SILHOUETTE_SAMPLE_SIZE",
    "default_numba_cache_dir",
    "configure_numba_cache",
    "warm_up",
    "as_labels",
    "stage_key",
    "Reducer",
    "Clusterer",
    "NeighborGraph",
    "UMAPReducer",
    "PCAReducer",
    "IdentityReducer",
    "HDBSCANClusterer",
    "KMeansClusterer",
    "assign_noise",
    "clustering_quality",
    "ClusteringOutcome",
    "ClusteringSession",
]
