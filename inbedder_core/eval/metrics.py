"""Evaluation metrics on embeddings: paired cosine, triplet success, Spearman, the clustering
V-measure, robustness and aspect margins, and the harmonic mean of awareness scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EvaluationError

CLUSTERERS = ("minibatch", "kmeans")


# --- metrics -----------------------------------------------------------------------------------


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, d)`` arrays; ``float64 (n,)``. Zero rows give 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise EvaluationError(f"paired_cosine needs two (n, d) arrays of one shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("ij,ij->i", a, b) / np.maximum(norms, 1e-12)


def triplet_success_rate(anchors: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> float:
    """Share of rows where ``cos(anchor, positive) > cos(anchor, negative)`` (ties fail).

    Raises:
        EvaluationError: no triplets, or arrays of different shapes.
    """
    if len(anchors) == 0:
        raise EvaluationError("no triplets to score")
    success = paired_cosine(anchors, positives) > paired_cosine(anchors, negatives)
    return float(np.mean(success))


def spearman(predicted: Sequence[float] | np.ndarray, gold: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either side is constant.

    Raises:
        EvaluationError: fewer than two pairs or lengths differ.
    """
    from scipy.stats import spearmanr

    if len(predicted) != len(gold):
        raise EvaluationError(f"spearman needs equal lengths, got {len(predicted)} and {len(gold)}")
    if len(gold) < 2:
        raise EvaluationError(f"spearman needs at least 2 pairs, got {len(gold)}")
    left = np.asarray(predicted, dtype=np.float64)
    right = np.asarray(gold, dtype=np.float64)
    if np.ptp(left) == 0 or np.ptp(right) == 0:
        return float("nan")
    return float(spearmanr(left, right).statistic)


def harmonic_mean(values: Sequence[float]) -> float:
    """Harmonic mean; 0 when any value is <= 0, NaN when any is NaN.

    Raises:
        EvaluationError: no values.
    """
    if len(values) == 0:
        raise EvaluationError("harmonic mean of no values")
    array = np.asarray(values, dtype=np.float64)
    if np.isnan(array).any():
        return float("nan")
    if (array <= 0).any():
        return 0.0
    return float(len(array) / np.sum(1.0 / array))


@dataclass(frozen=True)
class ClusteringScore:
    """V-measure over seeds: ``mean``, ``std`` (population) and one value per seed."""

    mean: float
    std: float
    per_seed: tuple[float, ...]


def clustering_v_measure(
    embeddings: np.ndarray,
    labels: Sequence[Any],
    *,
    n_seeds: int = 5,
    clusterer: str = "minibatch",
    batch_size: int = 500,
    groups: Sequence[int] | None = None,
) -> ClusteringScore:
    """KMeans with ``k`` = number of distinct gold labels, scored by V-measure, per seed.

    Args:
        embeddings: ``(n, d)`` float array.
        labels: ``n`` gold labels (any hashable).
        n_seeds: runs with ``random_state`` 0..n_seeds-1.
        clusterer: ``"minibatch"`` (``MiniBatchKMeans(batch_size, n_init="auto")``) or ``"kmeans"``.
        groups: optional group id per row; each group is clustered separately and the
            seed's score is the mean over groups.

    Raises:
        EvaluationError: lengths differ, or a group has fewer than 2 labels or fewer rows than labels.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import v_measure_score

    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = list(labels)
    if len(labels) != len(embeddings):
        raise EvaluationError(f"{len(embeddings)} embeddings but {len(labels)} labels")
    if clusterer not in CLUSTERERS:
        raise EvaluationError(f"clusterer '{clusterer}' is not supported; choose one of {list(CLUSTERERS)}")
    group_ids = np.zeros(len(labels), dtype=int) if groups is None else np.asarray(groups)
    members = [np.flatnonzero(group_ids == g) for g in dict.fromkeys(group_ids.tolist())]
    for rows in members:
        k = len({labels[i] for i in rows})
        if k < 2:
            raise EvaluationError(f"clustering needs at least 2 distinct gold labels, found {k}; "
                                  "check the label column")
    per_seed = []
    for seed in range(n_seeds):
        scores = []
        for rows in members:
            gold = [labels[i] for i in rows]
            k = len(set(gold))
            if clusterer == "minibatch":
                model = MiniBatchKMeans(n_clusters=k, batch_size=batch_size, n_init="auto", random_state=seed)
            else:
                model = KMeans(n_clusters=k, n_init="auto", random_state=seed)
            predicted = model.fit(embeddings[rows]).labels_
            scores.append(v_measure_score(gold, predicted))
        per_seed.append(float(np.mean(scores)))
    return ClusteringScore(float(np.mean(per_seed)), float(np.std(per_seed)), tuple(per_seed))


def robustness_margins(correct: Sequence[float], implicit: Sequence[float],
                       incorrect: Sequence[float]) -> dict[str, float | None]:
    """``DCI = min(correct) - max(incorrect)``, ``DII = min(implicit) - max(incorrect)``.

    ``DII`` is ``None`` without implicit scores.

    Raises:
        EvaluationError: no correct or no incorrect scores.
    """
    if not correct or not incorrect:
        raise EvaluationError("robustness needs at least one correct and one incorrect instruction score")
    worst_wrong = max(incorrect)
    return {"DCI": float(min(correct) - worst_wrong),
            "DII": float(min(implicit) - worst_wrong) if implicit else None}


def aspect_margins(matrix: np.ndarray) -> np.ndarray:
    """Per column ``j``: ``matrix[j, j] - max_{i != j} matrix[i, j]``; ``float64 (n,)``.

    ``matrix[i, j]`` is the score of instruction ``i`` (written for column ``i``) on the
    labels of column ``j``.

    Raises:
        EvaluationError: not a square matrix of size at least 2.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise EvaluationError(f"aspect margins need a square matrix with at least 2 aspects, got {matrix.shape}")
    off = matrix.copy()
    np.fill_diagonal(off, -np.inf)
    return np.diag(matrix) - off.max(axis=0)
