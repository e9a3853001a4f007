"""The ask view ("2 · Ask"): example questions (a click adds one to the box) and the instructions
form; a submitted form runs them.

The questions box follows one rule on every corpus (the sample or any upload): it starts with the
first example question, then keeps whatever the analyst typed or ran, whatever is uploaded next; only
a click on an example (which adds that question) or reopening a saved run (which puts back its
questions) changes it.

With an llm:NAME model, the requests and tokens it will send are shown first, and nothing is sent until
the analyst confirms.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import GENERIC_INSTRUCTIONS, SAMPLE_INSTRUCTIONS, AppConfig
from inbedder_app.running import answer_plans, compute, ensure_analysis
from inbedder_app.state import Choices, Workspace
from inbedder_app.text import md_text
from inbedder_core.analysis import describe_estimate, estimate_stages, format_seconds, parse_instructions
from inbedder_core.corpus import (
    Corpus,
)

BOX = "instructions"
KEPT_BOX = "kept::instructions"  # survives runs where the box is not drawn (an unreadable upload)


def _add_example(question: str) -> None:
    """Button callback: add ``question`` as a line of the box (once)."""
    lines = [line for line in str(st.session_state.get(BOX, "")).splitlines() if line.strip()]
    if question not in (line.strip() for line in lines):
        lines.append(question)
    st.session_state[BOX] = st.session_state[KEPT_BOX] = "\n".join(lines)


def render(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, is_sample: bool) -> None:
    st.subheader("2 · Ask")
    st.markdown("An **instruction** is a question asked of every document: InBedder embeds each document by "
                "its answer, so the map groups documents by what they answer, not by their topic.")
    examples = SAMPLE_INSTRUCTIONS if is_sample else GENERIC_INSTRUCTIONS
    if BOX not in st.session_state:
        st.session_state[BOX] = st.session_state.get(KEPT_BOX, examples[0])
    st.caption("Examples (click to add one to the box):")
    buttons = st.columns(len(examples))
    for number, (column, example) in enumerate(zip(buttons, examples, strict=True)):
        column.button(example, key=f"example_{number}", on_click=_add_example, args=(example,),
                      width="stretch")
    with st.form("ask_form"):
        text = st.text_area("Instructions, one per line", key=BOX, height=100)
        submitted = st.form_submit_button("Run", type="primary", key="run")
    st.session_state[KEPT_BOX] = text
    if submitted:
        st.session_state.pop(PENDING, None)
        instructions = parse_instructions(text)
        if not instructions:
            st.warning("Type at least one instruction, such as: What does the customer need?")
            return
        if any(plan.n_requests for plan in answer_plans(ws, corpus, choices, config, instructions)):
            st.session_state[PENDING] = (ws.model, instructions)  # confirmed below before anything is sent
        else:
            slow = _slow_estimate(ws, corpus, choices, config, instructions)
            st.session_state.pop("pending_run", None)
            if not slow:
                compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")
            else:
                st.session_state["pending_run"] = (instructions, slow)
    pending = st.session_state.get(PENDING)
    if pending is not None and pending[0] == ws.model:
        _confirm(ws, corpus, choices, config, pending[1])
    pending_run = st.session_state.get("pending_run")
    if pending_run:
        instructions, slow = pending_run
        st.warning(md_text(f"{slow}: over {format_seconds(config.estimate_threshold_s)}. Run it anyway, or load a "
                           "sample of the file or choose a GPU device first."))
        if st.button("Run anyway", key="run_anyway"):
            st.session_state.pop("pending_run", None)
            compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")


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


_ESTIMATE_FROM = 1000
"""Below this many document-instructions the app runs without an estimate (no model time is spent on it)."""


def _slow_estimate(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig,
                   instructions: list[str]) -> str:
    """The estimate line when the run would take longer than the confirmation threshold, else ``""``."""
    if len(corpus) * len(instructions) < _ESTIMATE_FROM:
        return ""
    analysis = ensure_analysis(ws, corpus, choices, config)
    stages = estimate_stages(analysis.encoder, corpus.texts, len(instructions),
                             naming_budget=float(getattr(analysis.labeler, "budget", 0.0) or 0.0),
                             fitted=analysis.settings.fit_sample(len(corpus)))
    if stages["total"] <= config.estimate_threshold_s:
        return ""
    return describe_estimate(stages, len(corpus), choices.device)
