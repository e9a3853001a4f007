"""The ask view ("2 · Ask"): example questions (a click adds one to the box) and the instructions
form; a submitted form runs them.

The questions box follows one rule on every corpus (the sample or any upload): it starts with the
first example question, then keeps whatever the analyst typed or ran, whatever is uploaded next; only
a click on an example (which adds that question) or reopening a saved run (which puts back its
questions) changes it.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import GENERIC_INSTRUCTIONS, SAMPLE_INSTRUCTIONS, AppConfig
from inbedder_app.running import compute
from inbedder_app.state import Choices, Workspace
from inbedder_core.analysis import parse_instructions
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
        instructions = parse_instructions(text)
        if not instructions:
            st.warning("Type at least one instruction, such as: What does the customer need?")
            return
        compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")
