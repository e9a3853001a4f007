"""Follow-up questions inside a cluster (drill-down): the subset re-analysis, the level tree, its path
columns for the labeled CSV, and the tree saved beside a saved run.

A level is one follow-up question asked of some documents of its parent (chosen clusters, or a
selection): only those documents are embedded (the cache serves texts already embedded under that
question), reduced, clustered afresh with cluster-size defaults scaled to the subset, and named.
Levels nest to any depth; ``chain`` gives the path from the corpus to a level.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .analysis import Analysis, AnalysisSettings, names_of
from .errors import InBedderError
from .io.corpus import Corpus, LoadReport
from .results import ClusterSummary, InstructionResult
from .runs import runs_dir

MIN_DOCUMENTS = 10
"""Fewest documents a follow-up question is asked of (UMAP and HDBSCAN need a few)."""

TREE_FILE = "drill.json"
TREE_ARRAYS = "drill.npz"


@dataclass
class DrillLevel:
    """One follow-up question asked of a subset of its parent's documents.

    Attributes:
        parent: index of the parent level in the tree, ``-1`` for the corpus-wide run.
        question: 1-based instruction of the corpus-wide run the path starts from (for ``parent == -1``).
        cluster_ids: the parent's clusters chosen (empty for a selection).
        instruction: the follow-up question.
        indices: ``int64 (m,)`` rows of the whole corpus this level covers.
        result: the analysis of those ``m`` documents (its arrays have ``m`` rows).
        label: the breadcrumb text of the subset (``cluster "card declined"``, ``42 selected documents``).
    """

    parent: int
    question: int
    cluster_ids: list[int]
    instruction: str
    indices: np.ndarray
    result: InstructionResult
    label: str


def subset(corpus: Corpus, indices: Sequence[int] | np.ndarray) -> Corpus:
    """The documents ``indices`` of ``corpus`` (ids, texts and table rows) as a corpus of their own."""
    rows = [int(i) for i in indices]
    n = len(rows)
    return Corpus(ids=[corpus.ids[i] for i in rows], texts=[corpus.texts[i] for i in rows],
                  table=corpus.table.iloc[rows].reset_index(drop=True), text_column=corpus.text_column,
                  source=corpus.source, report=LoadReport(n_rows=n, n_kept=n, source=corpus.source,
                                                          text_column=corpus.text_column,
                                                          notes=[f"{n} documents of {len(corpus)} (drill-down)"]))


def scaled_settings(settings: AnalysisSettings, n_parent: int, n_subset: int) -> AnalysisSettings:
    """``settings`` for a subset: a set ``min_cluster_size`` scaled by ``n_subset / n_parent`` (at least 2; unset
    stays automatic, which scales by itself), ``n_neighbors`` and ``k`` capped by the subset size."""
    changes: dict[str, Any] = {"n_neighbors": max(2, min(settings.n_neighbors, n_subset - 1))}
    if settings.min_cluster_size:
        changes["min_cluster_size"] = max(2, round(settings.min_cluster_size * n_subset / max(n_parent, 1)))
        if settings.min_samples:
            changes["min_samples"] = max(1, min(settings.min_samples, changes["min_cluster_size"]))
    if settings.k is not None:
        changes["k"] = max(1, min(settings.k, n_subset // 2))
    return replace(settings, **changes)


def ask(corpus: Corpus, encoder: Any, indices: Sequence[int] | np.ndarray, instruction: str, *,
        settings: AnalysisSettings, labeler: Any = None, n_parent: int | None = None,
        batch_size: int | None = None, answers: bool | None = None, progress: Any = None) -> InstructionResult:
    """Embed, reduce, cluster and name only the documents ``indices`` of ``corpus`` under ``instruction``.

    ``encoder`` should be the ``CachedEncoder`` of the parent run, so texts already embedded under
    ``instruction`` come from the cache. ``n_parent`` (default ``len(corpus)``) scales a set cluster size.

    Raises:
        InBedderError: fewer than ``MIN_DOCUMENTS`` documents, an index out of range, an empty question.
    """
    rows = np.asarray(indices, dtype=np.int64)
    if len(rows) < MIN_DOCUMENTS:
        raise InBedderError(f"{len(rows)} documents chosen; a follow-up question needs at least {MIN_DOCUMENTS}: "
                            "pick a larger cluster, or several")
    if rows.min() < 0 or rows.max() >= len(corpus):
        raise InBedderError(f"document rows must be in 0..{len(corpus) - 1}; got {rows.min()}..{rows.max()}")
    part = subset(corpus, rows)
    local = scaled_settings(settings, n_parent or len(corpus), len(part))
    analysis = Analysis(part, encoder, local, labeler, batch_size=batch_size, answers=answers)
    return analysis.run(instruction, progress=progress)


def rows_of(labels: np.ndarray, cluster_ids: Sequence[int]) -> np.ndarray:
    """``int64``: positions whose label is one of ``cluster_ids``.

    Raises:
        InBedderError: a cluster id that labels no document.
    """
    labels = np.asarray(labels)
    missing = sorted(set(map(int, cluster_ids)) - set(np.unique(labels).tolist()))
    if missing:
        raise InBedderError(f"cluster ids {missing} label no document; available: {sorted(set(labels.tolist()))}")
    return np.flatnonzero(np.isin(labels, list(map(int, cluster_ids)))).astype(np.int64)


def subset_label(result: InstructionResult, cluster_ids: Sequence[int], n_selected: int) -> str:
    """Breadcrumb text of a subset: ``cluster "card declined"``, ``clusters "a", "b"`` or ``42 selected documents``."""
    if not cluster_ids:
        return f"{n_selected:,} selected documents"
    names = names_of(result)
    quoted = ", ".join(f'"{names.get(int(c), c)}"' for c in cluster_ids)
    return f"cluster {quoted}" if len(cluster_ids) == 1 else f"clusters {quoted}"


def chain(levels: Sequence[DrillLevel], index: int) -> list[DrillLevel]:
    """The levels from the corpus-wide run down to ``levels[index]``, outermost first."""
    out: list[DrillLevel] = []
    seen: set[int] = set()
    while index >= 0:
        if index in seen or index >= len(levels):
            raise InBedderError(f"the drill-down tree is broken at level {index}; reopen the run")
        seen.add(index)
        out.append(levels[index])
        index = levels[index].parent
    return out[::-1]


def breadcrumb(root_instruction: str, path: Sequence[DrillLevel]) -> list[str]:
    """``["corpus", "question 1: ...", 'cluster "card declined"', "question 2: ..."]`` for a path."""
    crumbs = ["corpus", f"question 1: {root_instruction}"]
    for depth, level in enumerate(path, start=2):
        crumbs += [level.label, f"question {depth}: {level.instruction}"]
    return crumbs


def path_columns(n_docs: int, path: Sequence[DrillLevel], root_instruction: str = "") -> pd.DataFrame:
    """The labeled CSV's drill-down columns for a path: ``path`` (``root_instruction``, then the subsets and
    questions that lead to each document, ``" > "``-joined; blank outside the last subset), then per level
    ``d`` (2, 3, ...) ``cluster_level<d>`` and ``label_level<d>`` (blank outside that level's
    subset). ``n_docs`` rows, in corpus order."""
    columns: dict[str, list[str]] = {}
    trail = [root_instruction] * n_docs
    inside = np.ones(n_docs, dtype=bool)
    for depth, level in enumerate(path, start=2):
        here = np.zeros(n_docs, dtype=bool)
        here[level.indices] = True
        inside &= here
        names = names_of(level.result)
        cluster, label = [""] * n_docs, [""] * n_docs
        for position, row in enumerate(level.indices.tolist()):
            cluster_id = int(level.result.labels[position])
            cluster[row], label[row] = str(cluster_id), names.get(cluster_id, str(cluster_id))
            trail[row] = (trail[row] + " > " if trail[row] else "") + f"{level.label} > {level.instruction}"
        columns[f"cluster_level{depth}"], columns[f"label_level{depth}"] = cluster, label
    path_text = [t if inside[i] and path else "" for i, t in enumerate(trail)]
    return pd.DataFrame({"path": path_text, **columns})


# --------------------------------------------------------------------------- a labeled CSV (``inbedder drill``)


_EXPORT_COLUMN = re.compile(r"(answer|cluster|label|description)_[0-9]+")


@dataclass
class RunFile:
    """A labeled CSV written by ``inbedder cluster`` (or ``drill``) read back with its JSON report.

    Attributes:
        corpus: the input rows (the export's own columns removed, renamed input columns restored).
        labels: ``int64 (n,)`` clusters of the chosen question; ``instruction``: that question.
        names: cluster id -> name; ``model``: the report's model; ``settings``: its analysis settings.
        paths: per row, the drill-down path so far (the question itself for a ``cluster`` CSV).
    """

    corpus: Corpus
    labels: np.ndarray
    instruction: str
    names: dict[int, str]
    model: str
    settings: AnalysisSettings
    paths: list[str]

    def subset(self, rows: np.ndarray, cluster_ids: Sequence[int], instruction: str) -> Corpus:
        """The chosen rows, their ``path`` column extended with the clusters and ``instruction``."""
        part = subset(self.corpus, rows)
        quoted = ", ".join(f'"{self.names.get(int(c), c)}"' for c in cluster_ids)
        step = f"{'cluster' if len(cluster_ids) == 1 else 'clusters'} {quoted} > {instruction}"
        part.table["path"] = [f"{self.paths[int(r)]} > {step}" for r in rows]
        return part


def read_run(path: str | os.PathLike[str], question: int = 1) -> RunFile:
    """Read a labeled CSV and the JSON report beside it (``<name>.json``).

    Raises:
        InBedderError: no report beside the CSV, a question number out of range, columns missing.
    """
    from pathlib import Path

    from .export import read_csv_export

    csv_path = Path(path)
    report_path = csv_path.with_suffix(".json")
    if not report_path.is_file():
        raise InBedderError(f"no JSON report '{report_path}' beside '{csv_path}'; drill reads the CSV and the report "
                            "that `inbedder cluster` writes together: keep them side by side")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        instructions = report["instructions"]
        text_column = report["corpus"]["text_column"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InBedderError(f"'{report_path}' is not an `inbedder cluster` report ({error})") from error
    if not 1 <= question <= len(instructions):
        raise InBedderError(f"--question {question} is out of range; the run has questions 1..{len(instructions)}: "
                            + "; ".join(f"{i['index']}: {i['instruction']}" for i in instructions))
    chosen = instructions[question - 1]
    frame = read_csv_export(csv_path)
    column = chosen["columns"]["cluster"]
    if column not in frame.columns:
        raise InBedderError(f"column '{column}' not found in '{csv_path}'; is it the CSV of this report?")
    labels = frame[column].astype(np.int64).to_numpy()
    if "doc_id" in frame.columns and ("id" not in frame.columns or not frame["doc_id"].equals(frame["id"])):
        ids = frame.pop("doc_id").tolist()
    else:
        ids = frame["id"].tolist() if "id" in frame.columns else [str(i + 1) for i in range(len(frame))]
    table = frame[[c for c in frame.columns if not _EXPORT_COLUMN.fullmatch(str(c))]]
    table = table.rename(columns={new: old for old, new in (report.get("renamed_columns") or {}).items()})
    if text_column not in table.columns:
        raise InBedderError(f"text column '{text_column}' of the report not found in '{csv_path}'")
    paths = table["path"].tolist() if "path" in table.columns else [chosen["instruction"]] * len(table)
    corpus = Corpus(ids=[str(i) for i in ids], texts=table[text_column].tolist(), table=table.reset_index(drop=True),
                    text_column=text_column, source=csv_path.name,
                    report=LoadReport(n_rows=len(table), n_kept=len(table), source=csv_path.name,
                                      text_column=text_column))
    known = {f for f in AnalysisSettings.__dataclass_fields__}
    settings = AnalysisSettings(**{k: v for k, v in (report.get("parameters") or {}).items() if k in known})
    names = {int(c["cluster_id"]): str(c["name"]) for c in chosen.get("clusters") or []}
    return RunFile(corpus, labels, str(chosen["instruction"]), names, str(report.get("model") or ""), settings, paths)


# --------------------------------------------------------------------------- saved with a run


def save_tree(levels: Sequence[DrillLevel], corpus_digest: str, run_id: str,
              root: str | os.PathLike[str] | None = None) -> None:
    """Write the tree into the saved run's folder (``drill.json`` and ``drill.npz``), replacing any earlier one.

    Raises:
        InBedderError: the run folder does not exist or cannot be written.
    """
    folder = runs_dir(root) / corpus_digest / run_id
    if not folder.is_dir():
        raise InBedderError(f"no saved run {run_id!r} to keep the drill-down in; run the question again")
    document = [{"parent": lv.parent, "question": lv.question, "cluster_ids": [int(c) for c in lv.cluster_ids],
                 "instruction": lv.instruction, "label": lv.label, "answers": lv.result.answers,
                 "clusters": [c.__dict__ for c in lv.result.clusters],
                 "quality": {k: v for k, v in lv.result.quality.items() if isinstance(v, (int, float, str, list))},
                 } for lv in levels]
    arrays = {}
    for i, lv in enumerate(levels):
        arrays.update({f"indices_{i}": lv.indices, f"labels_{i}": lv.result.labels,
                       f"raw_labels_{i}": lv.result.raw_labels, f"coords_{i}": lv.result.coords})
    try:
        (folder / TREE_FILE).write_text(json.dumps(document, ensure_ascii=False, default=str), encoding="utf-8")
        with open(folder / TREE_ARRAYS, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    except OSError as error:
        raise InBedderError(f"cannot save the drill-down under '{folder}': {error}") from error


def load_tree(corpus_digest: str, run_id: str, root: str | os.PathLike[str] | None = None) -> list[DrillLevel]:
    """The tree saved with a run (empty when it has none).

    Raises:
        InBedderError: the files are damaged.
    """
    folder = runs_dir(root) / corpus_digest / run_id
    if not (folder / TREE_FILE).is_file():
        return []
    try:
        document = json.loads((folder / TREE_FILE).read_text(encoding="utf-8"))
        with np.load(folder / TREE_ARRAYS, allow_pickle=False) as arrays:
            return [DrillLevel(
                parent=int(d["parent"]), question=int(d["question"]), cluster_ids=[int(c) for c in d["cluster_ids"]],
                instruction=str(d["instruction"]), label=str(d["label"]),
                indices=arrays[f"indices_{i}"].astype(np.int64),
                result=InstructionResult(
                    instruction=str(d["instruction"]), answers=d["answers"],
                    labels=arrays[f"labels_{i}"].astype(np.int64),
                    raw_labels=arrays[f"raw_labels_{i}"].astype(np.int64),
                    coords=arrays[f"coords_{i}"].astype(np.float32),
                    clusters=[ClusterSummary(**{**c, "top_answers": [tuple(a) for a in c["top_answers"]]})
                              for c in d["clusters"]],
                    quality=dict(d["quality"])))
                for i, d in enumerate(document)]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InBedderError(f"the drill-down saved with run {run_id!r} cannot be read ({error}); ask the "
                            "follow-up questions again") from error
