"""Cluster edits: rename, merge, split, move documents, mark "not interesting"; an edit log with
undo/redo, replayed on a saved run's results and kept in its folder (``edits.json``).

An edit is a small JSON record. Replaying never recomputes anything: a split stores the
sub-cluster of each of its documents when it is made (``split_edit`` re-clusters the part
alone), so a reopened run shows exactly what the analyst saw. ``apply_edits`` turns the
clusterer's results (the *base*, as saved) into the edited results that every view and
export shows; the base is never modified.

Cluster ids: a merge keeps the first cluster's id; a split gives its parts fresh ids above
every id in use; noise (``NOISE``) can receive moved documents but cannot be renamed, merged
or split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import summarize_clusters
from .errors import InBedderError
from .results import NOISE, ClusterName, InstructionResult

EDITS_FILE = "edits.json"
EDITS_SCHEMA = "inbedder-explorer/edits/1"
OPS = ("rename", "merge", "split", "move", "not_interesting")


class EditError(InBedderError):
    """An edit that cannot apply (unknown cluster, noise, too few clusters...) or an unreadable edit log."""


@dataclass(frozen=True)
class Edit:
    """One edit of one instruction's clusters.

    ``op`` and its ``data``:
        ``rename``: ``{"cluster": id, "name": str}``
        ``merge``: ``{"clusters": [id, id, ...]}`` (two or more; the first id is kept)
        ``split``: ``{"cluster": id, "members": [doc index, ...], "parts": [part per member, ...]}``
        ``move``: ``{"documents": [doc index, ...], "to": id}``
        ``not_interesting``: ``{"cluster": id, "value": bool}``
    """

    op: str
    instruction: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "instruction": self.instruction, **self.data}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Edit:
        if not isinstance(record, Mapping) or record.get("op") not in OPS or not isinstance(
                record.get("instruction"), str):
            raise EditError(f"edit {record!r} is not one of {list(OPS)} with an instruction")
        return cls(str(record["op"]), str(record["instruction"]),
                   {k: v for k, v in record.items() if k not in ("op", "instruction")})

    def describe(self) -> str:
        """One line for the edit history: ``merge 3, 5``."""
        d = self.data
        if self.op == "rename":
            return f"rename {d['cluster']} to {d['name']!r}"
        if self.op == "merge":
            return f"merge {', '.join(map(str, d['clusters']))}"
        if self.op == "split":
            return f"split {d['cluster']} into {len(set(d['parts']))}"
        if self.op == "move":
            return f"move {len(d['documents'])} document(s) to {d['to']}"
        return f"mark {d['cluster']} {'not interesting' if d.get('value', True) else 'interesting'}"


class EditLog:
    """The edits of one run, in order, with undo/redo (the redo stack lives in the session only)."""

    def __init__(self, edits: Sequence[Edit] = ()) -> None:
        self.edits: list[Edit] = list(edits)
        self.undone: list[Edit] = []

    def do(self, edit: Edit) -> None:
        self.edits.append(edit)
        self.undone.clear()

    def undo(self) -> Edit | None:
        """Take back the last edit (``None`` when there is none)."""
        if not self.edits:
            return None
        edit = self.edits.pop()
        self.undone.append(edit)
        return edit

    def redo(self) -> Edit | None:
        if not self.undone:
            return None
        edit = self.undone.pop()
        self.edits.append(edit)
        return edit

    def for_instruction(self, instruction: str) -> list[Edit]:
        return [e for e in self.edits if e.instruction == instruction]

    def as_json(self) -> list[dict[str, Any]]:
        return [e.as_json() for e in self.edits]


# --------------------------------------------------------------------------- making edits


def _cluster_ids(result: InstructionResult) -> set[int]:
    return {int(c) for c in np.unique(result.labels)}


def _check_cluster(result: InstructionResult, cluster: int, what: str) -> int:
    cluster = int(cluster)
    if cluster == NOISE:
        raise EditError(f"noise cannot be {what}; pick a cluster")
    if cluster not in _cluster_ids(result):
        raise EditError(f"cluster {cluster} is not a cluster of {result.instruction!r}; "
                        f"clusters: {sorted(_cluster_ids(result) - {NOISE})}")
    return cluster


def rename_edit(result: InstructionResult, cluster: int, name: str) -> Edit:
    """Rename ``cluster`` of the (edited) ``result``; the previous name is kept as ``generated_name``."""
    cluster = _check_cluster(result, cluster, "renamed")
    if not str(name).strip():
        raise EditError("the new name is empty; type a name")
    return Edit("rename", result.instruction, {"cluster": cluster, "name": str(name).strip()})


def merge_edit(result: InstructionResult, clusters: Sequence[int]) -> Edit:
    """Merge two or more clusters into the first one."""
    ids = list(dict.fromkeys(_check_cluster(result, c, "merged") for c in clusters))
    if len(ids) < 2:
        raise EditError(f"a merge needs two or more different clusters; got {ids}")
    return Edit("merge", result.instruction, {"clusters": ids})


def split_edit(result: InstructionResult, cluster: int, vectors: np.ndarray, n_parts: int = 2,
               random_state: int = 0) -> Edit:
    """Split ``cluster`` by re-clustering its documents alone: KMeans with ``n_parts`` on ``vectors``.

    Args:
        vectors: ``float32 (n_docs, k)`` positions of every document of the run (the reduced
            vectors when the run kept them, else the 2-D map); only the cluster's rows are used.

    Raises:
        EditError: noise, an unknown cluster, or fewer documents than parts.
    """
    from .cluster.clusterers import KMeansClusterer

    cluster = _check_cluster(result, cluster, "split")
    members = np.flatnonzero(np.asarray(result.labels) == cluster)
    if len(members) < max(2, int(n_parts)):
        raise EditError(f"cluster {cluster} has {len(members)} document(s); a split into {n_parts} needs more")
    parts = KMeansClusterer(k=int(n_parts), random_state=random_state).fit_predict(
        np.asarray(vectors, dtype=np.float32)[members])
    if len(np.unique(parts)) < 2:
        raise EditError(f"the documents of cluster {cluster} cannot be told apart (identical positions); "
                        "move some by hand instead")
    return Edit("split", result.instruction, {"cluster": cluster, "members": members.tolist(),
                                              "parts": parts.tolist()})


def move_edit(result: InstructionResult, documents: Sequence[int], to: int) -> Edit:
    """Move documents (row indices of the corpus) to cluster ``to`` (``NOISE`` allowed)."""
    to = int(to)
    if to != NOISE:
        to = _check_cluster(result, to, "a target")
    docs = sorted({int(i) for i in documents})
    if not docs:
        raise EditError("no documents selected to move; select some on the map or in the list")
    if docs[0] < 0 or docs[-1] >= len(result.labels):
        raise EditError(f"document index out of range 0..{len(result.labels) - 1}")
    return Edit("move", result.instruction, {"documents": docs, "to": to})


def not_interesting_edit(result: InstructionResult, cluster: int, value: bool = True) -> Edit:
    return Edit("not_interesting", result.instruction,
                {"cluster": _check_cluster(result, cluster, "marked"), "value": bool(value)})


# --------------------------------------------------------------------------- replaying


def apply_edits(result: InstructionResult, edits: Sequence[Edit]) -> InstructionResult:
    """The result with ``edits`` (those of its instruction) replayed in order; ``result`` is not modified.

    Cluster summaries are rebuilt (sizes, shares, top answers); a renamed cluster keeps the
    earlier name as ``generated_name``; ``quality`` gains ``n_edits`` and the edited
    ``n_clusters`` / ``cluster_sizes`` (noise share stays the clusterer's).

    Raises:
        EditError: an edit names a cluster or document that is not there (a log from another run).
    """
    edits = [e for e in edits if e.instruction == result.instruction]
    if not edits:
        return result
    labels = np.asarray(result.labels, dtype=np.int64).copy()
    names = {c.cluster_id: ClusterName(c.cluster_id, c.name, c.description, list(c.keywords), source=c.source)
             for c in result.clusters}
    generated = {c.cluster_id: c.generated_name for c in result.clusters if c.generated_name}
    dull = {c.cluster_id for c in result.clusters if not c.interesting}
    for edit in edits:
        present = set(np.unique(labels).tolist())
        d = edit.data
        try:
            if edit.op == "rename":
                cluster = int(d["cluster"])
                _require(cluster in present and cluster != NOISE, edit)
                generated.setdefault(cluster, names[cluster].name)
                names[cluster] = replace(names[cluster], name=str(d["name"]))
            elif edit.op == "merge":
                ids = [int(c) for c in d["clusters"]]
                _require(len(ids) >= 2 and all(c in present and c != NOISE for c in ids), edit)
                labels[np.isin(labels, ids[1:])] = ids[0]
            elif edit.op == "split":
                cluster, members = int(d["cluster"]), np.asarray(d["members"], dtype=np.int64)
                parts = np.asarray(d["parts"], dtype=np.int64)
                _require(cluster in present and cluster != NOISE and len(members) == len(parts) and (
                    len(members) == 0 or members.max() < len(labels)), edit)
                base_name = names[cluster]
                next_id = max(max(present), max(names)) + 1
                for number, part in enumerate(np.unique(parts)[1:], start=2):
                    rows = members[parts == part]
                    labels[rows[labels[rows] == cluster]] = next_id
                    names[next_id] = replace(base_name, cluster_id=next_id, name=f"{base_name.name} (part {number})")
                    generated[next_id] = base_name.name
                    next_id += 1
                names[cluster] = replace(base_name, name=f"{base_name.name} (part 1)")
                generated.setdefault(cluster, base_name.name)
            elif edit.op == "move":
                docs, to = np.asarray(d["documents"], dtype=np.int64), int(d["to"])
                _require(to == NOISE or to in present, edit)
                _require(len(docs) == 0 or (docs.min() >= 0 and docs.max() < len(labels)), edit)
                labels[docs] = to
            elif edit.op == "not_interesting":
                cluster = int(d["cluster"])
                _require(cluster in present and cluster != NOISE, edit)
                (dull.add if d.get("value", True) else dull.discard)(cluster)
        except (KeyError, TypeError, ValueError) as error:
            raise EditError(f"edit {edit.as_json()!r} is malformed ({error})") from error
    summaries = summarize_clusters(labels, list(names.values()), result.answers)
    summaries = [replace(s, generated_name=generated.get(s.cluster_id), interesting=s.cluster_id not in dull)
                 for s in summaries]
    kept = labels[labels != NOISE]
    ids, counts = np.unique(kept, return_counts=True)
    quality = {**result.quality, "n_edits": len(edits), "n_clusters": int(ids.size),
               "cluster_sizes": {int(i): int(c) for i, c in zip(ids, counts, strict=True)}}
    return replace(result, labels=labels, clusters=summaries, quality=quality)


def _require(condition: bool, edit: Edit) -> None:
    if not condition:
        raise EditError(f"edit '{edit.describe()}' of {edit.instruction!r} does not fit these clusters; "
                        "the edit log belongs to another run or was changed by hand")


def apply_log(results: Sequence[InstructionResult], log: EditLog) -> list[InstructionResult]:
    """Every result with the log's edits replayed (see ``apply_edits``)."""
    return [apply_edits(r, log.edits) for r in results]


# --------------------------------------------------------------------------- on disk


def save_edits(folder: str | os.PathLike[str], log: EditLog) -> Path:
    """Write the log's edits to ``folder/edits.json`` (atomically: written beside, then renamed in).

    Raises:
        EditError: the folder cannot be written.
    """
    path = Path(folder) / EDITS_FILE
    partial = path.with_name(f".{EDITS_FILE}.partial")
    try:
        partial.write_text(json.dumps({"schema": EDITS_SCHEMA, "edits": log.as_json()}, ensure_ascii=False),
                           encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        raise EditError(f"cannot save the edits in '{folder}': {error.strerror or error}") from error
    return path


def load_edits(folder: str | os.PathLike[str]) -> EditLog:
    """The edit log saved in ``folder`` (an empty log when there is none).

    Raises:
        EditError: the file is unreadable or not an edit log.
    """
    path = Path(folder) / EDITS_FILE
    if not path.exists():
        return EditLog()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EditError(f"the edit log '{path}' cannot be read ({error}); remove it to drop the edits") from error
    if not isinstance(document, dict) or document.get("schema") != EDITS_SCHEMA or not isinstance(
            document.get("edits"), list):
        raise EditError(f"'{path}' is not an edit log of this version; remove it to drop the edits")
    return EditLog([Edit.from_json(record) for record in document["edits"]])
