"""The ask view ("2 · Ask"): the instructions form; a submitted form runs them. With an llm:NAME model, the
requests and tokens it will send are shown first, and nothing is sent until the analyst confirms.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import GENERIC_INSTRUCTIONS, SAMPLE_INSTRUCTIONS, AppConfig
from inbedder_app.running import answer_plans, compute
from inbedder_app.state import Choices, Workspace
from inbedder_app.text import md_text
from inbedder_core.analysis import parse_instructions
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
        st.session_state.pop(PENDING, None)
        instructions = parse_instructions(text)
        if not instructions:
            st.warning("Type at least one instruction, such as: What does the customer need?")
            return
        if any(plan.n_requests for plan in answer_plans(ws, corpus, choices, config, instructions)):
            st.session_state[PENDING] = (ws.model, instructions)  # confirmed below before anything is sent
        else:
            compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")
    pending = st.session_state.get(PENDING)
    if pending is not None and pending[0] == ws.model:
        _confirm(ws, corpus, choices, config, pending[1])


PENDING = "llm_answers_pending"


def _confirm(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, instructions: list[str]) -> None:
    """What an llm:NAME run will send, with a button that sends it and one that cancels."""
    plans = answer_plans(ws, corpus, choices, config, instructions)
    requests = sum(plan.n_requests for plan in plans)
    lines = [f"Instruction {n}: {plan.describe()}" for n, plan in enumerate(plans, start=1)]
    box = st.empty()  # cleared once confirmed, so the notice does not stay above the run it started
    with box.container():
        st.info("Before anything is sent:\n\n" + "\n\n".join(md_text(line) for line in lines))
        send, cancel = st.columns(2)
        confirmed = send.button(f"Send {requests:,} request(s) and run", type="primary", key="confirm_llm_answers")
        cancelled = cancel.button("Cancel", key="cancel_llm_answers")
    if confirmed:
        st.session_state.pop(PENDING, None)
        box.empty()
        compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")
    elif cancelled:
        st.session_state.pop(PENDING, None)
        st.rerun()
