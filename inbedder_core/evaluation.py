"""Does the embedder follow instructions? The InBedder paper's evaluation (``inbedder eval`` in ``cli``).

Three *instruction-awareness* scores (Peng et al., ACL 2024, Table 2), each on ``[0, 1]``:

* **Triplets** (IntentEmotion): for each ``(anchor, positive, negative)`` embedded under the
  instruction, success means ``cos(anchor, positive) > cos(anchor, negative)`` (a tie is a
  failure); the score is the success rate. IntentEmotion has two triplet sets over the same
  BANKING77 texts, "How does the customer feel?" and "What does the customer need?", and
  reports their harmonic mean, so an embedder must follow *both* to score well.
* **Instruction STS** (InstructSTSB): each pair carries its own instruction; the score is
  the Spearman correlation between the pair's cosine and the gold score.
* **Instruction clustering** (NYTClustering): KMeans with ``k`` = number of gold labels
  (``MiniBatchKMeans(batch_size=500, n_init="auto")`` as in the paper, or full ``KMeans``),
  scored by V-measure, run with ``n_seeds`` seeds (``random_state`` 0..n-1) on the same
  embeddings; mean and standard deviation over seeds. NYTClustering is the harmonic mean
  of the topic and location V-measures.

The paper's "Avg. Score" is the mean of the three, x100; ``format_report`` prints it next to
the published values (``PUBLISHED_AVG_SCORES``).

Two further analyses:

* **Robustness** (paper Section 6): a clustering task is evaluated under each of its correct,
  implicit and incorrect paraphrases of the instruction. ``DCI = min(correct) - max(incorrect)``
  and ``DII = min(implicit) - max(incorrect)``; positive means every right phrasing beats
  every wrong one. The paper's lists ship in ``inbedder_core/data/instructions.json`` (MIT,
  see ``INSTRUCTIONS_LICENSE.md`` there).
* **Same corpus, several aspects**: one table, several gold-label columns and one
  instruction per column. The result is the instruction x label-column V-measure matrix and,
  per column, ``margin = diagonal - best off-diagonal in that column``: how much better the
  column's own instruction recovers its labels than any other instruction does.

Data formats (CSV, TSV, JSONL or Parquet, read with ``corpus.load_corpus``; one row each):

* triplets: ``anchor, positive, negative[, instruction]``. Rows are grouped by instruction;
  with several groups the score is their harmonic mean (as IntentEmotion).
* sts: ``sentence1, sentence2, score[, instruction]`` (``score`` numeric).
* clustering: ``text, label[, instruction]`` (names changeable); one instruction for all rows.
* aspects: ``text`` plus label columns; instructions given as ``column=instruction``.

A missing ``instruction`` column takes ``instruction=`` (``--instruction``). The published
sets are named by task (``IntentEmotion``, ``InstructSTSB``, ``NYTClustering``,
``FeedbacksClustering``...) or by hub id (``BrandonZYW/IntentEmotion``...) and downloaded
with ``huggingface_hub.snapshot_download`` at the paper's revision (the local Hugging Face
cache is used first); when the hub is unreachable an ``EvaluationError`` says so and how to
pass a local file instead. ``banking77-clustering`` and ``banking77-triplets`` are built from
``sample_data/banking77.csv`` in a checkout.

``--no-instruction`` embeds every text with an empty instruction, the paper's "without the
instruction" baseline. Everything returned is plain data: ``EvaluationReport.as_dict()`` is
the JSON written by ``inbedder eval --out`` (every number, the model fingerprint, the settings).

Heavy libraries (scikit-learn, scipy, huggingface_hub, the encoders) are imported inside the
functions that need them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import EvaluationError

TaskKind = Literal["triplets", "sts", "clustering", "aspects"]
ProgressFactory = Callable[[str], Any]
"""``factory(description)`` returns a callable ``bar(done, total)`` with a ``.close()``."""

CLUSTERERS = ("minibatch", "kmeans")
AWARENESS_TASKS = ("IntentEmotion", "InstructSTSB", "NYTClustering")
"""The three columns of the paper's instruction-awareness table, in its order."""

PUBLISHED_AVG_SCORES: dict[str, float] = {
    "llama-2-7b-InBedder": 58.80,
    "opt-2.7b-InBedder": 56.57,
    "opt-1.3b-InBedder": 54.99,
    "roberta-large-InBedder": 53.06,
}
"""The paper's "Avg. Score" (x100) of the released checkpoints, for reference rows."""

ROBUSTNESS_KINDS = ("correct", "implicit", "incorrect")
BANKING77_INSTRUCTION = "What does the customer need?"
BUILTIN_TASKS = ("banking77-clustering", "banking77-triplets")
_BANKING77_CSV = Path(__file__).resolve().parent.parent / "sample_data" / "banking77.csv"


# --- task data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TripletSet:
    """Triplets asked under one instruction (``anchors[i], positives[i], negatives[i]``)."""

    name: str
    instruction: str
    anchors: tuple[str, ...]
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class STSSet:
    """Sentence pairs, each with its own instruction and a gold similarity score."""

    name: str
    sentences1: tuple[str, ...]
    sentences2: tuple[str, ...]
    instructions: tuple[str, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class ClusteringSet:
    """Texts with gold labels, clustered under ``instruction``.

    Attributes:
        groups: ``None``, or one integer per text when the data holds several independent
            cluster sets (MTEB layout); each group is clustered on its own (its own ``k``)
            and the V-measures are averaged.
        paraphrases: ``{"correct"|"implicit"|"incorrect": instructions}`` for robustness.
    """

    name: str
    instruction: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    groups: tuple[int, ...] | None = None
    paraphrases: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class AspectSet:
    """One corpus with several gold-label columns and one instruction per column."""

    name: str
    texts: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]
    instructions: Mapping[str, str]


@dataclass(frozen=True)
class Task:
    """An evaluation task: one or more parts of the same kind, combined by harmonic mean.

    Attributes:
        name: display name (``IntentEmotion``, a file name...).
        kind: ``triplets``, ``sts``, ``clustering`` or ``aspects``.
        parts: ``TripletSet``/``STSSet``/``ClusteringSet``/``AspectSet`` objects of that kind.
        source: where the data came from (path, or hub id and revision).
        options: how the data was selected (e.g. ``max_labels``/``per_label``), reported as is.
    """

    name: str
    kind: TaskKind
    parts: tuple[Any, ...]
    source: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """SHA-256 of the task's content (texts, labels, instructions, scores): equal digests, same data."""
        import hashlib

        payload = json.dumps([self.kind, [_part_content(p) for p in self.parts]], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def _part_content(part: Any) -> Any:
    content = {k: v for k, v in part.__dict__.items() if k != "name"}
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in content.items()}


