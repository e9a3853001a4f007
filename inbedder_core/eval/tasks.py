"""Evaluation tasks as data (triplets, STS pairs, clusterings, aspects) and their builders from
local files or data frames (``load_triplets``, ``load_clustering``, ``parse_aspects``...).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import EvaluationError

TaskKind = Literal["triplets", "sts", "clustering", "aspects"]
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
BUILTIN_TASKS = ("banking77-clustering", "banking77-triplets")


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


# --- loading local files -----------------------------------------------------------------------


def _read_local(path: str | os.PathLike[str], text_column: str) -> pd.DataFrame:
    """The rows of a CSV/TSV/JSONL/Parquet file as strings (rows without ``text_column`` skipped)."""
    from ..errors import CorpusError
    from ..io.load import load_corpus

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


def describe_part(part: Any) -> str:
    """``"120 triplets"``, ``"300 pairs"``, ``"900 texts / 9 labels"``: the size of one task part."""
    if isinstance(part, TripletSet):
        return f"{len(part.anchors)} triplets"
    if isinstance(part, STSSet):
        return f"{len(part.scores)} pairs"
    if isinstance(part, ClusteringSet):
        return f"{len(part.texts)} texts / {len(set(part.labels))} labels"
    return f"{len(part.texts)} texts / {len(part.labels)} label columns"
