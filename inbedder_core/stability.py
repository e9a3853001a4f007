"""Stability under rewording: does a clustering survive when its question is asked in other words?

For a question and its rewordings (typed, proposed by an LLM with ``propose_rewordings``, or built
from ``TEMPLATES`` in the paraphrase style of the InBedder paper's robustness lists), each is run
through the same ``Analysis`` and compared with the original:

- per cluster of the original, its **best-match Jaccard** in each rewording (the cluster of the
  rewording that shares the most documents, relative to their union; noise is never a match), the
  mean over rewordings, a **badge** (``stable`` at ``STABLE_AT`` or more, ``unstable`` below
  ``SHAKY_AT``, else ``shaky``) and a flag on unstable clusters ("this group depends on the wording");
- **ARI/NMI** between every pair of clusterings (``comparison.pairwise_comparisons``);
- per document, the **share of rewordings that keep it with the same neighbours**: a rewording keeps
  a document when at least ``KEEP_AT`` of its ``k`` nearest neighbours (cosine, on the embeddings)
  under the original question are among its ``k`` nearest under the rewording.

Identical rewordings give 1.0 everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .analysis import Analysis, names_of
from .comparison import pairwise_comparisons
from .errors import InBedderError
from .results import NOISE, InstructionResult

STABLE_AT = 0.7
SHAKY_AT = 0.4
KEEP_AT = 0.5
DEFAULT_K = 10
UNSTABLE_FLAG = "this group depends on the wording"

TEMPLATES: tuple[str, ...] = (
    "I'm curious, {question}",
    "Could you tell me, {question}",
    "Can you inform me: {question}",
    "I'd like to know, {question}",
)
"""Rewordings in the style of the paper's "correct" paraphrases ("I'm curious, what is the article about?",
"Could you tell me what subject the article is focused on?", "Can you inform me about ..."; MIT, see
``data/instructions.json``): the question kept, wrapped in a polite request."""


def template_rewordings(question: str, n: int = 3) -> list[str]:
    """The first ``n`` ``TEMPLATES`` applied to ``question`` (its first letter lower-cased after the lead-in)."""
    question = question.strip()
    if not question:
        raise InBedderError("the question is empty; ask a question such as 'What does the customer need?'")
    if not 1 <= n <= len(TEMPLATES):
        raise InBedderError(f"{n} template rewordings asked; there are 1 to {len(TEMPLATES)}")
    body = question[0].lower() + question[1:] if question[1:2].islower() or len(question) == 1 else question
    return [template.format(question=body) for template in TEMPLATES[:n]]


def badge(jaccard: float) -> str:
    """``stable`` (>= ``STABLE_AT``), ``shaky`` (>= ``SHAKY_AT``) or ``unstable``."""
    return "stable" if jaccard >= STABLE_AT else "shaky" if jaccard >= SHAKY_AT else "unstable"


def best_match_jaccard(labels_a: np.ndarray, labels_b: np.ndarray) -> dict[int, tuple[int, float]]:
    """For every cluster of ``labels_a`` except noise: ``(best cluster of b, its Jaccard)``.

    Noise of ``b`` is never a match; a cluster with no match in ``b`` gets ``(NOISE, 0.0)``.

    Raises:
        InBedderError: the labellings differ in length.
    """
    a, b = np.asarray(labels_a, dtype=np.int64), np.asarray(labels_b, dtype=np.int64)
    if a.shape != b.shape:
        raise InBedderError(f"labellings of {len(a)} and {len(b)} documents cannot be compared; run both on one corpus")
    ids_b, sizes_b = np.unique(b[b != NOISE], return_counts=True)
    out: dict[int, tuple[int, float]] = {}
    for cluster in np.unique(a[a != NOISE]).tolist():
        inside = a == cluster
        if not len(ids_b):
            out[cluster] = (NOISE, 0.0)
            continue
        overlap = np.array([np.count_nonzero(inside & (b == j)) for j in ids_b.tolist()])
        jaccard = overlap / (inside.sum() + sizes_b - overlap)
        best = int(np.argmax(jaccard))
        out[cluster] = (int(ids_b[best]), float(jaccard[best]))
    return out


def nearest_neighbours(embeddings: np.ndarray, k: int = DEFAULT_K, chunk: int = 1024) -> np.ndarray:
    """``int64 (n, min(k, n - 1))``: each document's nearest other documents by cosine similarity."""
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = min(k, len(x) - 1)
    out = np.empty((len(x), max(k, 0)), dtype=np.int64)
    if k <= 0:
        return out
    for start in range(0, len(x), chunk):
        sims = x[start:start + chunk] @ x.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        out[start:start + chunk] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def neighbour_keeping(base: np.ndarray, others: Sequence[np.ndarray], k: int = DEFAULT_K,
                      keep_at: float = KEEP_AT) -> np.ndarray:
    """``float64 (n,)``: per document, the share of ``others`` (embeddings under each rewording) that keep at
    least ``keep_at`` of its ``k`` nearest neighbours under ``base``. All ones when there are no others."""
    reference = nearest_neighbours(base, k)
    kept = np.zeros(len(reference))
    for other in others:
        if np.shape(other)[0] != len(reference):
            raise InBedderError(f"embeddings of {np.shape(other)[0]} and {len(reference)} documents cannot be "
                                "compared; embed one corpus")
        neighbours = nearest_neighbours(other, k)
        shared = np.array([len(np.intersect1d(r, o, assume_unique=True))
                           for r, o in zip(reference, neighbours, strict=True)])
        kept += shared >= keep_at * max(reference.shape[1], 1)
    return kept / len(others) if len(others) else np.ones(len(reference))