# --- settings and results ----------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate; stored with every result.

    Attributes:
        n_seeds: KMeans runs per clustering (``random_state`` 0..n_seeds-1).
        clusterer: ``"minibatch"`` (paper: ``MiniBatchKMeans(batch_size=500)``) or ``"kmeans"``.
        clustering_batch_size: MiniBatchKMeans batch size.
        batch_size: documents per forward pass (``None``: the encoder's default).
        no_instruction: embed with an empty instruction (the "without instruction" baseline).
    """

    n_seeds: int = 5
    clusterer: str = "minibatch"
    clustering_batch_size: int = 500
    batch_size: int | None = None
    no_instruction: bool = False

    def __post_init__(self) -> None:
        if self.n_seeds < 1:
            raise EvaluationError(f"n_seeds must be at least 1, got {self.n_seeds}; pass --seeds 1 or more")
        if self.clusterer not in CLUSTERERS:
            raise EvaluationError(f"clusterer '{self.clusterer}' is not supported; choose one of {list(CLUSTERERS)}")
        if self.clustering_batch_size < 1:
            raise EvaluationError(f"clustering_batch_size must be at least 1, got {self.clustering_batch_size}")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TaskResult:
    """One task's scores.

    Attributes:
        name: the task name.
        kind: ``triplets``, ``sts``, ``clustering``, ``aspects`` or ``robustness``.
        metric: what ``score`` is (``success_rate``, ``spearman``, ``v_measure``,
            ``harmonic_mean``, ``mean_margin``, ``DCI``).
        score: the main number, unscaled (``[0, 1]`` for rates and V-measure).
        std: standard deviation over KMeans seeds, when there is one number per seed.
        parts: one dict per part (its own score, instruction, sizes, per-seed values).
        details: everything else (aspect matrix, robustness lists...), JSON-ready.
        source: where the data came from.
    """

    name: str
    kind: str
    metric: str
    score: float
    std: float | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return _json_ready(dict(self.__dict__))


@dataclass
class EvaluationReport:
    """All results of one run, with the model's fingerprint and the settings."""

    model: dict[str, Any]
    settings: dict[str, Any]
    results: list[TaskResult]
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def awareness(self) -> dict[str, float | None]:
        """The paper's table row: the three awareness scores x100 and their mean (``None`` if missing)."""
        row: dict[str, float | None] = {}
        for name in AWARENESS_TASKS:
            found = [r for r in self.results if r.name == name and r.kind != "robustness"]
            row[name] = 100 * found[0].score if found and _finite(found[0].score) else None
        values = [v for v in row.values() if v is not None]
        row["Avg. Score"] = sum(values) / len(values) if len(values) == len(AWARENESS_TASKS) else None
        return row

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "format": "inbedder-eval/1",
            "created": self.created,
            "model": self.model,
            "settings": self.settings,
            "results": [r.as_dict() for r in self.results],
        }
        if any(r.name in AWARENESS_TASKS for r in self.results):
            payload["awareness_x100"] = self.awareness()
            payload["published_avg_score_x100"] = dict(PUBLISHED_AVG_SCORES)
        return _json_ready(payload)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _json_ready(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


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


# --- embedding ---------------------------------------------------------------------------------


class _Embedder:
    """Embeds (texts, instruction) requests once per run, with one progress bar per task."""

    def __init__(self, encoder: Any, settings: EvalSettings, progress: ProgressFactory | None) -> None:
        self.encoder = encoder
        self.settings = settings
        self.progress = progress
        self._memo: dict[str, dict[str, np.ndarray]] = {}

    def instruction(self, instruction: str) -> str:
        return "" if self.settings.no_instruction else instruction

    def embed_many(self, requests: Sequence[tuple[Sequence[str], str]], description: str, *,
                   keep: bool = True) -> list[np.ndarray]:
        """``float32 (len(texts), dim)`` unit rows per ``(texts, instruction)`` request.

        With ``keep=False`` the new vectors are returned but not remembered for later requests
        (robustness paraphrases are each used once; remembering them all would hold
        30 x n_texts x dim floats).
        """
        plan: dict[str, list[str]] = {}
        fresh: dict[str, dict[str, np.ndarray]] = {}
        for texts, instruction in requests:
            key = self.instruction(instruction)
            seen = self._memo.get(key, {})
            todo = plan.setdefault(key, [])
            todo.extend(t for t in texts if t not in seen)
        plan = {k: list(dict.fromkeys(v)) for k, v in plan.items() if v}
        total = sum(len(v) for v in plan.values())
        bar = self.progress(description) if (self.progress is not None and total) else None
        done = 0
        try:
            for instruction, texts in plan.items():
                def step(inner: int, _total: int, base: int = done) -> None:
                    if bar is not None:
                        bar(base + inner, total)

                result = self.encoder.encode(texts, instruction, batch_size=self.settings.batch_size,
                                             normalize=True, answers=False, progress=step)
                store = (self._memo if keep else fresh).setdefault(instruction, {})
                for text, vector in zip(texts, result.embeddings, strict=True):
                    store[text] = vector
                done += len(texts)
        finally:
            if bar is not None:
                bar.close()
        out = []
        for texts, instruction in requests:
            key = self.instruction(instruction)
            store = {**self._memo.get(key, {}), **fresh.get(key, {})} if key in fresh else self._memo.get(key, {})
            if not texts:
                out.append(np.zeros((0, 0), np.float32))
                continue
            out.append(np.stack([store[t] for t in texts]).astype(np.float32, copy=False))
        return out


# --- evaluation --------------------------------------------------------------------------------


def evaluate(
    encoder: Any,
    tasks: Sequence[Task],
    settings: EvalSettings | None = None,
    *,
    robustness: bool = False,
    progress: ProgressFactory | None = None,
) -> EvaluationReport:
    """Evaluate ``encoder`` (anything with ``encode`` and ``fingerprint``) on ``tasks``.

    Args:
        encoder: an ``Encoder`` or ``CachedEncoder``.
        tasks: from ``load_task``, ``load_triplets``, ``load_sts``, ``load_clustering``, ``load_aspects``.
        settings: seeds, clusterer, batch size, no-instruction baseline.
        robustness: also run the paraphrase robustness test on every clustering part that has
            paraphrases (at least one must).
        progress: ``progress(description)`` returns a bar called ``bar(done, total)`` with ``.close()``.

    Returns:
        The report, with one ``TaskResult`` per task (plus one per robustness test).

    Raises:
        EvaluationError: unusable data or settings (e.g. robustness without paraphrases or
            with ``no_instruction``).
    """
    settings = settings or EvalSettings()
    if not tasks:
        raise EvaluationError("no tasks to evaluate; pass --task, --triplets, --sts, --clustering or --aspects")
    if robustness and settings.no_instruction:
        raise EvaluationError("--robustness compares instructions, so it cannot run with --no-instruction")
    robust = [(t, p) for t in tasks if t.kind == "clustering" for p in t.parts if p.paraphrases] if robustness else []
    if robustness and not robust:  # said before anything is embedded
        raise EvaluationError("--robustness needs a clustering task with correct/incorrect paraphrases: a "
                              "published one (e.g. --task FeedbacksClustering) or --clustering FILE with "
                              "--paraphrases FILE")
    embedder = _Embedder(encoder, settings, progress)
    results = []
    for task in tasks:
        result = _evaluate_task(embedder, task)
        result.details.update(_data_details(task))
        results.append(result)
    if robust:
        for task, part in robust:
            result = _evaluate_robustness(embedder, part, source=task.source)
            result.details.update(_data_details(task))
            results.append(result)
    fingerprint = encoder.fingerprint
    model = {**fingerprint.__dict__, "digest": fingerprint.digest()}
    return EvaluationReport(model=model, settings={**settings.as_dict(), "versions": _versions()}, results=results)


def _data_details(task: Task) -> dict[str, Any]:
    return {"data_digest": task.digest(), "data_options": dict(task.options)}


def _versions() -> dict[str, str]:
    """Versions of what decides the numbers, for comparing runs over time."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("inbedder-explorer", "numpy", "scikit-learn", "scipy", "torch", "transformers",
                    "sentence-transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _evaluate_task(embedder: _Embedder, task: Task) -> TaskResult:
    """Score one task; several parts are combined by harmonic mean."""
    if task.kind == "triplets":
        parts = [_triplet_part(embedder, p) for p in task.parts]
        metric = "success_rate"
    elif task.kind == "sts":
        parts = [_sts_part(embedder, p) for p in task.parts]
        metric = "spearman"
    elif task.kind == "clustering":
        parts = [_clustering_part(embedder, p) for p in task.parts]
        metric = "v_measure"
    elif task.kind == "aspects":
        return _aspects(embedder, task.parts[0], task.name, task.source)
    else:
        raise EvaluationError(f"unknown task kind '{task.kind}'; expected one of triplets, sts, clustering, aspects")
    if len(parts) == 1:
        return TaskResult(task.name, task.kind, metric, parts[0]["score"], parts[0].get("std"), parts,
                          source=task.source)
    score = harmonic_mean([p["score"] for p in parts])
    details: dict[str, Any] = {"combined_by": "harmonic_mean"}
    if task.kind == "triplets":
        n = sum(p["n"] for p in parts)
        details["pooled_success_rate"] = sum(p["score"] * p["n"] for p in parts) / n
    return TaskResult(task.name, task.kind, "harmonic_mean", score, None, parts, details, task.source)


def _triplet_part(embedder: _Embedder, part: TripletSet) -> dict[str, Any]:
    (anchors, positives, negatives) = embedder.embed_many(
        [(part.anchors, part.instruction), (part.positives, part.instruction), (part.negatives, part.instruction)],
        f"triplets: {part.name}")
    score = triplet_success_rate(anchors, positives, negatives)
    return {"name": part.name, "instruction": embedder.instruction(part.instruction), "metric": "success_rate",
            "score": score, "n": len(part.anchors)}


def _sts_part(embedder: _Embedder, part: STSSet) -> dict[str, Any]:
    by_instruction: dict[str, list[int]] = {}
    for i, instruction in enumerate(part.instructions):
        by_instruction.setdefault(instruction, []).append(i)
    requests = []
    for instruction, rows in by_instruction.items():
        requests.append(([part.sentences1[i] for i in rows], instruction))
        requests.append(([part.sentences2[i] for i in rows], instruction))
    vectors = embedder.embed_many(requests, f"sts: {part.name}")
    cosines = np.zeros(len(part.scores))
    for number, rows in enumerate(by_instruction.values()):
        cosines[rows] = paired_cosine(vectors[2 * number], vectors[2 * number + 1])
    return {"name": part.name, "metric": "spearman", "score": spearman(cosines, part.scores),
            "n": len(part.scores), "n_instructions": len(by_instruction)}


def _clustering_part(embedder: _Embedder, part: ClusteringSet, instruction: str | None = None) -> dict[str, Any]:
    paraphrase = instruction is not None
    instruction = part.instruction if instruction is None else instruction
    (vectors,) = embedder.embed_many([(part.texts, instruction)], f"clustering: {part.name}", keep=not paraphrase)
    settings = embedder.settings
    found = clustering_v_measure(vectors, part.labels, n_seeds=settings.n_seeds, clusterer=settings.clusterer,
                                 batch_size=settings.clustering_batch_size, groups=part.groups)
    return {"name": part.name, "instruction": embedder.instruction(instruction), "metric": "v_measure",
            "score": found.mean, "std": found.std, "per_seed": list(found.per_seed), "n": len(part.texts),
            "n_labels": len(set(part.labels)), "n_groups": 1 if part.groups is None else len(set(part.groups))}


def _evaluate_robustness(embedder: _Embedder, part: ClusteringSet, source: str = "") -> TaskResult:
    """V-measure under every paraphrase; ``DCI`` as the score, ``DII`` and all lists in details."""
    paraphrases = part.paraphrases or {}
    scores: dict[str, list[float]] = {}
    for kind in ROBUSTNESS_KINDS:
        instructions = list(paraphrases.get(kind, ()))
        scores[kind] = [_clustering_part(embedder, part, instruction)["score"] for instruction in instructions]
    margins = robustness_margins(scores["correct"], scores["implicit"], scores["incorrect"])
    details: dict[str, Any] = {**margins}
    for kind in ROBUSTNESS_KINDS:
        pairs = zip(paraphrases.get(kind, ()), scores[kind], strict=True)
        details[kind] = [{"instruction": i, "v_measure": s} for i, s in pairs]
        details[f"{kind}_min"] = min(scores[kind]) if scores[kind] else None
        details[f"{kind}_max"] = max(scores[kind]) if scores[kind] else None
    return TaskResult(part.name, "robustness", "DCI", float(details["DCI"]), None, [], details, source)


def _aspects(embedder: _Embedder, part: AspectSet, name: str, source: str) -> TaskResult:
    columns = list(part.labels)
    settings = embedder.settings
    vectors = embedder.embed_many([(part.texts, part.instructions[c]) for c in columns], f"aspects: {name}")
    matrix = np.zeros((len(columns), len(columns)))
    stds = np.zeros_like(matrix)
    for i in range(len(columns)):
        for j, column in enumerate(columns):
            found = clustering_v_measure(vectors[i], part.labels[column], n_seeds=settings.n_seeds,
                                         clusterer=settings.clusterer, batch_size=settings.clustering_batch_size)
            matrix[i, j], stds[i, j] = found.mean, found.std
    margins = aspect_margins(matrix)
    details = {
        "columns": columns,
        "instructions": {c: embedder.instruction(part.instructions[c]) for c in columns},
        "matrix": matrix.tolist(),
        "matrix_std": stds.tolist(),
        "matrix_axes": "rows: instruction written for column i; columns: gold labels of column j",
        "margins": {c: float(m) for c, m in zip(columns, margins, strict=True)},
        "n": len(part.texts),
        "n_labels": {c: len(set(part.labels[c])) for c in columns},
    }
    return TaskResult(name, "aspects", "mean_margin", float(np.mean(margins)), None, [], details, source)


# --- loading local files -----------------------------------------------------------------------


def _read_local(path: str | os.PathLike[str], text_column: str) -> pd.DataFrame:
    """The rows of a CSV/TSV/JSONL/Parquet file as strings (rows without ``text_column`` skipped)."""
    from .corpus import load_corpus
    from .errors import CorpusError

    try:
        corpus = load_corpus(path, text_column=text_column)
    except CorpusError as error:
        raise EvaluationError(str(error)) from error
    return corpus.table


def _need_columns(frame: pd.DataFrame, columns: Sequence[str], source: str, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EvaluationError(f"{what} file '{source}' lacks column(s) {missing}; available: "
                              f"{list(map(str, frame.columns))}; expected {', '.join(columns)}")


def _instructions_column(frame: pd.DataFrame, instruction: str | None, source: str, what: str) -> list[str]:
    if instruction is not None:
        return [instruction] * len(frame)
    if "instruction" not in frame.columns:
        raise EvaluationError(f"{what} file '{source}' has no 'instruction' column and no instruction was given; "
                              "add the column or pass --instruction TEXT")
    values = frame["instruction"].tolist()
    if any(_missing(v) for v in values):
        raise EvaluationError(f"{what} file '{source}': empty 'instruction' cell(s); fill them or pass --instruction")
    return [str(v) for v in values]


def _missing(value: Any) -> bool:
    """A null cell (``None``/NaN) or one holding only whitespace."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return not str(value).strip()


def _texts(frame: pd.DataFrame, column: str, source: str) -> tuple[str, ...]:
    values = frame[column].tolist()
    empty = [i for i, v in enumerate(values) if _missing(v)]
    if empty:
        raise EvaluationError(f"'{source}': column '{column}' is empty in {len(empty)} row(s) (first: row "
                              f"{empty[0] + 1}); every row needs text there")
    return tuple(str(v) for v in values)


def triplets_from_frame(frame: pd.DataFrame, source: str, instruction: str | None = None) -> Task:
    """A triplet task from columns ``anchor, positive, negative[, instruction]``, one part per instruction.

    Raises:
        EvaluationError: a column is missing or empty, or no rows.
    """
    _need_columns(frame, ("anchor", "positive", "negative"), source, "triplets")
    if len(frame) == 0:
        raise EvaluationError(f"triplets file '{source}' has no rows")
    instructions = _instructions_column(frame, instruction, source, "triplets")
    anchors, positives, negatives = (_texts(frame, c, source) for c in ("anchor", "positive", "negative"))
    parts = []
    for value in dict.fromkeys(instructions):
        rows = [i for i, v in enumerate(instructions) if v == value]
        parts.append(TripletSet(value, value, tuple(anchors[i] for i in rows), tuple(positives[i] for i in rows),
                                tuple(negatives[i] for i in rows)))
    return Task(Path(source).name or source, "triplets", tuple(parts), source)


def sts_from_frame(frame: pd.DataFrame, source: str, instruction: str | None = None) -> Task:
    """An instruction-STS task from ``sentence1, sentence2, score[, instruction]``.

    Raises:
        EvaluationError: a column is missing, a score is not a number, or all scores are equal.
    """
    _need_columns(frame, ("sentence1", "sentence2", "score"), source, "sts")
    instructions = _instructions_column(frame, instruction, source, "sts")
    try:
        scores = tuple(float(v) for v in frame["score"].tolist())
    except (TypeError, ValueError) as error:
        raise EvaluationError(f"sts file '{source}': column 'score' must hold numbers ({error})") from error
    if len(scores) < 2 or not all(math.isfinite(s) for s in scores) or len(set(scores)) < 2:
        raise EvaluationError(f"sts file '{source}' needs at least 2 finite, not all equal scores "
                              f"(got {len(scores)} rows); Spearman correlation is undefined otherwise")
    part = STSSet(Path(source).name or source, _texts(frame, "sentence1", source), _texts(frame, "sentence2", source),
                  tuple(instructions), scores)
    return Task(part.name, "sts", (part,), source)


def _subset_options(max_labels: int | None, per_label: int | None) -> dict[str, Any]:
    """The subset options that were given, as recorded with a task."""
    return {k: v for k, v in (("max_labels", max_labels), ("per_label", per_label)) if v is not None}


def _subset_rows(labels: Sequence[str], max_labels: int | None, per_label: int | None) -> list[int]:
    """Row indices: the first ``max_labels`` labels by first appearance, the first ``per_label`` rows of each."""
    for name, value in (("max_labels", max_labels), ("per_label", per_label)):
        if value is not None and value < 1:
            raise EvaluationError(f"{name} must be at least 1, got {value}")
    keep_labels = list(dict.fromkeys(labels))
    if max_labels is not None:
        keep_labels = keep_labels[:max_labels]
    wanted = set(keep_labels)
    counts: dict[str, int] = {}
    rows = []
    for i, label in enumerate(labels):
        if label in wanted and (per_label is None or counts.get(label, 0) < per_label):
            counts[label] = counts.get(label, 0) + 1
            rows.append(i)
    return rows


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def clustering_from_frame(
    frame: pd.DataFrame,
    source: str,
    instruction: str | None = None,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    max_labels: int | None = None,
    per_label: int | None = None,
    paraphrases: Mapping[str, Sequence[str]] | None = None,
    name: str | None = None,
) -> ClusteringSet:
    """A clustering set from a text column and a gold-label column.

    Columns default to the first present of ``text``/``sentences``/``sentence`` and
    ``label``/``labels``/``cluster``. Cells holding lists (the MTEB layout, one cluster set
    per row) become groups clustered separately. ``max_labels``/``per_label`` keep a
    deterministic subset: the first labels by first appearance, the first rows of each.

    Raises:
        EvaluationError: a column is missing, no instruction, fewer than 2 labels, or a
            varying instruction column.
    """
    text_column = text_column or next((c for c in ("text", "sentences", "sentence") if c in frame.columns), "text")
    label_column = label_column or next((c for c in ("label", "labels", "cluster") if c in frame.columns), "label")
    _need_columns(frame, (text_column, label_column), source, "clustering")
    if instruction is None:
        given = _instructions_column(frame, None, source, "clustering")
        if len(set(given)) != 1:
            raise EvaluationError(f"clustering file '{source}' has {len(set(given))} different instructions; one "
                                  "clustering uses one instruction: split the file or pass --instruction")
        instruction = given[0]
    texts: list[str] = []
    labels: list[str] = []
    groups: list[int] | None = None
    first = frame[text_column].iloc[0] if len(frame) else None
    if _is_list(first):
        groups = []
        for number, (cell_texts, cell_labels) in enumerate(zip(frame[text_column], frame[label_column], strict=True)):
            if not _is_list(cell_texts) or not _is_list(cell_labels) or len(cell_texts) != len(cell_labels):
                raise EvaluationError(f"clustering data '{source}' row {number + 1}: '{text_column}' and "
                                      f"'{label_column}' must be lists of equal length in every row")
            texts.extend(str(t) for t in cell_texts)
            labels.extend(str(v) for v in cell_labels)
            groups.extend([number] * len(cell_texts))
    else:
        texts = list(_texts(frame, text_column, source))
        values = frame[label_column].tolist()
        if any(_missing(v) for v in values):
            raise EvaluationError(f"clustering file '{source}': empty cell(s) in label column '{label_column}'")
        labels = [str(v) for v in values]
    if max_labels is not None or per_label is not None:
        rows = _subset_rows(labels, max_labels, per_label)
        texts = [texts[i] for i in rows]
        labels = [labels[i] for i in rows]
        groups = None if groups is None else [groups[i] for i in rows]
    if len(set(labels)) < 2:
        raise EvaluationError(f"clustering data '{source}' has {len(set(labels))} distinct label(s) in "
                              f"'{label_column}'; at least 2 are needed")
    checked = _check_paraphrases(paraphrases, source) if paraphrases is not None else None
    return ClusteringSet(name or Path(source).name or source, instruction, tuple(texts), tuple(labels),
                         None if groups is None else tuple(groups), checked)


def _check_paraphrases(paraphrases: Mapping[str, Sequence[str]], source: str) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(paraphrases) - set(ROBUSTNESS_KINDS))
    if unknown:
        raise EvaluationError(f"paraphrases for '{source}': unknown key(s) {unknown}; "
                              f"expected {list(ROBUSTNESS_KINDS)}")
    checked = {}
    for kind in ROBUSTNESS_KINDS:
        values = paraphrases.get(kind) or []
        if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
            raise EvaluationError(f"paraphrases for '{source}': '{kind}' must be a list of non-empty strings")
        checked[kind] = tuple(values)
    if not checked["correct"] or not checked["incorrect"]:
        raise EvaluationError(f"paraphrases for '{source}' need at least one 'correct' and one 'incorrect' "
                              "instruction (and optionally 'implicit')")
    return checked


