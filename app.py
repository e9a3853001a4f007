"""InBedder Explorer: ask a corpus a question and see it clustered by the answer.

Run it with ``streamlit run app.py`` (or ``inbedder app``). It opens on the bundled
BANKING77 sample, ready to run.

This file composes, and nothing else (see docs/architecture.md): it reads the settings
once per script run (``inbedder_app.config.read_config``), lays out the page, calls one
view per section, and holds the one error boundary (every ``InBedderError`` becomes
``st.error``). The views live in ``inbedder_app/views/`` (one module each, each with a
``render``); only the selected result view is rendered. All computation lives in
``inbedder_core``. To add a result view: a module in ``inbedder_app/views/`` and one
entry in ``RESULT_VIEWS`` below.

State: models and the embedding cache are shared through ``st.cache_resource``
(``inbedder_app.resources``; they hold no user data); everything else a user uploads or
computes lives in their own ``st.session_state`` (``inbedder_app.state``). Saved runs are
on disk, keyed by corpus content (``inbedder_core.runs``).

User text (documents, answers, cluster names, file and column names, instructions) is
shown with ``st.text``, ``st.dataframe`` or widget options, which never interpret it, or
escaped with ``md_text`` where Streamlit renders Markdown; figures escape it in ``plots``.

Secrets: the server's API key is read in ``read_config`` and handed to the labeller, never
displayed, and only ever sent to the server-configured endpoint (``OPENAI_BASE_URL`` or
secrets, else OpenAI's); the routing rules are ``inbedder_core.name.endpoint``. An analyst
who types another endpoint must type their own key too (kept in their session only).

Environment: ``INBEDDER_MODEL`` (default model), ``INBEDDER_SAMPLE_ROWS`` (use an even
subset of the sample), ``INBEDDER_MAX_BYTES`` / ``INBEDDER_MAX_ROWS`` (upload caps),
``INBEDDER_CACHE_DIR`` (embedding cache and saved runs), ``INBEDDER_MAX_RUNS`` (saved runs
kept per corpus), ``INBEDDER_WARM_UP=0`` (skip loading the opening model and compiling UMAP
at start), ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` / ``INBEDDER_LLM_MODEL`` (cluster naming;
the key and the endpoint may also come from ``st.secrets``).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from inbedder_app import editing
from inbedder_app.config import DEVICES, AppConfig, read_config
from inbedder_app.resources import start_warm_up
from inbedder_app.running import sync_settings
from inbedder_app.state import Workspace, workspace_for
from inbedder_app.text import column_hint, md_text
from inbedder_app.views import ask, compare, corpus, edit, explore, export, hierarchy, saved_runs, sidebar, stability
from inbedder_core.answers.engine import llm_model_name
from inbedder_core.errors import InBedderError
from inbedder_core.io.corpus import Corpus

RESULT_VIEWS: dict[str, Callable[[Workspace, Corpus, str | None], None]] = {
    "Explore": explore.render,
    "Compare": compare.render,
    "Export": export.render,
    "Edit clusters": edit.render,  # issue 14: edits, undo/redo, add documents
    "Hierarchy": hierarchy.render,  # issue 14: cluster tree, cut, merge suggestions
    "Stability": stability.render,  # issue 13
}


def render_results(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    """"3 · Explore": the view picked in the radio, or a note until there is a run."""
    st.subheader("3 · Explore")
    if not ws.results:
        others = [model for digest, model in st.session_state.get("workspaces", {}) if digest == ws.corpus_hash]
        kept_note = (f" The maps made with {', '.join(others)} are kept: choose that model again in the sidebar "
                     "to see them." if others else "")
        st.info("Run an instruction to see the corpus clustered by its answers." + md_text(kept_note))
        return
    view = st.radio("View", list(RESULT_VIEWS), key="view", horizontal=True, label_visibility="collapsed")
    RESULT_VIEWS[view](ws, corpus, gold)


def _preload(config: AppConfig) -> tuple[str, str] | None:
    """The (model, device) a new session opens with, for the warm-up to load before the first Run."""
    model = sidebar.opening_model(config)
    return None if llm_model_name(model) is not None else (model, DEVICES[0])


def main() -> None:
    st.set_page_config(page_title="InBedder Explorer", layout="wide")
    st.title("InBedder Explorer")
    st.caption("Cluster a corpus by the answer to a question (InBedder instruction-following embeddings, "
               "Peng et al., ACL 2024).")
    try:
        config = read_config()
        warm = start_warm_up(_preload(config)) if config.warm_up else None
        choices = sidebar.render(config)
        recluster_box = st.sidebar.container()  # a re-clustering's progress shows under the Apply buttons
        loaded, digest, gold, is_sample = corpus.render(config)
        saved_runs_box = st.container()  # filled after the run below, so a run saved now is listed now
        ws = workspace_for(digest, choices)
        try:
            if warm is not None:
                warm.torch_ready.wait(timeout=120)
            sync_settings(ws, loaded, choices, config, where=recluster_box)
            ask.render(ws, loaded, choices, config, is_sample)
        finally:
            with saved_runs_box:
                saved_runs.render(digest, config, ws.run_id)
        editing.sync(ws)  # the shown run's edits (issue 14)
        render_results(ws, loaded, gold)
    except InBedderError as error:
        st.error(md_text(column_hint(error)))


if __name__ == "__main__":
    main()
