"""``evaluate``: run tasks through one encoder (``EvalSettings``: batch size, clusterer, seed) and
collect a ``TaskResult`` per task into an ``EvaluationReport``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EvaluationError
from .metrics import (
    CLUSTERERS,
    aspect_margins,
    clustering_v_measure,
    harmonic_mean,
    paired_cosine,
    robustness_margins,
    spearman,
    triplet_success_rate,
)
from .report import EvaluationReport, TaskResult
from .tasks import ROBUSTNESS_KINDS, AspectSet, ClusteringSet, STSSet, Task, TripletSet

ProgressFactory = Callable[[str], Any]
"""``factory(description)`` returns a callable ``bar(done, total)`` with a ``.close()``."""


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
