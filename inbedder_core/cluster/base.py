"""What every reduce/cluster stage shares: the ``Reducer`` and ``Clusterer`` protocols, the
parameter-holding base ``_Params``, input checks (``as_labels``) and ``stage_key`` for memoising.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable
from typing import Any, Protocol

import numpy as np

from inbedder_core.errors import ClusteringError
from inbedder_core.results import NOISE

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


# --------------------------------------------------------------------------- placing by neighbours


def nearest_vote(Z: np.ndarray, fitted_Z: np.ndarray, fitted_labels: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's label by a vote of its ``k`` nearest fitted rows (euclidean, in a low-dimensional
    clustering space): the most common label (noise included), ties to the nearer neighbour; the
    strength is that label's share of the votes.

    Exact (a KD-tree, so memory stays ``O(len(Z) * k)``); a fitted row is its own nearest neighbour
    and keeps its label. Returns ``(int64 labels, float64 strength)``; all noise with strength 0
    when nothing was fitted.
    """
    labels = np.full(len(Z), NOISE, dtype=np.int64)
    strength = np.zeros(len(Z), dtype=np.float64)
    if len(fitted_Z) == 0 or len(Z) == 0:
        return labels, strength
    from sklearn.neighbors import KDTree

    k = max(1, min(int(k), len(fitted_Z)))
    fitted_labels = np.asarray(fitted_labels, dtype=np.int64)
    tree = KDTree(np.asarray(fitted_Z, dtype=np.float64))
    for start in range(0, len(Z), 65536):
        block = np.asarray(Z[start:start + 65536], dtype=np.float64)
        _, near = tree.query(block, k=k, sort_results=True)
        labels[start:start + len(block)], shares = row_vote(fitted_labels[near])
        strength[start:start + len(block)] = shares
    return labels, strength


def row_vote(votes: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``votes`` (``(m, k)`` labels, nearest first), the most common label, ties to the earlier
    column, and its share of the row's valid votes; ``valid`` (``bool (m, k)``) leaves entries out (a row
    without any gets ``NOISE`` and 0)."""
    votes = np.asarray(votes, dtype=np.int64)
    valid = np.ones(votes.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    same = (votes[:, :, None] == votes[:, None, :]) & valid[:, None, :] & valid[:, :, None]
    counts = same.sum(axis=2)  # votes for each neighbour's label
    best = counts.max(axis=1) if votes.shape[1] else np.zeros(len(votes), dtype=np.int64)
    first = np.argmax(counts == best[:, None], axis=1)  # the nearest neighbour among the winners
    labels = np.where(best > 0, votes[np.arange(len(votes)), first], NOISE) if votes.shape[1] else \
        np.full(len(votes), NOISE, dtype=np.int64)
    return labels.astype(np.int64), best / np.maximum(valid.sum(axis=1), 1)
