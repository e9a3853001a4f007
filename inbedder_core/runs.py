"""Run persistence: completed analyses saved on disk and reopened without recomputing.

A run is what one analyst computed on one corpus with one model: the settings, the
instructions and, per instruction, the labels, raw labels, 2-D coordinates, answers
and cluster summaries. Runs live under ``default_cache_dir() / "runs"``
(``INBEDDER_CACHE_DIR`` moves them), one folder per corpus::

    runs/<corpus hash>/<run id>/run.json       what a listing shows: time, model, settings, instructions
    runs/<corpus hash>/<run id>/results.json   per instruction: answers, cluster summaries, quality
    runs/<corpus hash>/<run id>/arrays.npz     labels, raw_labels, coords (no pickles)

Listing reads only the small ``run.json`` of each run, however large the corpus.

**Who sees a run.** Runs are keyed by the corpus *content* hash (``corpus_hash``: the
document ids and texts), not by a user or a session: whoever loads the same corpus
on the same machine (same cache directory) can list and reopen its runs, and nobody
can list runs of a corpus they do not hold. This is a deliberate choice for a local,
single-team tool: holding the documents is what grants access to results computed
from them. Deployments that need per-user separation give each user their own
``INBEDDER_CACHE_DIR``. A run never holds an API key: ``save_run`` refuses settings
whose keys look like credentials.

**How many are kept.** Every save also tidies the corpus's folder: a run recorded with
the same model, encoder fingerprint, settings and instructions as the new one is
replaced by it (re-applying the same settings does not pile up copies), and beyond
``max_runs`` runs per corpus (default ``DEFAULT_MAX_RUNS``, ``INBEDDER_MAX_RUNS`` to
change) the oldest are removed.

A run folder is written beside its final place and renamed in, so a listing never sees
half a run; a run being removed is renamed out of the listing before it is deleted; a
folder that cannot be read is skipped by ``list_runs``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RunError
from .export import credential_key, to_jsonable
from .io.corpus import Corpus
from .results import ClusterSummary, InstructionResult
from .settings import default_cache_dir, positive_int_setting

RUNS_SUBDIR = "runs"
RUN_SCHEMA = "inbedder-explorer/saved-run/1"
RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
ARRAYS_FILE = "arrays.npz"
MAX_RUNS_ENV = "INBEDDER_MAX_RUNS"
DEFAULT_MAX_RUNS = 20
"""Runs kept per corpus when neither ``max_runs=`` nor ``INBEDDER_MAX_RUNS`` says otherwise."""

_HASH = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")


def runs_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding saved runs: ``root`` or ``default_cache_dir() / "runs"``."""
    return Path(root) if root is not None else default_cache_dir() / RUNS_SUBDIR


def max_runs_per_corpus(value: int | None = None) -> int:
    """How many runs to keep per corpus: ``value``, else ``INBEDDER_MAX_RUNS``, else ``DEFAULT_MAX_RUNS``.

    Raises:
        RunError: ``value`` or the environment variable is not a positive whole number.
    """
    return positive_int_setting(value, MAX_RUNS_ENV, DEFAULT_MAX_RUNS, "max_runs", RunError)


def corpus_hash(corpus: Corpus) -> str:
    """A SHA-256 hex digest of the corpus content: every document's id and text, in order.

    The file name, the format and the other columns do not enter it; the same
    documents loaded with another text column (other texts) give another hash.
    """
    digest = hashlib.sha256(b"inbedder-corpus/1\0")
    for doc_id, text in zip(corpus.ids, corpus.texts, strict=True):
        for part in (str(doc_id), str(text)):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()