def aspects_from_frame(frame: pd.DataFrame, source: str, aspects: Mapping[str, str], *,
                       text_column: str = "text") -> Task:
    """A several-aspects task: ``aspects`` maps label column -> instruction (at least two).

    Raises:
        EvaluationError: fewer than two aspects, a missing column, or a column with < 2 labels.
    """
    if len(aspects) < 2:
        raise EvaluationError(f"an aspects task needs at least 2 label columns with instructions, got "
                              f"{list(aspects)}; pass --aspect COLUMN=INSTRUCTION for each")
    _need_columns(frame, (text_column, *aspects), source, "aspects")
    texts = _texts(frame, text_column, source)
    labels = {}
    for column in aspects:
        values = frame[column].tolist()
        if any(_missing(v) for v in values):
            raise EvaluationError(f"aspects file '{source}': empty cell(s) in label column '{column}'")
        labels[column] = tuple(str(v) for v in values)
        if len(set(labels[column])) < 2:
            raise EvaluationError(f"aspects file '{source}': column '{column}' has fewer than 2 distinct labels")
    part = AspectSet(Path(source).name or source, texts, labels, dict(aspects))
    return Task(part.name, "aspects", (part,), source)


def load_triplets(path: str | os.PathLike[str], instruction: str | None = None) -> Task:
    """Read a triplets file (see the module docstring for columns). Raises ``EvaluationError``."""
    return triplets_from_frame(_read_local(path, "anchor"), str(path), instruction)


