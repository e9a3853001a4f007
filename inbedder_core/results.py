"""The result types that flow between the analysis stages, the app and the exporters.

Plain dataclasses, no behaviour beyond small derived views. ``NOISE`` (-1) marks
documents that HDBSCAN left unclustered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

NOISE = -1
NOISE_NAME = "Noise"
"""What the noise bucket is called everywhere: tables, maps, exports, contingency tables."""

NOT_APPLICABLE = -2
NOT_APPLICABLE_NAME = "does not apply"
"""The group of documents the question does not apply to (no answer; ``applicability``), apart from noise."""

NameSource = Literal["llm", "keywords", "noise", "not applicable"]


@dataclass
class ClusterName:
    """What one cluster is called, and why.

    ``source`` is ``"llm"`` when an LLM named it, ``"keywords"`` when the name was
    built from the top keywords (by choice, or as the fallback after an LLM failure,
    in which case ``error`` says what failed), ``"noise"`` for the noise bucket.
    """

    cluster_id: int
    name: str
    description: str
    keywords: list[str] = field(default_factory=list)
    answer_keywords: list[str] = field(default_factory=list)
    source: NameSource = "keywords"
    error: str | None = None


@dataclass
class ClusterSummary:
    """One row of the cluster table of one instruction's run.

    ``generated_name`` is the LLM/keyword name when the analyst renamed the cluster (``None``
    otherwise); ``interesting`` is False for a cluster marked "not interesting" (``edits``).
    """

    cluster_id: int
    size: int
    share: float
    name: str
    description: str
    keywords: list[str]
    top_answers: list[tuple[str, int]]
    source: NameSource
    generated_name: str | None = None
    interesting: bool = True


@dataclass
class InstructionResult:
    """Everything computed for one instruction over one corpus.

    Attributes:
        instruction: the question asked of every document.
        answers: the model's short answer per document (``None`` for the baseline kind,
            or a causal model run without answers).
        labels: ``int64 (n_docs,)``, final cluster per document, ``NOISE`` for noise.
        raw_labels: ``int64 (n_docs,)``, the clusterer's labels before noise assignment
            (equal to ``labels`` when noise is kept).
        coords: ``float32 (n_docs, 2)``, the 2-D map.
        clusters: one summary per cluster id, noise included when present.
        quality: ``clustering_quality`` figures (``n_clusters``, ``noise_share``, ``silhouette``, ``notes``...).
        timings: seconds per stage.
    """

    instruction: str
    answers: list[str] | None
    labels: np.ndarray
    raw_labels: np.ndarray
    coords: np.ndarray
    clusters: list[ClusterSummary]
    quality: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
