"""The paper's published tasks and the built-in BANKING77 ones: ``load_task`` by name, fetched from
the Hugging Face hub (or a local dataset folder) with the paper's instructions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EvaluationError
from .tasks import (
    BUILTIN_TASKS,
    ROBUSTNESS_KINDS,
    ClusteringSet,
    Task,
    TripletSet,
    _read_local,
    _subset_options,
    clustering_from_frame,
    sts_from_frame,
    triplets_from_frame,
)

BANKING77_INSTRUCTION = "What does the customer need?"
_BANKING77_CSV = Path(__file__).resolve().parents[2] / "sample_data" / "banking77.csv"


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
