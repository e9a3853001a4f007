"""What every cluster labeller shares: the ``ClusterLabeler`` protocol, the labeller modes and the
input checks (labels int64 (n,), texts, optional answers and vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from ..errors import LabelingError
from ..results import NOISE, ClusterName

if TYPE_CHECKING:
    pass



LabelerMode = Literal["auto", "llm", "keywords"]
LABELER_MODES: tuple[str, ...] = ("auto", "llm", "keywords")


class ClusterLabeler(Protocol):
    """Anything that names clusters: ``KeywordLabeler``, ``LLMLabeler`` or a test fake."""

    def label(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        answers: Sequence[str] | None = None,
        instruction: str | None = None,
        *,
        vectors: np.ndarray | None = None,
    ) -> list[ClusterName]: ...


# --------------------------------------------------------------------------------------------
# Input checks shared by both labellers
# --------------------------------------------------------------------------------------------


def _check_inputs(
    texts: Sequence[object],
    labels: Sequence[int] | np.ndarray,
    answers: Sequence[object] | None,
) -> np.ndarray:
    """Return ``labels`` as ``int64 (n_docs,)`` after checking that the lengths agree."""
    try:
        label_array = np.asarray(labels)
    except (TypeError, ValueError) as err:  # ragged input
        raise LabelingError(f"labels must be a 1-D sequence of integers; got {type(labels).__name__}") from err
    if label_array.ndim != 1:
        raise LabelingError(f"labels must be 1-D (n_docs,); got shape {label_array.shape}")
    if label_array.size and not np.issubdtype(label_array.dtype, np.integer):
        integral = np.issubdtype(label_array.dtype, np.floating) and bool(np.all(np.mod(label_array, 1) == 0))
        if not integral:
            raise LabelingError(
                f"labels must be integers (cluster ids, {NOISE} for noise); got dtype {label_array.dtype}"
            )
    label_array = label_array.astype(np.int64)
    if len(texts) != len(label_array):
        raise LabelingError(
            f"got {len(texts)} texts but {len(label_array)} labels; pass one cluster label per document"
        )
    if answers is not None and len(answers) != len(label_array):
        raise LabelingError(
            f"got {len(answers)} answers but {len(label_array)} labels; pass one answer per document or None"
        )
    return label_array


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LabelingError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _non_negative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
        raise LabelingError(f"{name} must be a number >= 0; got {value!r}")
    return float(value)
