"""Training data: ``QAExample`` records read from JSONL(.gz) files, with each source's attribution
(``sources.json`` or ``SOURCE.txt`` beside a file) for the model card.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainingError


@dataclass(frozen=True)
class QAExample:
    """One training example: the answer to ``question`` about ``context`` (which may be empty)."""

    context: str
    question: str
    answer: str
    source: str = "unknown"
    group: str = ""
    """``kind:answer`` for the contrastive term (same question kind, same gold answer); empty: none."""


@dataclass
class DataSource:
    """Where a group of examples comes from, for the model card's attribution."""

    name: str
    license: str = "unknown"
    repository: str = ""
    commit: str = ""
    note: str = ""
    n_examples: int = 0


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _parse_source_txt(path: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("repo", "license", "commit", "notes") and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def _file_sources(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str] | None]:
    """Attribution found beside a data file: ``sources.json`` (per source) and ``SOURCE.txt`` (whole file)."""
    per_source: dict[str, dict[str, str]] = {}
    listing = path.parent / "sources.json"
    if listing.exists():
        try:
            loaded = json.loads(listing.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TrainingError(f"cannot read {listing}: {error}; it must map source names to "
                                "{'license': ..., 'repository': ...}") from error
        per_source = {str(k): dict(v) for k, v in loaded.items() if isinstance(v, dict)}
    whole = _parse_source_txt(path.parent / "SOURCE.txt") if (path.parent / "SOURCE.txt").exists() else None
    return per_source, whole


def read_examples(paths: Sequence[str | os.PathLike[str]], *,
                  max_examples: int | None = None) -> tuple[list[QAExample], list[DataSource]]:
    """Read ``context, question, answer[, source]`` records from JSONL or JSONL.gz files.

    Records without a question or an answer are skipped (``context`` may be empty: closed-book
    questions). Attribution is read from ``sources.json`` or ``SOURCE.txt`` beside each file.

    Returns:
        ``(examples, sources)``: examples in file order; one ``DataSource`` per source name
        with its example count, license and repository ("unknown" when nothing says).

    Raises:
        TrainingError: a file is missing, is not JSON lines, or holds no usable example.
    """
    examples: list[QAExample] = []
    sources: dict[str, DataSource] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise TrainingError(f"training data file '{raw}' does not exist; pass JSONL(.gz) files of "
                                "{'context', 'question', 'answer'} records with --data")
        per_source, whole = _file_sources(path)
        before = len(examples)
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise TrainingError(f"{path}: line {number} is not JSON ({error.msg}); expected one "
                                        "{'context', 'question', 'answer'} object per line") from error
                if not isinstance(record, dict):
                    raise TrainingError(f"{path}: line {number} is not a JSON object")
                question = str(record.get("question") or "").strip()
                answer = str(record.get("answer") or "").strip()
                if not question or not answer:
                    continue
                name = str(record.get("source") or path.parent.name or path.stem)
                examples.append(QAExample(str(record.get("context") or ""), question, answer, name,
                                          str(record.get("group") or "")))
                if name not in sources:
                    info = per_source.get(name) or {}
                    fallback = whole or {}
                    sources[name] = DataSource(
                        name, license=str(info.get("license") or fallback.get("license") or "unknown"),
                        repository=str(info.get("repository") or fallback.get("repo") or ""),
                        commit=str(info.get("commit") or fallback.get("commit") or ""),
                        note=str(info.get("note") or ""))
                sources[name].n_examples += 1
                if max_examples is not None and len(examples) >= max_examples:
                    break
        if len(examples) == before:
            raise TrainingError(f"{path} holds no record with both a 'question' and an 'answer'")
        if max_examples is not None and len(examples) >= max_examples:
            break
    return examples, sorted(sources.values(), key=lambda s: -s.n_examples)


def iter_jsonl(path: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """Records of a JSONL(.gz) file (helper for data-mix scripts)."""
    with _open_text(Path(path)) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
