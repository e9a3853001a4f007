"""Living maps: a saved run kept with what placing needs and its edits, reopened with the edits
replayed, and new documents assigned to it (the CLI's ``--save-run`` / ``assign`` and the app's
"Add documents" and cluster edits go through here).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .analysis import summarize_clusters
from .edits import EditLog, apply_log, load_edits, save_edits
from .errors import RunError
from .export import export_table, map_columns
from .io.corpus import Corpus
from .placement import (
    Drift,
    Placement,
    PlacementError,
    check_fingerprint,
    drift,
    follow_edits,
    load_placement,
    place,
    placer_from_analysis,
    save_placement,
)
from .results import NOISE, ClusterName, InstructionResult
from .runs import RUN_FILE, RunInfo, SavedRun, load_run, runs_dir, save_run


def run_folder(corpus_digest: str, run_id: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``runs.save_run`` put a run: ``runs_dir(root) / corpus_digest / run_id``."""
    return runs_dir(root) / corpus_digest / run_id


def save_living_run(corpus: Corpus, results: Sequence[InstructionResult], analysis: Any, *, model: str,
                    settings: Mapping[str, Any], fingerprint: Mapping[str, Any],
                    root: str | os.PathLike[str] | None = None,
                    max_runs: int | None = None) -> tuple[RunInfo, Path, str | None]:
    """``runs.save_run`` plus the placement data of ``analysis`` (which computed ``results``).

    Returns ``(info, folder, note)``: ``note`` says why new documents cannot be placed into
    this run (e.g. too few documents for UMAP), ``None`` when they can.
    """
    info = save_run(corpus, results, model=model, settings=settings, fingerprint=fingerprint, root=root,
                    max_runs=max_runs)
    folder = run_folder(info.corpus_hash, info.run_id, root)
    try:
        save_placement(folder, [placer_from_analysis(analysis, r) for r in results], fingerprint)
    except PlacementError as error:
        return info, folder, str(error)
    return info, folder, None


def resolve_run_folder(path: str | os.PathLike[str]) -> Path:
    """A run folder (holding ``run.json``), or the newest run under a runs root (``--save-run DIR``).

    Raises:
        RunError: no saved run there.
    """
    path = Path(path)
    if (path / RUN_FILE).is_file():
        return path
    found = sorted(path.glob(f"*/*/{RUN_FILE}"), key=lambda p: p.parent.name) if path.is_dir() else []
    if not found:
        raise RunError(f"no saved run in '{path}'; pass the DIR given to 'inbedder cluster ... --save-run DIR' "
                       "or one run folder inside it")
    return found[-1].parent


@dataclass
class LivingRun:
    """A reopened run: the results as saved (``base``), its edit log, and where it lives."""

    folder: Path
    saved: SavedRun
    log: EditLog = field(default_factory=EditLog)

    @property
    def base(self) -> list[InstructionResult]:
        return self.saved.results

    @property
    def results(self) -> list[InstructionResult]:
        """The results with the edits replayed: what every view and export shows."""
        return apply_log(self.saved.results, self.log)

    def save_edits(self) -> None:
        save_edits(self.folder, self.log)


def open_run(path: str | os.PathLike[str]) -> LivingRun:
    """Reopen the run at ``path`` (see ``resolve_run_folder``) with its edits replayed.

    Raises:
        RunError: not a readable run; EditError: an edit log that does not fit it.
    """
    folder = resolve_run_folder(path)
    saved = load_run(folder.parent.name, folder.name, root=folder.parent.parent)
    run = LivingRun(folder, saved, load_edits(folder))
    run.results  # noqa: B018 - replay now, so a bad log is reported on opening
    return run


@dataclass
class Assignment:
    """New documents placed into a run, one entry per instruction, in the run's order.

    ``results`` hold the new documents' clusters in the edited labelling, with the run's
    names (summaries count the new documents only); ``placements`` their raw placement
    (strength, map coordinates); ``drifts`` the drift figure.
    """

    results: list[InstructionResult]
    placements: list[Placement]
    drifts: list[Drift]


