"""A session's living run (issue 14): the saved run behind the shown results, its edit log (undo/redo),
the edited results put into the workspace, and the documents added to it.

The log lives in ``st.session_state["living_runs"]`` for the run shown (``ws.run_id``) and is written
to the run's folder after every change, so a reopened run replays it. A new run (re-clustering)
starts a new, empty log; the old run keeps its edits on disk.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from inbedder_app.state import Workspace
from inbedder_core.edits import Edit
from inbedder_core.errors import InBedderError
from inbedder_core.living import LivingRun, open_run, run_folder
from inbedder_core.placement import load_placement

RUNS_KEY = "living_runs"
APPLIED_KEY = "living_applied"


def living_run(ws: Workspace) -> LivingRun | None:
    """The saved run shown in ``ws`` (``None`` until a run is saved, or when its folder is gone)."""
    if not ws.run_id or not ws.results:
        return None
    kept: dict[str, LivingRun] = st.session_state.setdefault(RUNS_KEY, {})
    run = kept.get(ws.run_id)
    if run is None:
        folder = run_folder(ws.corpus_hash, ws.run_id)
        if not folder.is_dir():
            return None
        run = open_run(folder)
        kept.clear()  # one run per session: the shown one
        kept[ws.run_id] = run
    return run


def sync(ws: Workspace) -> None:
    """Put the edited results of the shown run into ``ws.results`` (after a reopen, an edit, an undo)."""
    try:
        run = living_run(ws)
    except InBedderError as error:
        st.warning(f"The edits of this run cannot be replayed: {error}")
        return
    if run is None:
        return
    applied = st.session_state.setdefault(APPLIED_KEY, {})
    state = (ws.run_id, tuple(map(repr, run.log.edits)))
    earlier = applied.get("state")
    if earlier != state:
        if run.log.edits or (earlier and earlier[0] == ws.run_id and earlier[1]):  # unedited: results as they are
            ws.results = {r.instruction: r for r in run.results}
            ws.derived_run = None  # figures and comparisons of the earlier results are stale
        applied["state"] = state


def do(ws: Workspace, run: LivingRun, edit: Edit) -> None:
    run.log.do(edit)
    _saved(ws, run)


def undo(ws: Workspace, run: LivingRun) -> None:
    run.log.undo()
    _saved(ws, run)


def redo(ws: Workspace, run: LivingRun) -> None:
    run.log.redo()
    _saved(ws, run)


def _saved(ws: Workspace, run: LivingRun) -> None:
    run.save_edits()
    sync(ws)


def clusterer_of(run: LivingRun, number: int) -> Any:
    """The fitted HDBSCAN of instruction ``number`` (0-based) of the run, for its condensed tree;
    ``None`` for KMeans or a run without placement data. Loaded (hash-checked) once per run."""
    kept = st.session_state.setdefault("living_clusterers", {})
    if run.folder not in kept:
        try:
            kept.clear()
            kept[run.folder] = [p.clusterer for p in load_placement(run.folder)[1]]
        except InBedderError:
            kept[run.folder] = []
    models = kept[run.folder]
    return models[number] if number < len(models) else None


def edits_of(ws: Workspace) -> list[dict[str, Any]]:
    """The edits replayed on the shown results, for the run report."""
    run = st.session_state.get(RUNS_KEY, {}).get(ws.run_id)
    return run.log.as_json() if run is not None else []
