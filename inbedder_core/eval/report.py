"""Evaluation results and their report: ``TaskResult``, ``EvaluationReport`` (JSON-ready) and
``format_report``, the text table the CLI prints.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EvaluationError
from .tasks import AWARENESS_TASKS, PUBLISHED_AVG_SCORES, ROBUSTNESS_KINDS


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