@dataclass
class ClusterStability:
    """One cluster of the original question across the rewordings."""

    cluster_id: int
    name: str
    size: int
    jaccard: float  # mean best-match Jaccard over the rewordings
    jaccard_min: float
    matches: list[tuple[int, float]]  # per rewording: (best cluster there, Jaccard)
    badge: str
    flag: str = ""


@dataclass
class StabilityReport:
    """Everything ``measure`` finds; ``to_dict`` for the JSON report, ``cluster_frame`` for tables."""

    question: str
    rewordings: list[str]
    clusters: list[ClusterStability]
    ari: pd.DataFrame
    nmi: pd.DataFrame
    document_share: np.ndarray  # float (n_docs,)
    k: int = DEFAULT_K
    results: list[InstructionResult] = field(default_factory=list, repr=False)

    def cluster_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "cluster": [c.cluster_id for c in self.clusters], "name": [c.name for c in self.clusters],
            "size": [c.size for c in self.clusters], "best-match Jaccard": [c.jaccard for c in self.clusters],
            "worst rewording": [c.jaccard_min for c in self.clusters], "badge": [c.badge for c in self.clusters],
            "flag": [c.flag for c in self.clusters]})

    def mean_pairwise(self) -> dict[str, float]:
        """Mean ARI and NMI of the original against each rewording."""
        first = self.ari.columns[0]
        return {"ari": float(self.ari[first].iloc[1:].mean()) if len(self.ari) > 1 else 1.0,
                "nmi": float(self.nmi[first].iloc[1:].mean()) if len(self.nmi) > 1 else 1.0}

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "rewordings": self.rewordings,
            "thresholds": {"stable_at": STABLE_AT, "shaky_at": SHAKY_AT, "keep_at": KEEP_AT, "k": self.k},
            "clusters": [c.__dict__ for c in self.clusters],
            "ari": self.ari.values.round(4).tolist(), "nmi": self.nmi.values.round(4).tolist(),
            "labels": list(map(str, self.ari.index)), **{f"mean_{k}": v for k, v in self.mean_pairwise().items()},
            "document_share_mean": float(self.document_share.mean()) if len(self.document_share) else 1.0,
            "document_share": [round(float(v), 4) for v in self.document_share],
        }