def load_sts(path: str | os.PathLike[str], instruction: str | None = None) -> Task:
    """Read an instruction-STS file. Raises ``EvaluationError``."""
    return sts_from_frame(_read_local(path, "sentence1"), str(path), instruction)


def load_clustering(path: str | os.PathLike[str], instruction: str | None = None, *, text_column: str = "text",
                    label_column: str = "label", max_labels: int | None = None, per_label: int | None = None,
                    paraphrases: Mapping[str, Sequence[str]] | None = None) -> Task:
    """Read a clustering file (``text,label[,instruction]``). Raises ``EvaluationError``."""
    part = clustering_from_frame(_read_local(path, text_column), str(path), instruction, text_column=text_column,
                                 label_column=label_column, max_labels=max_labels, per_label=per_label,
                                 paraphrases=paraphrases)
    options = _subset_options(max_labels, per_label)
    return Task(part.name, "clustering", (part,), str(path), options)


def load_aspects(path: str | os.PathLike[str], aspects: Mapping[str, str], *, text_column: str = "text") -> Task:
    """Read a several-aspects file. Raises ``EvaluationError``."""
    return aspects_from_frame(_read_local(path, text_column), str(path), aspects, text_column=text_column)


def load_paraphrases(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """A JSON file ``{"correct": [...], "implicit": [...], "incorrect": [...]}`` (``implicit`` optional).

    Raises:
        EvaluationError: unreadable, not JSON, or not that shape.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvaluationError(f"cannot read paraphrases file '{path}': {error}; expected JSON like "
                              '{"correct": [...], "implicit": [...], "incorrect": [...]}') from error
    if not isinstance(data, dict):
        raise EvaluationError(f"paraphrases file '{path}' must hold a JSON object with lists "
                              f"{list(ROBUSTNESS_KINDS)}")
    return {k: list(v) if isinstance(v, list) else v for k, v in data.items()}


def parse_aspects(values: Sequence[str]) -> dict[str, str]:
    """``["topic=What is it about?", ...]`` -> ``{"topic": "What is it about?"}``.

    Raises:
        EvaluationError: an item without ``=``, an empty side, or a repeated column.
    """
    aspects: dict[str, str] = {}
    for value in values:
        column, sep, instruction = value.partition("=")
        if not sep or not column.strip() or not instruction.strip():
            raise EvaluationError(f"--aspect '{value}' must look like COLUMN=INSTRUCTION, "
                                  "e.g. --aspect 'topic=What is the topic?'")
        if column.strip() in aspects:
            raise EvaluationError(f"--aspect column '{column.strip()}' given twice; give each column once")
        aspects[column.strip()] = instruction.strip()
    return aspects


# --- published and built-in tasks --------------------------------------------------------------


def paper_instructions() -> dict[str, Any]:
    """The shipped ``data/instructions.json`` (tasks, hub ids, revisions, paraphrase lists)."""
    text = resources.files("inbedder_core").joinpath("data/instructions.json").read_text(encoding="utf-8")
    return json.loads(text)


_COMPOSITES = {"NYTClustering": ("NYTTopicClustering", "NYTLocationClustering")}
_ALIASES = {"instructstsb": "InstructSTSB", "instructstsbenchmark": "InstructSTSB"}


def published_task_names() -> list[str]:
    """Names accepted by ``load_task`` for the paper's data sets (plus hub ids)."""
    names = ["IntentEmotion", "InstructSTSB", "NYTClustering"]
    names += [n for n in paper_instructions()["tasks"] if n not in ("IntentEmotion", "InstructSTSBenchmark")]
    return names


def _canonical_name(name: str) -> str | None:
    spec = paper_instructions()["tasks"]
    lowered = name.strip().lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    for candidate in published_task_names():
        if candidate.lower() == lowered:
            return candidate
    hub_ids: dict[str, str] = {}
    for task_name, entry in spec.items():
        hub_ids.setdefault(entry["hf_hub_name"].lower(), task_name)
    hub_ids["brandonzyw/nytclustering"] = "NYTClustering"
    hub_ids["brandonzyw/instructstsb"] = "InstructSTSB"
    return hub_ids.get(lowered)


def load_task(name: str, *, max_labels: int | None = None, per_label: int | None = None,
              cache_dir: str | os.PathLike[str] | None = None,
              hub_dir: str | os.PathLike[str] | None = None) -> Task:
    """A task by name: a published one (downloaded from the hub) or a built-in sample task.

    Args:
        name: ``IntentEmotion``, ``InstructSTSB``, ``NYTClustering``, one of the clustering
            sets (``FeedbacksClustering``...), a hub id (``BrandonZYW/IntentEmotion``), or
            ``banking77-clustering`` / ``banking77-triplets``.
        max_labels, per_label: deterministic subset for clustering data and the built-ins.
        cache_dir: Hugging Face cache directory (default: the user's).
        hub_dir: read the dataset repositories from local copies instead of the hub:
            ``hub_dir/<name>`` or ``hub_dir/<owner>/<name>`` (e.g. made with
            ``hf download BrandonZYW/IntentEmotion --repo-type dataset --local-dir hub_dir/IntentEmotion``).

    Raises:
        EvaluationError: unknown name (the message lists the known ones), the hub is
            unreachable (the message says how to use a local file), or unusable data.
    """
    lowered = name.strip().lower()
    if lowered in BUILTIN_TASKS:
        return _banking77_task(lowered, max_labels, per_label)
    canonical = _canonical_name(name)
    if canonical is None:
        raise EvaluationError(f"unknown task '{name}'; known: {published_task_names() + list(BUILTIN_TASKS)}, "
                              "or pass a local file with --triplets/--sts/--clustering/--aspects")
    spec = paper_instructions()["tasks"]
    if canonical == "IntentEmotion":
        entry = spec["IntentEmotion"]
        parts = []
        for config, instruction in zip(entry["config_name"], entry["instruction"], strict=True):
            frame = fetch_hub_frame(entry["hf_hub_name"], entry["revision"], config, cache_dir=cache_dir,
                                    hub_dir=hub_dir)
            task = triplets_from_frame(frame, f"{entry['hf_hub_name']}:{config}", instruction)
            parts.append(replace(task.parts[0], name=config))
        return Task("IntentEmotion", "triplets", tuple(parts), _hub_source(entry))
    if canonical == "InstructSTSB":
        entry = spec["InstructSTSBenchmark"]
        frame = fetch_hub_frame(entry["hf_hub_name"], entry["revision"], None, cache_dir=cache_dir,
                                hub_dir=hub_dir)
        task = sts_from_frame(frame, entry["hf_hub_name"])
        return Task("InstructSTSB", "sts", task.parts, _hub_source(entry))
    members = _COMPOSITES.get(canonical, (canonical,))
    parts = []
    for member in members:
        entry = spec[member]
        frame = fetch_hub_frame(entry["hf_hub_name"], entry["revision"], entry.get("config_name"),
                                cache_dir=cache_dir, hub_dir=hub_dir)
        paraphrases = None
        if entry.get("correct_instructions"):
            paraphrases = {k: entry[f"{k}_instructions"] for k in ROBUSTNESS_KINDS}
        parts.append(clustering_from_frame(frame, entry["hf_hub_name"], entry["instruction"], max_labels=max_labels,
                                           per_label=per_label, paraphrases=paraphrases, name=member))
    options = _subset_options(max_labels, per_label)
    return Task(canonical, "clustering", tuple(parts), "; ".join(_hub_source(spec[m]) for m in members), options)


def _hub_source(entry: Mapping[str, Any]) -> str:
    config = entry.get("config_name")
    config_text = f" config {config}" if isinstance(config, str) else ""
    return f"hf://datasets/{entry['hf_hub_name']}@{entry.get('revision') or 'main'}{config_text}"


def _banking77_task(name: str, max_labels: int | None, per_label: int | None) -> Task:
    if not _BANKING77_CSV.exists():
        raise EvaluationError(f"built-in task '{name}' reads {_BANKING77_CSV}, which is not here (it ships with a "
                              "checkout of the project, not the installed package); pass --clustering FILE "
                              "--label-column intent instead")
    frame = _read_local(_BANKING77_CSV, "text")
    part = clustering_from_frame(frame, str(_BANKING77_CSV), BANKING77_INSTRUCTION, label_column="intent",
                                 max_labels=max_labels, per_label=per_label, name=name)
    options: dict[str, Any] = _subset_options(max_labels, per_label)
    if name == "banking77-clustering":
        return Task(name, "clustering", (part,), str(_BANKING77_CSV), options)
    options["triplets"] = ("one per text: positive = random same-intent text, negative = random other-intent text, "
                           "seed 0")
    return Task(name, "triplets", (intent_triplets(part, BANKING77_INSTRUCTION, name=name),), str(_BANKING77_CSV),
                options)


def intent_triplets(part: ClusteringSet, instruction: str, *, random_state: int = 0,
                    name: str = "triplets") -> TripletSet:
    """One triplet per text: a positive with the same gold label, a negative with another.

    Deterministic for a given ``random_state``. Raises ``EvaluationError`` when a label has a
    single text (no positive) or there is only one label.
    """
    rng = np.random.default_rng(random_state)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(part.labels):
        by_label.setdefault(label, []).append(i)
    if len(by_label) < 2 or min(len(v) for v in by_label.values()) < 2:
        raise EvaluationError("intent triplets need at least 2 labels with at least 2 texts each")
    anchors, positives, negatives = [], [], []
    for i, label in enumerate(part.labels):
        same = [j for j in by_label[label] if j != i]
        other = [j for j in range(len(part.labels)) if part.labels[j] != label]
        anchors.append(part.texts[i])
        positives.append(part.texts[same[int(rng.integers(len(same)))]])
        negatives.append(part.texts[other[int(rng.integers(len(other)))]])
    return TripletSet(name, instruction, tuple(anchors), tuple(positives), tuple(negatives))


_DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".tsv")
_SPLIT_WORDS = ("test", "validation", "dev", "train")


