"""Running the pipeline for a session: the ``Analysis`` for the chosen model and settings, a run with
its progress shown in ``st.status``, then saved (``runs``); re-clustering when settings change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from inbedder_app.answering import answer_encoder, engine_key
from inbedder_app.config import AppConfig
from inbedder_app.resources import shared_embedding_cache, shared_encoder
from inbedder_app.state import Choices, Workspace, view_columns
from inbedder_app.text import EmbeddingProgress, duration, md_text
from inbedder_core.analysis import (
    Analysis,
    settings_record,
)
from inbedder_core.answers.engine import AnswerPlan, llm_model_name
from inbedder_core.cache import CachedEncoder
from inbedder_core.corpus import (
    Corpus,
)
from inbedder_core.errors import InBedderError
from inbedder_core.living import save_living_run
from inbedder_core.name.endpoint import make_labeler
from inbedder_core.results import InstructionResult

# --------------------------------------------------------------------------- runs (saved)


def ensure_analysis(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig) -> Analysis:
    if not ws.model:
        raise InBedderError("no model chosen: pick one in the sidebar, or type a local model directory")
    engine = engine_key(ws.model, choices, config)
    if ws.analysis is None or ws.analysis_device != engine:
        if llm_model_name(ws.model) is None:
            encoder = shared_encoder(ws.model, choices.device)
            cached = CachedEncoder(encoder, shared_embedding_cache(str(config.cache_dir)))
        else:
            cached = answer_encoder(ws.model, choices, config)
        ws.analysis = Analysis(corpus, cached, choices.settings)
        ws.analysis_device = engine
        ws.fingerprint = dict(dataclasses.asdict(cached.fingerprint))
        ws.labeler_naming = None
    ws.analysis.with_settings(**dataclasses.asdict(choices.settings))
    if ws.labeler_naming != choices.naming:  # the same labeller object lets Analysis reuse names it already has
        ws.analysis.labeler, ws.naming_note = make_labeler(choices.naming, choices.llm_api_key,
                                                                   config.llm_base_url, config.api_key)
        ws.labeler_naming = choices.naming
    if hasattr(ws.analysis.labeler, "budget"):
        ws.analysis.labeler.budget = choices.llm_budget or config.llm_budget
    return ws.analysis


def answer_plans(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig,
                 instructions: Sequence[str]) -> list[AnswerPlan]:
    """What running ``instructions`` would send to the chat model (nothing for other models); sends nothing."""
    if llm_model_name(ws.model) is None:
        return []
    encoder = ensure_analysis(ws, corpus, choices, config).encoder
    return [encoder.plan(corpus.texts, instruction) for instruction in instructions]


def compute(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, instructions: Sequence[str],
            heading: str, where: Any = None) -> None:
    """Run ``instructions`` (memoised stages make repeats instant), then save the run (with the label
    and colour columns in view, ``view_columns``, so that reopening it restores them).

    ``where``: the container that shows the progress (default: here in the page).
    """
    started = time.monotonic()
    analysis = ensure_analysis(ws, corpus, choices, config)
    results: dict[str, InstructionResult] = {}
    with where if where is not None else contextlib.nullcontext(), st.status(heading, expanded=True) as status:
        bar = st.progress(0.0, text="Starting…")
        if analysis.shares_prefix(instructions):  # a causal model: each document's prefix run once for all
            analysis.embed_all(instructions, progress=EmbeddingProgress(bar, f"{len(instructions)} instructions"))
        for number, instruction in enumerate(instructions, start=1):
            label = f"Instruction {number} of {len(instructions)}"
            st.text(f"{label}: {instruction}")
            result = analysis.run(instruction, progress=EmbeddingProgress(bar, label),
                                  stage=lambda message, label=label: st.text(f"  {label}: {message}"))
            results[instruction] = result
        bar.progress(1.0, text=f"{len(corpus):,} documents, {len(instructions)} instruction(s)")
        failed = sum(1 for r in results.values() if r.quality.get("naming_errors"))
        naming = (f"names by keywords where the LLM failed ({failed} of {len(results)} instruction(s); "
                  "see Naming problems)" if failed else f"names by {md_text(ws.naming_note)}")
        status.update(label=f"Done in {duration(time.monotonic() - started)}: {len(instructions)} instruction(s), "
                            f"{naming}", state="complete", expanded=False)
    ws.results, ws.settings, ws.naming = results, choices.settings, choices.naming
    info, _, _ = save_living_run(corpus, list(results.values()), analysis, model=ws.model,  # + placement data
                                 settings=settings_record(choices.settings, len(corpus), naming_mode=choices.naming[0],
                                                          llm_model=choices.naming[2], labeler=ws.naming_note,
                                                          device=choices.device, view=view_columns()),
                                 fingerprint=ws.fingerprint,
                                 max_runs=config.max_runs)
    ws.run_id = info.run_id


def sync_settings(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, where: Any = None) -> None:
    """Re-cluster (and re-name) the current maps when the applied settings changed; embeddings are reused.
    ``where``: the container for the progress (the app puts it under the sidebar's Apply buttons)."""
    if ws.results and (ws.settings != choices.settings or ws.naming != choices.naming):
        compute(ws, corpus, choices, config, list(ws.results),
                "Re-clustering with the new settings (embeddings are reused)…", where=where)
