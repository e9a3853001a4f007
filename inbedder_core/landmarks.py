"""Where clusters sit on the map: their centres, which clusters neighbour each other, and the
few documents that represent each cluster (the ones closest to its centre).

Pure numpy/scipy on a result's 2-D map (``coords``, ``float32 (n_docs, 2)``) and its labels
(``int (n_docs,)``, ``NOISE`` = -1). The map is the reduced space the analyst sees, so "central"
here means central on the map; noise has no centre and no representatives.
"""

from __future__ import annotations

import numpy as np

from .results import NOISE

N_REPRESENTATIVES = 3


def cluster_centres(coords: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """cluster id -> ``float64 (2,)``, the per-axis median of its points (noise left out).

    The median, not the mean, so that a few stray points do not pull a name off its cluster.
    """
    coords = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    return {int(c): np.median(coords[labels == c], axis=0) for c in np.unique(labels) if c != NOISE}


def representative_documents(coords: np.ndarray, labels: np.ndarray,
                             n: int = N_REPRESENTATIVES) -> dict[int, list[int]]:
    """cluster id -> the indices of its ``n`` documents closest to its centre on the map, closest first.

    Ties are broken by document order, so the choice is deterministic. Noise gets none.
    """
    coords = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    out: dict[int, list[int]] = {}
    for cluster_id, centre in cluster_centres(coords, labels).items():
        members = np.flatnonzero(labels == cluster_id)
        distance = np.linalg.norm(coords[members] - centre, axis=1)
        order = np.lexsort((members, distance))[:n]
        out[cluster_id] = [int(i) for i in members[order]]
    return out


def neighbour_pairs(centres: dict[int, np.ndarray], k: int = 4) -> set[tuple[int, int]]:
    """Pairs ``(a, b)``, ``a < b``, of clusters that sit next to each other on the map.

    Two clusters neighbour when their centres share an edge of the Delaunay triangulation
    (nothing lies between them), or one is among the other's ``k`` nearest centres.
    """
    ids = sorted(centres)
    if len(ids) < 2:
        return set()
    points = np.array([centres[i] for i in ids], dtype=np.float64)
    pairs: set[tuple[int, int]] = set()
    distance = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(distance, np.inf)
    for row in range(len(ids)):
        for col in np.argsort(distance[row], kind="stable")[:k]:
            a, b = ids[row], ids[int(col)]
            pairs.add((min(a, b), max(a, b)))
    if len(ids) >= 4:
        from scipy.spatial import Delaunay, QhullError

        try:
            triangles = Delaunay(points).simplices
        except QhullError:  # all centres on a line: the nearest neighbours above suffice
            triangles = np.empty((0, 3), dtype=int)
        for triangle in triangles:
            for i in range(3):
                a, b = ids[int(triangle[i])], ids[int(triangle[(i + 1) % 3])]
                pairs.add((min(a, b), max(a, b)))
    return pairs
