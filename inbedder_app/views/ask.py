"""The ask view ("2 · Ask"): the instructions form; a submitted form runs them.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import GENERIC_INSTRUCTIONS, SAMPLE_INSTRUCTIONS, AppConfig
from inbedder_app.running import compute, ensure_analysis
from inbedder_app.state import Choices, Workspace
from inbedder_app.text import md_text
from inbedder_core.analysis import describe_estimate, estimate_stages, format_seconds, parse_instructions
from inbedder_core.corpus import (
    Corpus,
)


def render(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, is_sample: bool) -> None:
    st.subheader("2 · Ask")
    st.markdown("An **instruction** is a question asked of every document: InBedder embeds each document by "
                "its answer, so the map groups documents by what they answer, not by their topic.")
    examples = SAMPLE_INSTRUCTIONS if is_sample else GENERIC_INSTRUCTIONS
    st.caption("Examples: " + " · ".join(md_text(e) for e in examples))
    st.session_state.setdefault("instructions", examples[0])
    with st.form("ask_form"):
        text = st.text_area("Instructions, one per line", key="instructions", height=100)
        submitted = st.form_submit_button("Run", type="primary", key="run")
    if submitted:
        instructions = parse_instructions(text)
        if not instructions:
            st.warning("Type at least one instruction, such as: What does the customer need?")
            return
        slow = _slow_estimate(ws, corpus, choices, config, instructions)
        if not slow:
            st.session_state.pop("pending_run", None)
            compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")
            return
        st.session_state["pending_run"] = (instructions, slow)
    pending = st.session_state.get("pending_run")
    if pending:
        instructions, slow = pending
        st.warning(md_text(f"{slow}: over {format_seconds(config.estimate_threshold_s)}. Run it anyway, or load a "
                           "sample of the file or choose a GPU device first."))
        if st.button("Run anyway", key="run_anyway"):
            st.session_state.pop("pending_run", None)
            compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")


_ESTIMATE_FROM = 1000
"""Below this many document-instructions the app runs without an estimate (no model time is spent on it)."""


def _slow_estimate(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig,
                   instructions: list[str]) -> str:
    """The estimate line when the run would take longer than the confirmation threshold, else ``""``."""
    if len(corpus) * len(instructions) < _ESTIMATE_FROM:
        return ""
    analysis = ensure_analysis(ws, corpus, choices, config)
    stages = estimate_stages(analysis.encoder, corpus.texts, len(instructions),
                             naming_budget=float(getattr(analysis.labeler, "budget", 0.0) or 0.0))
    if stages["total"] <= config.estimate_threshold_s:
        return ""
    return describe_estimate(stages, len(corpus), choices.device)