@dataclass
class RunInfo:
    """What a listing shows of a saved run (no arrays).

    Attributes:
        run_id: ``YYYYMMDDTHHMMSSZ-xxxxxxxx`` (UTC time of saving, then 8 hex digits: 5 of the
            microseconds, so ids sort by saving time, and 3 random).
        created: ISO 8601 UTC time of saving.
        corpus_hash: ``corpus_hash`` of the corpus the run was computed on.
        source: the corpus's display name (file name) when the run was saved.
        n_documents: documents in the corpus.
        model: the model id used.
        instructions: in the order they were run.
        settings: the reduce/cluster/naming settings (JSON values).
        fingerprint: the encoder fingerprint (model id, revision, kind, pattern, pooling, dtype).
        n_clusters: non-noise clusters per instruction.
    """

    run_id: str
    created: str
    corpus_hash: str
    source: str
    n_documents: int
    model: str
    instructions: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    n_clusters: list[int] = field(default_factory=list)

    def describe(self) -> str:
        """One line that tells runs apart: time, model, clustering settings, cluster counts, instructions."""
        when = self.created.replace("T", " ")[:19]
        parts = [f"{when} UTC", self.model]
        clustering = _describe_clustering(self.settings)
        if clustering:
            parts.append(clustering)
        if self.n_clusters:
            parts.append(f"{'/'.join(map(str, self.n_clusters))} clusters")
        parts.append(f"{len(self.instructions)} instruction(s): {'; '.join(self.instructions)}")
        return " · ".join(parts)


def _describe_clustering(settings: dict[str, Any]) -> str:
    """``"HDBSCAN min size 15, 15 neighbours, keyword names"`` from what the app records (any part may lack)."""
    effective = settings.get("effective") or settings.get("analysis") or {}
    parts = []
    if effective.get("k") is not None:
        parts.append(f"KMeans k={effective['k']}")
    elif effective.get("min_cluster_size") is not None:
        parts.append(f"HDBSCAN min size {effective['min_cluster_size']}")
    if effective.get("n_neighbors") is not None:
        parts.append(f"{effective['n_neighbors']} neighbours")
    naming = str(settings.get("naming_mode") or "")
    if naming:
        parts.append("LLM names" if naming.lower() == "llm" else "keyword names")
    return ", ".join(parts)


@dataclass
class SavedRun:
    """A reopened run: its ``RunInfo`` and one ``InstructionResult`` per instruction."""

    info: RunInfo
    results: list[InstructionResult]


def _check_hash(value: str) -> str:
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise RunError(f"corpus hash {value!r} is not a SHA-256 hex digest; use runs.corpus_hash(corpus)")
    return value


def _check_run_id(value: str) -> str:
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        raise RunError(f"run id {value!r} is not a saved run's id; pick one from list_runs(...)")
    return value


def _summary_from_json(data: Mapping[str, Any]) -> ClusterSummary:
    return ClusterSummary(
        cluster_id=int(data["cluster_id"]), size=int(data["size"]), share=float(data["share"]),
        name=str(data["name"]), description=str(data["description"]), keywords=[str(k) for k in data["keywords"]],
        top_answers=[(str(a), int(c)) for a, c in data["top_answers"]], source=data["source"],
    )