def assign(run: LivingRun, corpus: Corpus, encoder: Any, *, batch_size: int | None = None,
           answers: bool | None = None, progress: Callable[[int, int], None] | None = None) -> Assignment:
    """Embed ``corpus`` (only its documents; the encoder's cache is used) and place it into ``run``.

    Raises:
        PlacementError: no placement data, or an encoder that differs from the run's (model,
            kind, pattern, dtype: both named).
    """
    fingerprint, placers = load_placement(run.folder)
    check_fingerprint(fingerprint, dataclasses.asdict(encoder.fingerprint))
    if [p.instruction for p in placers] != [r.instruction for r in run.base]:
        raise PlacementError(f"the placement data in '{run.folder}' does not match its instructions; run it again")
    results, placements, drifts = [], [], []
    for base, edited, placer in zip(run.base, run.results, placers, strict=True):
        encoding = encoder.encode(corpus.texts, base.instruction, batch_size=batch_size, answers=answers,
                                  progress=progress)
        placement = place(placer, encoding.embeddings)
        labels = follow_edits(base, edited, placement)
        names = [ClusterName(c.cluster_id, c.name, c.description, list(c.keywords), source=c.source)
                 for c in edited.clusters]
        by_id = {c.cluster_id: c for c in edited.clusters}
        summaries = [dataclasses.replace(s, generated_name=by_id[s.cluster_id].generated_name,
                                         interesting=by_id[s.cluster_id].interesting)
                     if s.cluster_id in by_id else s
                     for s in summarize_clusters(labels, names, encoding.answers)]
        figure = drift(placer, placement)
        results.append(InstructionResult(
            instruction=base.instruction, answers=encoding.answers, labels=labels,
            raw_labels=placement.raw_labels, coords=placement.coords, clusters=summaries,
            quality={"n_points": len(labels), "n_noise": int((labels == NOISE).sum()),
                     "poor_share": figure.new_share, "fitted_poor_share": figure.fitted_share,
                     "drifted": figure.drifted}))
        placements.append(placement)
        drifts.append(figure)
    return Assignment(results, placements, drifts)


def assignment_table(corpus: Corpus, assignment: Assignment) -> pd.DataFrame:
    """The labeled-CSV table of the new documents plus ``assigned_i`` (True) and
    ``placement_strength_i`` (HDBSCAN membership probability, or KMeans distance to the centroid),
    each after the instruction's last column (``y_i``, the placed map position)."""
    table = export_table(corpus, assignment.results)
    for index, placement in enumerate(assignment.placements, start=1):
        at = table.columns.get_loc(map_columns(index)[1]) + 1  # export_table always writes x_i, y_i
        table.insert(at, f"assigned_{index}", pd.Series(np.ones(len(table), dtype=bool), index=table.index))
        table.insert(at + 1, f"placement_strength_{index}", pd.Series(placement.strength, index=table.index))
    return table


def sizes_with_new(edited: InstructionResult, new: InstructionResult) -> pd.DataFrame:
    """Per cluster of the (edited) run: name, fitted documents, new documents, total; largest first."""
    fitted = {c.cluster_id: (c.name, c.size) for c in edited.clusters}
    ids, counts = np.unique(np.asarray(new.labels), return_counts=True)
    added = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    rows = [{"cluster": cid, "name": name, "fitted": size, "new": int(added.get(cid, 0)),
             "total": size + int(added.get(cid, 0))} for cid, (name, size) in fitted.items()]
    for cid in sorted(set(added) - set(fitted)):
        rows.append({"cluster": cid, "name": "Noise" if cid == NOISE else str(cid), "fitted": 0,
                     "new": int(added[cid]), "total": int(added[cid])})
    return pd.DataFrame(rows).sort_values(["total", "cluster"], ascending=[False, True]).reset_index(drop=True)


NEW_DOCUMENTS_NAME = "New documents"


def map_with_new(edited: InstructionResult, texts: Sequence[str], new: InstructionResult | None = None,
                 new_texts: Sequence[str] | None = None, *, show_new: bool = True) -> Any:
    """The run's map (``plots.cluster_map``) with the placed documents on top as black crosses.

    The added trace is named ``NEW_DOCUMENTS_NAME``; its ``customdata`` are the new documents'
    row numbers (so a lasso on the map still selects only fitted documents by their traces).
    """
    from . import plots
    from .analysis import names_of

    fig = plots.cluster_map(edited.coords, edited.labels, names_of(edited), texts, answers=edited.answers)
    if new is not None and new_texts is not None and show_new and len(new_texts):
        import plotly.graph_objects as go

        names = names_of(edited)
        hovers = [plots.plot_text(f"NEW · {names.get(int(c), 'Noise')}: {t}", 200)
                  for c, t in zip(new.labels, new_texts, strict=True)]
        fig.add_trace(go.Scattergl(
            x=new.coords[:, 0], y=new.coords[:, 1], mode="markers", name=f"{NEW_DOCUMENTS_NAME} ({len(new_texts):,})",
            marker={"symbol": "x", "size": 7, "color": "#111111"}, text=hovers,
            hovertemplate="%{text}<extra></extra>", legendrank=1))
    return fig
