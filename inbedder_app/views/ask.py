"""The ask view ("2 · Ask"): the instructions form; a submitted form runs them.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import GENERIC_INSTRUCTIONS, SAMPLE_INSTRUCTIONS, AppConfig
from inbedder_app.running import compute
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
        instructions = parse_instructions(text)
        if not instructions:
            st.warning("Type at least one instruction, such as: What does the customer need?")
            return
        compute(ws, corpus, choices, config, instructions, f"Running {len(instructions)} instruction(s)…")