def compare_rewordings(results: Sequence[InstructionResult], embeddings: Sequence[np.ndarray],
                       k: int = DEFAULT_K) -> StabilityReport:
    """The stability report of ``results[0]`` (the original) against ``results[1:]`` (its rewordings).

    ``embeddings[i]`` are the embeddings behind ``results[i]``. Raises ``InBedderError`` on a length mismatch.
    """
    if not results or len(results) != len(embeddings):
        raise InBedderError(f"{len(results)} results and {len(embeddings)} embeddings given; one each, the "
                            "original first")
    base, others = results[0], results[1:]
    matches = [best_match_jaccard(base.labels, other.labels) for other in others]
    names = names_of(base)
    clusters = []
    for summary in base.clusters:
        if summary.cluster_id == NOISE:
            continue
        per = [m.get(summary.cluster_id, (NOISE, 0.0)) for m in matches]
        scores = [j for _, j in per] or [1.0]
        mean = float(np.mean(scores))
        clusters.append(ClusterStability(summary.cluster_id, names[summary.cluster_id], summary.size, mean,
                                         float(min(scores)), per, badge(mean),
                                         UNSTABLE_FLAG if badge(mean) == "unstable" else ""))
    labelled = {f"{i}: {r.instruction}": r.labels for i, r in enumerate(results)}
    pairwise = pairwise_comparisons(labelled)
    share = neighbour_keeping(embeddings[0], list(embeddings[1:]), k)
    return StabilityReport(base.instruction, [r.instruction for r in others], clusters, pairwise.ari, pairwise.nmi,
                           share, k, list(results))


def measure(analysis: Analysis, question: str, rewordings: Sequence[str], k: int = DEFAULT_K) -> StabilityReport:
    """Run ``question`` and each rewording through ``analysis`` (memoised) and compare them.

    Raises:
        InBedderError: no rewordings, an empty one, or any stage's error.
    """
    rewordings = [r.strip() for r in rewordings if r.strip() != question.strip()]
    if not rewordings:
        raise InBedderError("no rewordings to compare with; type some, or use the built-in templates")
    asked = [question, *dict.fromkeys(rewordings)]
    results = [analysis.run(q) for q in asked]
    return compare_rewordings(results, [analysis.embedding(q).embeddings for q in asked], k)


def document_columns(report: StabilityReport, names: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Per document: ``stability`` (share of rewordings keeping its neighbours) and ``cluster_stability``
    (the badge of its cluster, blank for noise)."""
    badges = {c.cluster_id: c.badge for c in report.clusters}
    labels = report.results[0].labels if report.results else np.full(len(report.document_share), NOISE)
    return pd.DataFrame({"stability": np.round(report.document_share, 4),
                         "cluster_stability": [badges.get(int(label), "") for label in labels]})


_LINE_START = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def propose_rewordings(client: Any, model: str, question: str, n: int = 3) -> list[str]:
    """``n`` rewordings of ``question`` proposed by a chat model (``client``: an ``openai.OpenAI``).

    Raises:
        InBedderError: the request failed or the reply held no usable rewording.
    """
    prompt = (f"Rewrite this question in {n} different ways that keep its meaning, one per line, with no "
              f"numbering or commentary:\n{question.strip()}")
    try:
        completion = client.chat.completions.create(model=model, temperature=0.7,
                                                    messages=[{"role": "user", "content": prompt}])
        text = completion.choices[0].message.content or ""
    except Exception as error:  # the openai client's errors; the message never holds the key
        raise InBedderError(f"the LLM could not propose rewordings ({type(error).__name__}); type them, or use "
                            "the built-in templates") from None
    lines = [_LINE_START.sub("", line).strip().strip('"') for line in text.splitlines()]
    found = [line for line in dict.fromkeys(lines) if line and line.lower() != question.strip().lower()]
    if not found:
        raise InBedderError("the LLM's reply held no rewording; type them, or use the built-in templates")
    return found[:n]
