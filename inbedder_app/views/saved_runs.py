"""The saved-runs view ("Earlier runs on this corpus"): lists the runs saved for this corpus and
reopens one into the session, with the sidebar set to its settings, the questions box to its
questions, and the gold, colour and hover columns it was run with.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import LLM_ANSWERS, LOCAL_MODEL, NAMING_MODES, AppConfig
from inbedder_app.state import Workspace, restore_view_columns, short_key
from inbedder_app.text import md_text
from inbedder_app.views.sidebar import model_options
from inbedder_core import runs
from inbedder_core.analysis import (
    settings_from_record,
)
from inbedder_core.errors import InBedderError
from inbedder_core.name.endpoint import naming_choice


def _reopen(digest: str, run_id: str, config: AppConfig) -> None:
    """Button callback: restore a saved run into this session and set the widgets to its settings."""
    try:
        saved = runs.load_run(digest, run_id)
    except InBedderError as error:
        st.session_state["reopen_error"] = str(error)
        return
    recorded = saved.info.settings
    settings = settings_from_record(recorded)
    if saved.info.model in model_options(config):
        st.session_state["model_choice"] = saved.info.model
    elif saved.info.model.startswith("llm:"):
        st.session_state["model_choice"] = LLM_ANSWERS
        st.session_state["answer_llm_model"] = saved.info.model.removeprefix("llm:")
    else:
        st.session_state["model_choice"] = LOCAL_MODEL
        st.session_state["model_path"] = saved.info.model
    st.session_state["algorithm"] = "KMeans" if settings.k else "HDBSCAN"
    if settings.k:
        st.session_state["k"] = settings.k
    st.session_state["min_cluster_size"] = settings.min_cluster_size or 0
    st.session_state["n_neighbors"] = settings.n_neighbors
    st.session_state["assign_noise"] = settings.assign_noise
    st.session_state["seed"] = settings.random_state
    if recorded.get("naming_mode") in NAMING_MODES:
        st.session_state["naming"] = recorded["naming_mode"]
    if recorded.get("llm_model"):
        st.session_state["llm_model"] = recorded["llm_model"]
    naming = naming_choice(str(st.session_state.get("naming", NAMING_MODES[1])),
                           str(st.session_state.get("llm_base_url", "")), str(st.session_state.get("llm_model", "")),
                           str(st.session_state.get("llm_api_key", "")), config.llm_model)
    st.session_state["workspace"] = Workspace(
        corpus_hash=digest, model=saved.info.model, results={r.instruction: r for r in saved.results},
        settings=settings, naming=naming, naming_note=str(recorded.get("labeler", "")),
        fingerprint=dict(saved.info.fingerprint), run_id=saved.info.run_id)
    st.session_state["instructions"] = st.session_state["kept::instructions"] = "\n".join(saved.info.instructions)
    restore_view_columns(recorded.get("view"))


def render(digest: str, config: AppConfig, shown: str | None) -> None:
    saved = runs.list_runs(digest)
    damaged = runs.damaged_runs(digest)
    if "reopen_error" in st.session_state:
        st.error(md_text(st.session_state.pop("reopen_error")))
    with st.expander(f"Earlier runs on this corpus ({len(saved)})", expanded=False):
        st.caption("Runs are saved on this machine and listed to anyone who loads the same documents "
                   "(runs are keyed by the corpus content, not by user).")
        for bad in damaged:
            st.warning(md_text(f"Saved run {bad.run_id} is damaged and cannot be reopened: {bad.problem}. "
                               "Run its instructions again; the folder can be deleted."))
        if not saved:
            st.text("No saved runs for this corpus yet.")
            return
        by_id = {info.run_id: info for info in saved}
        if shown in by_id:
            st.text(f"Shown below: {by_id[shown].describe()}")
        run_id = st.selectbox("Saved run", list(by_id), format_func=lambda r: by_id[r].describe(),
                              key=f"saved_run_{short_key(*by_id)}")  # a new list is a new box: no stale choice
        st.button("Reopen this run", key="reopen_run", on_click=_reopen, args=(digest, run_id, config))
