"""One session's state: the sidebar ``Choices``, the ``Workspace`` of results kept in
``st.session_state``, and widget helpers whose values survive views that are not drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from inbedder_core.analysis import (
    Analysis,
    AnalysisSettings,
)
from inbedder_core.name.endpoint import key_tag
from inbedder_core.results import InstructionResult


@dataclass(frozen=True)
class Choices:
    """What the analyst picked in the sidebar."""

    model: str
    device: str
    settings: AnalysisSettings
    naming: tuple[str, str, str, str]  # (mode, typed base URL, LLM model, key_tag of the analyst's own key)
    llm_api_key: str = field(default="", repr=False)  # the analyst's own key, for a custom endpoint
    llm_batch: int = 10  # documents per request of an llm:NAME model
    llm_budget: float | None = None  # seconds for all naming requests of one question (None: the default)


@dataclass
class Workspace:
    """One session's results on one corpus with one model (kept in ``st.session_state``)."""

    corpus_hash: str
    model: str
    results: dict[str, InstructionResult] = field(default_factory=dict)
    settings: AnalysisSettings | None = None
    naming: tuple[str, str, str, str] | None = None
    naming_note: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    analysis: Analysis | None = None
    analysis_device: str | None = None
    labeler_naming: tuple[str, str, str, str] | None = None  # the naming settings ``analysis.labeler`` was made for
    run_id: str | None = None
    derived: dict[Any, Any] = field(default_factory=dict)  # per_run: figures of the results of ``derived_run``
    derived_run: str | None = None


def per_run(ws: Workspace, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per run: results change only with a new ``ws.run_id`` (a run, a re-cluster,
    a reopened run), so comparisons and scores are not recomputed on every click."""
    if ws.derived_run != ws.run_id:
        ws.derived, ws.derived_run = {}, ws.run_id
    if key not in ws.derived:
        ws.derived[key] = compute()
    return ws.derived[key]


def kept(widget: Callable[..., Any], label: str, *args: Any, key: str, options: Sequence[Any] | None = None,
         **kwargs: Any) -> Any:
    """``widget(label, *args, key=key, **kwargs)`` whose value survives views that do not render it.

    Streamlit drops the state of a widget that a run does not draw (here: the views not
    shown); a shadow copy puts the analyst's choice back when the view returns, if it is
    still one of ``options``.
    """
    shadow = f"kept::{key}"
    restorable = st.session_state.get(shadow) is not None  # a selectbox set to None shows an empty box,
    # even where None is an option ("Cluster", "All clusters"): those are the defaults anyway, so not restored
    if key not in st.session_state and restorable and (options is None or _allowed(st.session_state[shadow], options)):
        st.session_state[key] = st.session_state[shadow]
        kwargs.pop("index", None)  # the restored value is the default
    value = widget(label, *args, key=key, **kwargs)
    st.session_state[shadow] = value
    return value


def _allowed(value: Any, options: Sequence[Any]) -> bool:
    """Whether a kept value is still valid: one of ``options`` (each of them, for a multiselect's list)."""
    return all(v in options for v in value) if isinstance(value, list) else value in options


short_key = key_tag  # widget keys: a short digest of what the widget depends on


# --------------------------------------------------------------------------- running


def workspace_for(digest: str, choices: Choices) -> Workspace:
    """This session's workspace for the corpus and model; switching back to a model finds its maps again."""
    # Duck-typed on purpose: the script (and so the Workspace class) is re-executed on every rerun.
    ws = st.session_state.get("workspace")
    if getattr(ws, "corpus_hash", None) != digest or getattr(ws, "model", None) != choices.model:
        kept_spaces: dict[tuple[str, str], Any] = st.session_state.setdefault("workspaces", {})
        if ws is not None and getattr(ws, "results", None):
            kept_spaces[(ws.corpus_hash, ws.model)] = ws
            while len(kept_spaces) > 3:  # each holds its embeddings: keep the last few only
                kept_spaces.pop(next(iter(kept_spaces)))
        ws = kept_spaces.pop((digest, choices.model), None) or Workspace(corpus_hash=digest, model=choices.model)
        st.session_state["workspace"] = ws
    return ws


GOLD_IN_VIEW = "gold_in_view"  # the gold column chosen in "1 · Corpus", for runs to record
RESTORE_GOLD = "restore_gold"  # a reopened run's gold column, for the corpus view to put back
VIEW_WIDGETS = {"colour_by": "colour_by", "hover_columns": "hover_columns"}  # record name -> widget key


def view_columns() -> dict[str, Any]:
    """The columns the analyst is looking through: gold, colour and hover columns (saved with a run)."""
    out: dict[str, Any] = {"gold": st.session_state.get(GOLD_IN_VIEW)}
    for name, key in VIEW_WIDGETS.items():
        out[name] = st.session_state.get(key, st.session_state.get(f"kept::{key}"))
    return out


def restore_view_columns(recorded: Any) -> None:
    """Put back the view columns a saved run recorded (callback time: before any widget is drawn).

    The gold column is applied by the corpus view (``RESTORE_GOLD``), where its box is drawn; the
    colour and hover columns are set where their widgets read them (``kept`` checks they still exist).
    """
    if not isinstance(recorded, dict):
        return
    st.session_state[RESTORE_GOLD] = recorded.get("gold")
    for name, key in VIEW_WIDGETS.items():
        value = recorded.get(name)
        if name == "hover_columns":
            value = list(value or [])
        st.session_state.pop(key, None)  # the kept copy below is restored when the widget is drawn
        st.session_state[f"kept::{key}"] = value


def _bump(counter_key: str) -> None:
    """Widget callback: a new key for a widget whose selection must be cleared (the key embeds the counter)."""
    st.session_state[counter_key] = st.session_state.get(counter_key, 0) + 1