def fetch_hub_frame(repo_id: str, revision: str | None = None, config: str | None = None, *,
                    cache_dir: str | os.PathLike[str] | None = None,
                    hub_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Download a hub dataset repository (no ``datasets`` library) and read its data files.

    The snapshot is taken at ``revision`` (the local Hugging Face cache first). Data files are
    ``.parquet``, ``.jsonl``, ``.json``, ``.csv``, ``.tsv``; with ``config`` only files whose
    path names it are read; the ``test`` split is preferred when files name splits. With
    ``hub_dir`` nothing is downloaded: the copy at ``hub_dir/<name>`` or ``hub_dir/<owner>/<name>``
    is read.

    Raises:
        EvaluationError: the hub is unreachable/offline (the message says how to use a local
            file), the repository or revision does not exist, or no data file matches.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    owner_name = repo_id.split("/")[-1]
    local_hint = ("To evaluate offline, download the data where the hub is reachable "
                  f"(`hf download {repo_id} --repo-type dataset --local-dir DIR/{owner_name}`), copy DIR here and "
                  "pass --hub-dir DIR; or convert the split to CSV/JSONL with the columns in `inbedder eval --help` "
                  "and pass it with --triplets/--sts/--clustering FILE")
    if hub_dir is not None:
        root = Path(hub_dir).expanduser()
        candidates = [root / owner_name, root / repo_id, root / repo_id.replace("/", "--")]
        for folder in candidates:
            if folder.is_dir():
                return read_dataset_folder(folder, config, repo_id)
        raise EvaluationError(f"no local copy of dataset '{repo_id}' in --hub-dir '{root}': looked for "
                              f"{[str(c) for c in candidates]}. {local_hint}")
    try:
        downloaded = snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                       cache_dir=None if cache_dir is None else Path(cache_dir),
                                       allow_patterns=[f"*{s}" for s in _DATA_SUFFIXES] + ["*.jsonl.gz", "*.json.gz"])
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as error:
        raise EvaluationError(f"cannot download dataset '{repo_id}': the Hugging Face hub is offline or unreachable "
                              f"and no cached copy of revision {revision or 'main'} exists "
                              f"[{type(error).__name__}]. {local_hint}") from error
    except GatedRepoError as error:
        raise EvaluationError(f"dataset '{repo_id}' is gated: accept its terms on huggingface.co and log in "
                              f"with `hf auth login`. {local_hint}") from error
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise EvaluationError(f"dataset '{repo_id}' at revision {revision or 'main'} was not found on the hub "
                              f"[{type(error).__name__}]; check the id. {local_hint}") from error
    except (HfHubHTTPError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise EvaluationError(f"cannot download dataset '{repo_id}': [{type(error).__name__}: {first[:200]}]; the "
                              f"hub may be unreachable. {local_hint}") from error
    return read_dataset_folder(Path(downloaded), config, repo_id)


def read_dataset_folder(folder: Path, config: str | None, name: str) -> pd.DataFrame:
    """Read the data files of a downloaded dataset folder (see ``fetch_hub_frame``).

    Raises:
        EvaluationError: no data files, none for ``config``, or a file that cannot be parsed.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                   p.relative_to(folder).parts) and p.name.lower().removesuffix(".gz").endswith(_DATA_SUFFIXES)
                   and p.name not in ("dataset_infos.json", "dataset_info.json"))
    if not files:
        raise EvaluationError(f"dataset '{name}' has no data files ({', '.join(_DATA_SUFFIXES)}) in {folder}")

    def words(path: Path) -> set[str]:
        text = path.relative_to(folder).as_posix().lower()
        for mark in "/_-.":
            text = text.replace(mark, " ")
        return set(text.split())

    chosen = files
    if config is not None:
        chosen = [p for p in files if config.lower() in words(p)]
        if not chosen:
            raise EvaluationError(f"dataset '{name}': no data file for config '{config}' among "
                                  f"{[p.relative_to(folder).as_posix() for p in files][:20]}")
    for split in _SPLIT_WORDS:
        with_split = [p for p in chosen if split in words(p)]
        if with_split:
            chosen = with_split
            break
    frames = [_read_data_file(p, name) for p in chosen]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _read_data_file(path: Path, name: str) -> pd.DataFrame:
    lowered = path.name.lower()
    try:
        if lowered.endswith(".parquet"):
            return pd.read_parquet(path)
        if lowered.endswith((".jsonl", ".jsonl.gz")):
            return pd.read_json(path, lines=True, dtype=False)
        if lowered.endswith(".csv"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if lowered.endswith(".tsv"):
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        import gzip

        opener = gzip.open if lowered.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise EvaluationError(f"dataset '{name}': cannot read '{path.name}': {error}") from error
    return _frame_from_json(data, path.name, name)


def _frame_from_json(data: Any, file_name: str, name: str) -> pd.DataFrame:
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    if isinstance(data, dict):
        if all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in data.values()):
            # {label: [texts]} (the layout of the paper's local clustering files)
            rows = [{"text": t, "label": label} for label, texts in data.items() for t in texts]
            return pd.DataFrame(rows)
        for key in ("test", "data", "rows"):
            if isinstance(data.get(key), list):
                return _frame_from_json(data[key], file_name, name)
    raise EvaluationError(f"dataset '{name}': '{file_name}' is JSON of an unknown layout; expected a list of records")


# --- report ------------------------------------------------------------------------------------


def _fmt(value: float | None, scale: float = 100.0) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    text = f"{scale * value:.2f}"
    return "0.00" if text == "-0.00" else text


def _table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_report(report: EvaluationReport) -> str:
    """The human-readable tables: per task, aspect matrices, robustness, and the paper's summary."""
    model = report.model.get("model_id", "?")
    mode = "without instruction" if report.settings.get("no_instruction") else "with instruction"
    lines = [f"Model: {model} ({report.model.get('kind', '?')}, {mode}); scores x100; "
             f"{report.settings.get('n_seeds')} KMeans seed(s), {report.settings.get('clusterer')}"]
    rows = [("task", "kind", "metric", "score", "± std", "n")]
    for result in report.results:
        if result.kind in ("aspects", "robustness"):
            continue
        n = str(sum(p.get("n", 0) for p in result.parts))
        rows.append((result.name, result.kind, result.metric, _fmt(result.score), _fmt(result.std), n))
        if len(result.parts) > 1:
            for part in result.parts:
                rows.append(("  " + str(part["name"]), "", part["metric"], _fmt(part["score"]),
                             _fmt(part.get("std")), str(part.get("n", ""))))
    if len(rows) > 1:
        lines += [""] + _table(rows, right=(3, 4, 5))
    for result in report.results:
        if result.kind == "aspects":
            lines += ["", f"Aspects: {result.name} (V-measure x100; rows: instruction, columns: gold labels)"]
            columns = result.details["columns"]
            matrix = result.details["matrix"]
            table = [("instruction for \\ labels", *columns)]
            for i, column in enumerate(columns):
                table.append((column, *(_fmt(v) for v in matrix[i])))
            table.append(("margin", *(_fmt(result.details["margins"][c]) for c in columns)))
            lines += _table(table, right=tuple(range(1, len(columns) + 1)))
            lines.append(f"mean margin: {_fmt(result.score)}")
        if result.kind == "robustness":
            d = result.details
            lines += ["", f"Robustness: {result.name} (V-measure x100 over paraphrases)"]
            table = [("instructions", "n", "min", "max")]
            for kind in ROBUSTNESS_KINDS:
                table.append((kind, str(len(d[kind])), _fmt(d[f"{kind}_min"]), _fmt(d[f"{kind}_max"])))
            lines += _table(table, right=(1, 2, 3))
            lines.append(f"DCI = min(correct) - max(incorrect) = {_fmt(d['DCI'])}; "
                         f"DII = min(implicit) - max(incorrect) = {_fmt(d['DII'])}")
    if any(r.name in AWARENESS_TASKS for r in report.results):
        row = report.awareness()
        header = ("Instruction awareness (x100)", *AWARENESS_TASKS, "Avg. Score")
        table = [header, (f"{model} (this run)", *(_fmt(row[c], 1.0) for c in (*AWARENESS_TASKS, "Avg. Score")))]
        for name, value in PUBLISHED_AVG_SCORES.items():
            table.append((f"{name} (published)", *("n/a",) * len(AWARENESS_TASKS), f"{value:.2f}"))
        lines += [""] + _table(table, right=tuple(range(1, len(header))))
        lines.append("Published: Peng et al., ACL 2024; only the published Avg. Score is reproduced here.")
    return "\n".join(lines)


def write_report(report: EvaluationReport, path: str | os.PathLike[str]) -> Path:
    """Write ``report.as_dict()`` as JSON. Raises ``EvaluationError`` when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                        encoding="utf-8")
    except OSError as error:
        raise EvaluationError(f"cannot write results to '{path}': {error.strerror or error}") from error
    return path


def describe_part(part: Any) -> str:
    """``"120 triplets"``, ``"300 pairs"``, ``"900 texts / 9 labels"``: the size of one task part."""
    if isinstance(part, TripletSet):
        return f"{len(part.anchors)} triplets"
    if isinstance(part, STSSet):
        return f"{len(part.scores)} pairs"
    if isinstance(part, ClusteringSet):
        return f"{len(part.texts)} texts / {len(set(part.labels))} labels"
    return f"{len(part.texts)} texts / {len(part.labels)} label columns"


__all__ = [
    "AWARENESS_TASKS", "PUBLISHED_AVG_SCORES", "AspectSet", "ClusteringScore", "ClusteringSet", "EvalSettings",
    "EvaluationReport", "STSSet", "Task", "TaskResult", "TripletSet", "aspect_margins", "aspects_from_frame",
    "clustering_from_frame", "clustering_v_measure", "describe_part", "evaluate",
    "fetch_hub_frame", "format_report", "harmonic_mean", "intent_triplets",
    "load_aspects", "load_clustering", "load_paraphrases", "load_sts", "load_task", "load_triplets",
    "paired_cosine", "paper_instructions", "parse_aspects", "published_task_names", "read_dataset_folder",
    "robustness_margins", "spearman", "sts_from_frame", "triplet_success_rate", "triplets_from_frame",
    "write_report",
]
