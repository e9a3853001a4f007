"""Where clusters sit on the map: centres, neighbours, representative documents."""

from __future__ import annotations

import numpy as np

from inbedder_core.landmarks import cluster_centres, neighbour_pairs, representative_documents
from inbedder_core.results import NOISE


def test_centres_are_medians_so_a_stray_point_does_not_pull_them_and_noise_has_none():
    coords = np.array([[0, 0], [1, 0], [0, 1], [100, 100], [5, 5], [6, 6], [7, 7]], dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, NOISE])
    centres = cluster_centres(coords, labels)
    assert set(centres) == {0, 1}
    np.testing.assert_allclose(centres[0], [0.5, 0.5])
    np.testing.assert_allclose(centres[1], [5.5, 5.5])


def test_representatives_are_the_documents_closest_to_the_centre_closest_first():
    coords = np.array([[0, 0], [3, 0], [-1, 0], [0.5, 0], [-2, 0], [50, 50]], dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 0, NOISE])
    assert representative_documents(coords, labels, n=3) == {0: [0, 3, 2]}  # median x = 0
    assert representative_documents(coords, labels, n=10) == {0: [0, 3, 2, 4, 1]}  # at most the cluster
    tied = np.array([[1, 0], [-1, 0], [0, 0]], dtype=np.float32)
    assert representative_documents(tied, np.array([0, 0, 0]), n=3) == {0: [2, 0, 1]}  # ties: document order


def test_neighbours_are_delaunay_edges_and_nearest_centres():
    grid = {i: np.array([i % 3, i // 3], dtype=float) for i in range(9)}  # a 3 x 3 grid of centres
    pairs = neighbour_pairs(grid, k=2)
    assert (0, 1) in pairs and (0, 3) in pairs and (4, 5) in pairs  # side by side
    assert (0, 8) not in pairs  # opposite corners: others lie between
    assert all(a < b for a, b in pairs)
    line = {i: np.array([float(i), 0.0]) for i in range(5)}  # collinear: no triangulation, nearest only
    assert neighbour_pairs(line, k=1) == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert neighbour_pairs({3: np.zeros(2)}) == set()