def save_run(
    corpus: Corpus,
    results: Sequence[InstructionResult],
    *,
    model: str,
    settings: Mapping[str, Any],
    fingerprint: Mapping[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
    now: dt.datetime | None = None,
    max_runs: int | None = None,
) -> RunInfo:
    """Save ``results`` (computed on ``corpus``) as a new run and return its ``RunInfo``.

    Then tidy the corpus's runs: earlier runs with the same model, fingerprint, settings
    and instructions are removed (the new run replaces them), and the oldest runs
    beyond ``max_runs`` (``None``: ``INBEDDER_MAX_RUNS``, else ``DEFAULT_MAX_RUNS``) are
    removed. The new run is never removed.

    Raises:
        RunError: no results; a result whose arrays do not have one row per document;
            a settings or fingerprint key that looks like a credential; ``max_runs``
            (or ``INBEDDER_MAX_RUNS``) not a positive whole number; the folder cannot
            be written.
    """
    limit = max_runs_per_corpus(max_runs)
    if not results:
        raise RunError("nothing to save: run at least one instruction first")
    n = len(corpus)
    for result in results:
        shapes = (np.shape(result.labels), np.shape(result.raw_labels), np.shape(result.coords))
        if shapes != ((n,), (n,), (n, 2)) or (result.answers is not None and len(result.answers) != n):
            raise RunError(f"result of {result.instruction!r} does not cover the {n} documents of the corpus "
                           f"(labels, raw labels, coords: {shapes})")
    for where, value in (("settings", settings), ("fingerprint", fingerprint or {})):
        credential = credential_key(value, where)
        if credential:
            raise RunError(f"{credential} looks like a credential; runs are stored in plain files and must not "
                           "hold secrets")
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    info = RunInfo(
        run_id=f"{stamp:%Y%m%dT%H%M%SZ}-{stamp.microsecond:05x}{uuid.uuid4().hex[:3]}",
        created=stamp.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        corpus_hash=corpus_hash(corpus), source=corpus.source, n_documents=n, model=str(model),
        instructions=[r.instruction for r in results], settings=to_jsonable(dict(settings), "settings"),
        fingerprint=to_jsonable(dict(fingerprint or {}), "fingerprint"),
        n_clusters=[sum(1 for c in r.clusters if c.cluster_id >= 0) for r in results],
    )
    document = {"schema": RUN_SCHEMA, "info": info.__dict__}
    details = {
        "schema": RUN_SCHEMA,
        "results": [
            {
                "instruction": r.instruction,
                "answers": None if r.answers is None else [None if a is None else str(a) for a in r.answers],
                "clusters": to_jsonable(list(r.clusters), "clusters"),
                "quality": to_jsonable(dict(r.quality), "quality"),
                "timings": to_jsonable(dict(r.timings), "timings"),
            }
            for r in results
        ],
    }
    arrays: dict[str, Any] = {}
    for i, r in enumerate(results):
        arrays[f"labels_{i}"] = np.asarray(r.labels, dtype=np.int64)
        arrays[f"raw_labels_{i}"] = np.asarray(r.raw_labels, dtype=np.int64)
        arrays[f"coords_{i}"] = np.asarray(r.coords, dtype=np.float32)
    folder = runs_dir(root) / info.corpus_hash
    final = folder / info.run_id
    partial = folder / f".{info.run_id}.partial"
    try:
        partial.mkdir(parents=True, exist_ok=False)
        (partial / RUN_FILE).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        (partial / RESULTS_FILE).write_text(json.dumps(details, ensure_ascii=False), encoding="utf-8")
        with open(partial / ARRAYS_FILE, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(partial, final)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise RunError(f"cannot save the run under '{folder}': {error.strerror or error}; "
                       "set INBEDDER_CACHE_DIR to a writable directory") from error
    _tidy(folder, info, limit)
    return info


def _identity(info: RunInfo) -> str:
    """What makes two runs of one corpus the same run: model, fingerprint, settings, instructions (not the
    columns the analyst was looking through, ``settings["view"]``: they do not change the results)."""
    settings = {k: v for k, v in info.settings.items() if k != "view"}
    return json.dumps([info.model, info.fingerprint, settings, info.instructions], sort_keys=True,
                      ensure_ascii=False)


def _tidy(folder: Path, saved: RunInfo, limit: int) -> None:
    """Remove the runs that ``saved`` replaces, then the oldest beyond ``limit`` (never ``saved``).

    Only older copies are replaced: when two sessions save the same run at once, the
    newer one is kept by both, never neither.
    """
    same = _identity(saved)
    others = [info for info in list_runs(saved.corpus_hash, root=folder.parent) if info.run_id != saved.run_id]
    doomed = [info for info in others if info.run_id < saved.run_id and _identity(info) == same]
    remaining = [info for info in others if info not in doomed]  # newest first
    doomed += remaining[max(0, limit - 1):]
    for info in doomed:
        _remove(folder, info.run_id)


def _remove(folder: Path, run_id: str) -> None:
    """Delete one run folder: renamed out of the listing first, so no reader sees half of it."""
    gone = folder / f".{run_id}.{uuid.uuid4().hex[:8]}.removed"
    try:
        os.replace(folder / run_id, gone)
    except OSError:  # already removed by another session, or not ours to remove
        return
    shutil.rmtree(gone, ignore_errors=True)


def _read_document(folder: Path, name: str = RUN_FILE) -> dict[str, Any]:
    document = json.loads((folder / name).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("schema") != RUN_SCHEMA:
        raise ValueError(f"not a saved run (schema {document.get('schema') if isinstance(document, dict) else None!r})")
    return document


_INFO_TYPES: dict[str, Any] = {
    "run_id": str, "created": str, "corpus_hash": str, "source": str, "n_documents": int, "model": str,
    "instructions": list, "settings": dict, "fingerprint": dict, "n_clusters": list,
}
_REQUIRED_INFO = ("run_id", "created", "corpus_hash", "n_documents", "model", "instructions")


def _info(data: Any) -> RunInfo:
    """A ``RunInfo`` from a saved ``run.json``'s ``info``, every field checked with its type.

    Raises:
        ValueError: a required field is missing, or any field has the wrong type (the message names it).
    """
    if not isinstance(data, dict):
        raise ValueError(f"info is {type(data).__name__}, not an object")
    for name in _REQUIRED_INFO:
        if name not in data:
            raise ValueError(f"field {name!r} is missing")
    for name, kind in _INFO_TYPES.items():
        value = data.get(name)
        if name in data and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ValueError(f"field {name!r} is {type(value).__name__} {_clip(value)}, not {kind.__name__}")
    if not _RUN_ID.fullmatch(data["run_id"]) or not _HASH.fullmatch(data["corpus_hash"]):
        raise ValueError(f"run id {_clip(data['run_id'])} or corpus hash is malformed")
    if not all(isinstance(i, str) for i in data["instructions"]):
        raise ValueError("field 'instructions' holds a value that is not text")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in data.get("n_clusters", [])):
        raise ValueError("field 'n_clusters' holds a value that is not a whole number")
    try:
        dt.datetime.fromisoformat(data["created"].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"field 'created' is not an ISO 8601 time: {_clip(data['created'])}") from None
    settings_problem(data.get("settings", {}))
    return RunInfo(**{k: data[k] for k in RunInfo.__dataclass_fields__ if k in data})


def settings_problem(settings: Mapping[str, Any]) -> None:
    """Check the analysis settings a run recorded (``settings["analysis"]``) field by field.

    Raises:
        ValueError: a known field has the wrong type (booleans are not numbers), naming it.
    """
    analysis = settings.get("analysis") if isinstance(settings, Mapping) else None
    if analysis is None:
        return
    if not isinstance(analysis, dict):
        raise ValueError(f"settings 'analysis' is {type(analysis).__name__}, not an object")
    for name, value in analysis.items():
        kinds = _SETTING_TYPES.get(name)
        if kinds is None:
            continue  # a field this version does not know is ignored on reopening
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            if not (value is None and type(None) in kinds):
                raise ValueError(f"setting {name!r} is {type(value).__name__} {_clip(value)}")


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "n_neighbors": (int,), "n_components": (int,), "metric": (str,), "min_cluster_size": (int, type(None)),
    "min_samples": (int, type(None)), "k": (int, type(None)), "assign_noise": (bool,),
    "random_state": (int, type(None)), "map_min_dist": (float, int), "map_init": (str,),
    "map_epochs": (int, type(None)), "pca_components": (int, type(None)), "fit_sample_above": (int,),
    "fit_sample_size": (int,), "backend": (str,),
}


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class DamagedRun:
    """A saved run folder that cannot be read: its id and what is wrong, for a listing to show."""

    run_id: str
    problem: str


def list_runs(corpus_digest: str, root: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """The runs saved for the corpus with this ``corpus_hash``, newest first.

    Only that corpus's folder is read: runs of other corpora are never listed.
    Run folders that cannot be read, or whose ``run.json`` has a field of the wrong type,
    are left out here and listed by ``damaged_runs``.

    Raises:
        RunError: ``corpus_digest`` is not a SHA-256 hex digest.
    """
    return _scan(corpus_digest, root)[0]


def damaged_runs(corpus_digest: str, root: str | os.PathLike[str] | None = None) -> list[DamagedRun]:
    """The run folders of this corpus that cannot be read, each with what is wrong, newest first.

    Raises:
        RunError: ``corpus_digest`` is not a SHA-256 hex digest.
    """
    return _scan(corpus_digest, root)[1]


def _scan(corpus_digest: str, root: str | os.PathLike[str] | None) -> tuple[list[RunInfo], list[DamagedRun]]:
    folder = runs_dir(root) / _check_hash(corpus_digest)
    if not folder.is_dir():
        return [], []
    infos, damaged = [], []
    for path in folder.iterdir():
        if not _RUN_ID.fullmatch(path.name):
            continue
        try:
            info = _info(_read_document(path)["info"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
            damaged.append(DamagedRun(path.name, _problem(error)))
            continue
        if info.corpus_hash == corpus_digest and info.run_id == path.name:
            infos.append(info)
        elif info.corpus_hash == corpus_digest:
            damaged.append(DamagedRun(path.name, f"its run.json names another run ({info.run_id})"))
    infos.sort(key=lambda i: i.run_id, reverse=True)
    damaged.sort(key=lambda d: d.run_id, reverse=True)
    return infos, damaged


def _problem(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"field {error} is missing"
    if isinstance(error, OSError):
        return f"cannot be read: {error.strerror or error}"
    return " ".join(str(error).split())[:200] or type(error).__name__


def load_run(corpus_digest: str, run_id: str, root: str | os.PathLike[str] | None = None) -> SavedRun:
    """Reopen a saved run of the corpus with this ``corpus_hash``.

    Raises:
        RunError: a malformed hash or run id; no such run for this corpus; the files
            are unreadable or do not match (e.g. arrays missing).
    """
    folder = runs_dir(root) / _check_hash(corpus_digest) / _check_run_id(run_id)
    if not folder.is_dir():
        raise RunError(f"no saved run {run_id!r} for this corpus; pick one from the list of earlier runs")
    try:
        info = _info(_read_document(folder)["info"])
        details = _read_document(folder, RESULTS_FILE)
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as arrays:
            results = []
            for i, data in enumerate(details["results"]):
                answers = data["answers"]
                results.append(InstructionResult(
                    instruction=str(data["instruction"]),
                    answers=None if answers is None else ["" if a is None else str(a) for a in answers],
                    labels=arrays[f"labels_{i}"].astype(np.int64),
                    raw_labels=arrays[f"raw_labels_{i}"].astype(np.int64),
                    coords=arrays[f"coords_{i}"].astype(np.float32),
                    clusters=[_summary_from_json(s) for s in data["clusters"]],
                    quality=dict(data.get("quality") or {}),
                    timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
                ))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as error:
        raise RunError(f"saved run {run_id!r} cannot be read ({_problem(error)}); it may be from another version "
                       "or damaged: run the instructions again") from error
    if info.corpus_hash != corpus_digest:
        raise RunError(f"saved run {run_id!r} belongs to another corpus")
    for result in results:
        if result.labels.shape != (info.n_documents,) or result.coords.shape != (info.n_documents, 2):
            raise RunError(f"saved run {run_id!r} is damaged: arrays do not cover its {info.n_documents} documents")
    return SavedRun(info, results)
