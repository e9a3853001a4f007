"""InBedder Explorer: ask a corpus a question and see it clustered by the answer.

Run it with ``streamlit run app.py`` (or ``inbedder app``). It opens on the bundled
BANKING77 sample, ready to run.

Shape (see STYLE.md): settings are read once per script run in ``read_config``; one
error boundary in ``main`` turns every ``InBedderError`` into ``st.error``; one render
function per view, and only the selected view is rendered. All computation lives in
``inbedder_core`` (``Analysis`` for the pipeline, ``plots`` for figures, ``runs`` for
persistence); this file wires widgets to it.

State: models and the embedding cache are shared through ``st.cache_resource`` (they
hold no user data); everything else a user uploads or computes lives in their own
``st.session_state``. Saved runs are on disk, keyed by corpus content (see ``runs``).

User text (documents, answers, cluster names, file and column names, instructions)
is shown with ``st.text``, ``st.dataframe`` or widget options, which never interpret
it, or escaped with ``md_text`` where Streamlit renders Markdown; figures escape it in
``plots``.

Secrets: the server's API key is read here and handed to the labeller, never displayed,
and it is only ever sent to the server-configured endpoint (``OPENAI_BASE_URL`` or
secrets, else OpenAI's). An analyst who types another endpoint must type their own key
too (a password field, kept in their session only), and only that key goes there;
without one, clusters get keyword names. The configured endpoint is shown only scrubbed (``display_url``: no user name,
password, query string or fragment) and is never put into a widget's value.

Environment: ``INBEDDER_MODEL`` (default model), ``INBEDDER_SAMPLE_ROWS`` (use an even
subset of the sample), ``INBEDDER_MAX_BYTES`` / ``INBEDDER_MAX_ROWS`` (upload caps),
``INBEDDER_CACHE_DIR`` (embedding cache and saved runs), ``INBEDDER_MAX_RUNS`` (saved runs
kept per corpus), ``INBEDDER_WARM_UP=0`` (skip compiling UMAP at start), ``OPENAI_API_KEY`` /
``OPENAI_BASE_URL`` / ``INBEDDER_LLM_MODEL`` (cluster naming; the key and the endpoint may
also come from ``st.secrets``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from inbedder_core import plots, runs
from inbedder_core.analysis import (
    Analysis,
    AnalysisSettings,
    compare_pair,
    compare_results,
    gold_scores,
    names_of,
    run_report,
)
from inbedder_core.cache import CACHE_FILE, CachedEncoder, EmbeddingCache
from inbedder_core.clustering import warm_up
from inbedder_core.corpus import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    MAX_BYTES_ENV,
    MAX_ROWS_ENV,
    Corpus,
    describe_report,
    load_corpus,
)
from inbedder_core.encoder import Fingerprint, choose_device, load_encoder
from inbedder_core.errors import CorpusError, InBedderError
from inbedder_core.export import csv_bytes, export_table, json_bytes, summary_table
from inbedder_core.labeling import choose_labeler, display_url
from inbedder_core.models import BASELINE_MODEL, BUNDLED_MODEL, KNOWN_MODELS, default_model, is_available_offline
from inbedder_core.results import NOISE, InstructionResult
from inbedder_core.settings import default_cache_dir, default_llm_model, positive_int_setting

APP_DIR = Path(__file__).resolve().parent
SAMPLE_PATH = APP_DIR / "sample_data" / "banking77.csv"
SAMPLE_NAME = "banking77.csv"
SAMPLE_GOLD_COLUMN = "intent"
SAMPLE_INSTRUCTIONS = (
    "What does the customer need?",
    "How does the customer feel?",
    "Which product or feature is the customer asking about?",
)
GENERIC_INSTRUCTIONS = (
    "What is the main topic?",
    "How does the writer feel?",
    "What does the writer want?",
)
UPLOAD_TYPES = ["csv", "tsv", "tab", "txt", "jsonl", "ndjson", "parquet", "pq"]
LOCAL_MODEL = "Local directory…"
DEVICES = ("auto", "cpu", "cuda")
VIEWS = ("Explore", "Compare", "Export")
ALGORITHMS = ("HDBSCAN", "KMeans")
NAMING_MODES = ("LLM", "Keywords only")
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
CUSTOM_ENDPOINT_NEEDS_KEY = "a custom endpoint needs its own API key"
MAX_INSTRUCTIONS = 8
MAX_PICKABLE_DOCUMENTS = 500
NO_COLUMN = "(none)"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class AppConfig:
    """Everything the app reads from its environment, read in one place (``read_config``)."""

    default_model: str
    sample_rows: int | None
    max_bytes: int
    max_rows: int
    llm_base_url: str
    llm_model: str
    api_key: str = field(repr=False)
    api_key_source: str
    warm_up: bool
    cache_dir: Path
    max_runs: int = runs.DEFAULT_MAX_RUNS


def _env_int(name: str, default: int | None) -> int | None:
    return positive_int_setting(None, name, default, name, InBedderError)


def _secret(name: str) -> str:
    try:
        return str(st.secrets.get(name, "") or "")
    except (FileNotFoundError, KeyError):  # no secrets.toml (StreamlitSecretNotFoundError is a FileNotFoundError)
        return ""


def read_config() -> AppConfig:
    """Read the environment (and ``st.secrets`` for the API key and endpoint).

    Raises:
        InBedderError: a numeric setting (``INBEDDER_MAX_RUNS`` too) that is not a positive integer.
    """
    env_key = os.environ.get("OPENAI_API_KEY", "").strip()
    secret_key = "" if env_key else _secret("OPENAI_API_KEY").strip()
    return AppConfig(
        default_model=default_model(),
        sample_rows=_env_int("INBEDDER_SAMPLE_ROWS", None),
        max_bytes=_env_int(MAX_BYTES_ENV, DEFAULT_MAX_BYTES),
        max_rows=_env_int(MAX_ROWS_ENV, DEFAULT_MAX_ROWS),
        llm_base_url=os.environ.get("OPENAI_BASE_URL", "").strip() or _secret("OPENAI_BASE_URL").strip(),
        llm_model=default_llm_model(),
        api_key=env_key or secret_key,
        api_key_source="environment" if env_key else ("secrets" if secret_key else ""),
        warm_up=os.environ.get("INBEDDER_WARM_UP", "1").strip().lower() not in ("0", "false", "no", "off"),
        cache_dir=default_cache_dir(),
        max_runs=runs.max_runs_per_corpus(),
    )


@dataclass(frozen=True)
class Choices:
    """What the analyst picked in the sidebar."""

    model: str
    device: str
    settings: AnalysisSettings
    naming: tuple[str, str, str, str]  # (mode, typed base URL, LLM model, key_tag of the analyst's own key)
    llm_api_key: str = field(default="", repr=False)  # the analyst's own key, for a custom endpoint


@dataclass
class Workspace:
    """One session's results on one corpus with one model (kept in ``st.session_state``)."""

    corpus_hash: str
    model: str
    results: dict[str, InstructionResult] = field(default_factory=dict)
    settings: AnalysisSettings | None = None
    naming: tuple[str, str, str, str] | None = None
    naming_note: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    analysis: Analysis | None = None
    analysis_device: str | None = None
    labeler_naming: tuple[str, str, str, str] | None = None  # the naming settings ``analysis.labeler`` was made for
    run_id: str | None = None
    derived: dict[Any, Any] = field(default_factory=dict)  # per_run: figures of the results of ``derived_run``
    derived_run: str | None = None


def per_run(ws: Workspace, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per run: results change only with a new ``ws.run_id`` (a run, a re-cluster,
    a reopened run), so comparisons and scores are not recomputed on every click."""
    if ws.derived_run != ws.run_id:
        ws.derived, ws.derived_run = {}, ws.run_id
    if key not in ws.derived:
        ws.derived[key] = compute()
    return ws.derived[key]


# --------------------------------------------------------------------------- shared resources


@st.cache_resource(show_spinner="Loading the model (once per server)…", max_entries=2)
def shared_encoder(model: str, device: str) -> Any:
    """The encoder for ``model`` on ``device``, loaded once and shared by all sessions."""
    return load_encoder(model, device=device)


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


# --------------------------------------------------------------------------- small helpers

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md_text(text: Any) -> str:
    """``text`` with every Markdown (and Streamlit directive) character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EmbeddingProgress:
    """``progress(done, total)`` for ``Analysis.run``: a bar with documents done and time left."""

    def __init__(self, bar: Any, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.bar = bar
        self.label = label
        self.clock = clock
        self.start: float | None = None
        self.first_done = 0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.start is None:  # the first call reports what the cache already had
            self.start, self.first_done = now, done
        text = f"{self.label}: {done:,} / {total:,} documents embedded"
        encoded = done - self.first_done
        if 0 < encoded and done < total:
            text += f", about {duration((now - self.start) / encoded * (total - done))} left"
        elif self.first_done and encoded == 0 and done == total:
            text += " (all from the cache)"
        self.bar.progress(min(1.0, done / total) if total else 1.0, text=text)


def labeled_csv(corpus: Corpus, results: Sequence[InstructionResult]) -> bytes:
    return csv_bytes(export_table(corpus, results))


def summary_csv(results: Sequence[InstructionResult]) -> bytes:
    return csv_bytes(summary_table(results))


def map_html(corpus: Corpus, result: InstructionResult) -> bytes:
    fig = plots.cluster_map(result.coords, result.labels, names_of(result), corpus.texts, answers=result.answers,
                            title=result.instruction, height=800)
    return plots.figure_html(fig, title=f"InBedder map: {result.instruction}").encode("utf-8")


def report_json(corpus: Corpus, ws: Workspace, gold: str | None) -> bytes:
    payload = run_report(corpus, list(ws.results.values()), settings=ws.settings or AnalysisSettings(),
                         model=ws.model, fingerprint=Fingerprint(**ws.fingerprint) if ws.fingerprint else None,
                         labeler=ws.naming_note, label_column=gold)
    return json_bytes(payload)


def document_frame(corpus: Corpus, result: InstructionResult, indices: Sequence[int], gold: str | None,
                   search: str) -> pd.DataFrame:
    """The document list: id, text, answer, cluster (and gold), filtered by a case-insensitive search."""
    names = names_of(result)
    rows = list(indices)
    frame = pd.DataFrame({
        "id": [corpus.ids[i] for i in rows],
        "text": [corpus.texts[i] for i in rows],
    })
    if result.answers is not None:
        frame["answer"] = [result.answers[i] for i in rows]
    frame["cluster"] = [names.get(int(result.labels[i]), str(int(result.labels[i]))) for i in rows]
    if gold:
        frame[gold if gold not in frame.columns else f"gold: {gold}"] = corpus.table[gold].iloc[rows].tolist()
    if search.strip():
        needle = search.strip().lower()
        hit = frame["text"].str.lower().str.contains(needle, regex=False)
        if "answer" in frame:
            hit |= frame["answer"].fillna("").str.lower().str.contains(needle, regex=False)
        frame = frame[hit]
    return frame.reset_index(drop=True)


def cluster_frame(result: InstructionResult) -> pd.DataFrame:
    return pd.DataFrame({
        "cluster": [c.cluster_id for c in result.clusters],
        "name": [c.name for c in result.clusters],
        "size": [c.size for c in result.clusters],
        "share": [100.0 * c.share for c in result.clusters],
        "description": [c.description for c in result.clusters],
        "keywords": [", ".join(c.keywords) for c in result.clusters],
        "top answers": ["; ".join(f"{a} ({n})" for a, n in c.top_answers) for c in result.clusters],
        "named by": [c.source for c in result.clusters],
    })


def kept(widget: Callable[..., Any], label: str, *args: Any, key: str, options: Sequence[Any] | None = None,
         **kwargs: Any) -> Any:
    """``widget(label, *args, key=key, **kwargs)`` whose value survives views that do not render it.

    Streamlit drops the state of a widget that a run does not draw (here: the views not
    shown); a shadow copy puts the analyst's choice back when the view returns, if it is
    still one of ``options``.
    """
    shadow = f"kept::{key}"
    restorable = st.session_state.get(shadow) is not None  # a selectbox set to None shows an empty box,
    # even where None is an option ("Cluster", "All clusters"): those are the defaults anyway, so not restored
    if key not in st.session_state and restorable and (options is None or st.session_state[shadow] in options):
        st.session_state[key] = st.session_state[shadow]
        kwargs.pop("index", None)  # the restored value is the default
    value = widget(label, *args, key=key, **kwargs)
    st.session_state[shadow] = value
    return value


def short_key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:12]


# --------------------------------------------------------------------------- sidebar


def _model_label(option: str) -> str:
    if option == LOCAL_MODEL:
        return option
    for known in KNOWN_MODELS:
        if known.model_id == option:
            mark = "" if model_available(option) else " · not downloaded"
            return f"{option.rsplit('/', 1)[-1]} ({known.size}, {known.kind}){mark}"
    return f"{option} (INBEDDER_MODEL)"


def _use_bundled() -> None:
    st.session_state["model_choice"] = BUNDLED_MODEL


def model_options(config: AppConfig) -> list[str]:
    """The models the sidebar lists by name: the configured default first when it is none of the known ones."""
    known = [m.model_id for m in KNOWN_MODELS]
    return known if config.default_model in known else [config.default_model, *known]


def render_sidebar(config: AppConfig) -> Choices:
    """Model, device, clustering and naming settings; returns what is chosen."""
    sidebar = st.sidebar
    sidebar.header("Model")
    options = [*model_options(config), LOCAL_MODEL]
    default_ok = model_available(config.default_model)
    st.session_state.setdefault("model_choice", config.default_model if default_ok else BUNDLED_MODEL)
    if st.session_state["model_choice"] not in options:
        st.session_state["model_choice"] = BUNDLED_MODEL
    choice = sidebar.selectbox("Embedding model", options, key="model_choice", format_func=_model_label)
    model = choice
    if choice == LOCAL_MODEL:
        model = sidebar.text_input("Model directory", key="model_path", placeholder="/models/roberta-large-InBedder")
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
    elif model.strip() and not model_available(model):
        sidebar.warning(
            f"{md_text(model)} cannot be loaded offline: it is not in the local Hugging Face cache. To fix: "
            f"download it where the hub is reachable ({md_text(f'hf download {model} --local-dir DIR')}), copy "
            "DIR here and choose *Local directory…* (or set INBEDDER\\_MODEL=DIR); or use the bundled "
            "InBedder, which ships with the app."
        )
        sidebar.button(f"Use the bundled InBedder ({BUNDLED_MODEL})", on_click=_use_bundled, key="use_bundled")
    elif choice == BASELINE_MODEL:
        sidebar.caption("The baseline is a generic sentence embedder: it embeds 'instruction text', "
                        "so it does not follow the instruction the way InBedder does.")
    device = sidebar.selectbox("Device", DEVICES, key="device")

    defaults = {"algorithm": ALGORITHMS[0], "min_cluster_size": 0, "k": 10, "n_neighbors": 15,
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
        st.subheader("Cluster names")
        naming = st.radio("Naming", NAMING_MODES, key="naming", horizontal=True)
        configured = configured_endpoint(config)
        base_url = st.text_input("LLM endpoint base URL", key="llm_base_url",
                                 placeholder=f"{configured} (configured; type another OpenAI-compatible URL)")
        user_key = st.text_input("API key for another endpoint", key="llm_api_key", type="password",
                                 placeholder="only needed for an endpoint you type above")
        llm_model = st.text_input("LLM model", key="llm_model")
        if config.api_key:
            where = "the environment" if config.api_key_source == "environment" else "Streamlit secrets"
            st.caption(f"API key: read from {where} (never shown). It is sent only to the configured "
                       f"endpoint, {md_text(configured)}; another endpoint needs its own key.")
        else:
            st.caption("No API key: set OPENAI\\_API\\_KEY in the environment or in .streamlit/secrets.toml "
                       "to name clusters with an LLM, or type an endpoint and its key above. Keyword names are "
                       "used meanwhile.")
        endpoint = llm_endpoint(base_url, user_key, config)
        if naming == "LLM" and endpoint.problem == CUSTOM_ENDPOINT_NEEDS_KEY:
            st.warning("A custom endpoint needs its own API key: the server's key is only sent to the configured "
                       "endpoint. Type your key for it above and Apply; keyword names are used meanwhile.")
        st.form_submit_button("Apply to the current maps", key="apply_settings")
    settings = AnalysisSettings(
        n_neighbors=int(n_neighbors),
        min_cluster_size=int(min_size) or None,
        k=int(k) if algorithm == "KMeans" else None,
        assign_noise=bool(assign_noise),
    )
    return Choices(model=model.strip(), device=device, settings=settings,
                   naming=naming_choice(naming, base_url, llm_model, user_key, config.llm_model),
                   llm_api_key=user_key.strip())


def naming_choice(mode: str, base_url: str, llm_model: str, user_key: str,
                  fallback_model: str) -> tuple[str, str, str, str]:
    """The naming settings as compared between runs: a new endpoint, model or key re-names the clusters.

    The analyst's own key enters only as ``key_tag`` (a short digest), so the tuple holds no secret.
    """
    key = user_key.strip()
    return (mode, base_url.strip(), llm_model.strip() or fallback_model,
            short_key("llm-key", key) if key else "")


def configured_endpoint(config: AppConfig) -> str:
    """The server-configured endpoint, scrubbed for display (OpenAI's when none is configured)."""
    return display_url(config.llm_base_url) if config.llm_base_url else OPENAI_DEFAULT_URL


@dataclass(frozen=True)
class Endpoint:
    """Where cluster names are asked for, with which key. ``problem`` says why the LLM cannot be used."""

    api_key: str = field(repr=False)
    base_url: str | None  # None: OpenAI's default endpoint
    shown: str  # scrubbed, for messages
    problem: str = ""


def _same_endpoint(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def llm_endpoint(typed_url: str, user_key: str, config: AppConfig) -> Endpoint:
    """The endpoint and key for LLM naming: the server's key goes only to the configured endpoint.

    An empty ``typed_url`` (or the configured URL itself) means the configured endpoint with
    the server's key (the analyst's own key only when the server has none). Any other URL
    gets only the analyst's own key; without one, ``problem`` is ``CUSTOM_ENDPOINT_NEEDS_KEY``.
    """
    typed, own = typed_url.strip(), user_key.strip()
    configured = config.llm_base_url
    if not typed or _same_endpoint(typed, configured or OPENAI_DEFAULT_URL):
        key = config.api_key or own
        return Endpoint(key, configured or None, configured_endpoint(config), "" if key else "no API key configured")
    return Endpoint(own, typed, display_url(typed), "" if own else CUSTOM_ENDPOINT_NEEDS_KEY)


def make_labeler(naming: tuple[str, str, str, str], user_key: str, config: AppConfig) -> tuple[Any, str]:
    """The labeller for the naming settings, and a note on it (shown and saved; it holds no secret)."""
    mode, base_url, llm_model, _ = naming
    if mode != "LLM":
        return choose_labeler("keywords")[0], "keywords"
    endpoint = llm_endpoint(base_url, user_key, config)
    if endpoint.problem:
        return choose_labeler("keywords")[0], f"keywords ({endpoint.problem})"
    labeler, _ = choose_labeler("llm", model=llm_model, api_key=endpoint.api_key, base_url=endpoint.base_url)
    return labeler, f"llm ({llm_model} at {endpoint.shown})"


# --------------------------------------------------------------------------- corpus


def _load(source_key: str, data: bytes, name: str, text_column: str | None,
          config: AppConfig, drop_duplicates: bool = False) -> tuple[Corpus, str]:
    """Load (or reuse from this session) a corpus and its content hash.

    Raises:
        CorpusError: the file, or this text column of it, cannot be loaded (remembered too,
            so a failed guess is not read again on every rerun).
    """
    memo: dict[tuple[str, str | None, bool], tuple[Corpus, str]] = st.session_state.setdefault("corpora", {})
    failed: dict[tuple[str, str | None, bool], tuple[str, list[str]]] = st.session_state.setdefault(
        "corpus_errors", {})  # (message, columns): no traceback kept
    key = (source_key, text_column, drop_duplicates)
    if key in failed:
        raise CorpusError(*failed[key])
    if key not in memo:
        try:
            corpus = load_corpus(data, name=name, text_column=text_column, max_bytes=config.max_bytes,
                                 max_rows=config.max_rows, drop_duplicates=drop_duplicates)
        except CorpusError as error:
            if len(failed) >= 6:
                failed.pop(next(iter(failed)))
            failed[key] = (str(error), error.columns)
            raise
        if len(memo) >= 3:
            memo.pop(next(iter(memo)))
        memo[key] = (corpus, runs.corpus_hash(corpus))
    return memo[key]


_CLI_COLUMN_HINT = re.compile(r"(?:choose the column holding the texts with|pass) --text-column")


_CLI_WORDS = (  # (what a core message tells a command-line or Python user, what it means in the app)
    ("pass drop_duplicates=True (CLI: --drop-duplicates) to skip them", "tick 'Skip duplicate texts' to skip them"),
    ("(drop_duplicates is on)", "('Skip duplicate texts' is ticked)"),
    ("pass format= (--format on the command line) ", ""),
    ("or pass format= (--format) if it is not", "or save it with the right extension if it is not"),
    ("copy DIR here and pass --model DIR (or set INBEDDER_MODEL=DIR)",
     f"copy DIR here and choose '{LOCAL_MODEL}' as the Embedding model in the sidebar"),
    ("Offline now: --model ", "Offline now, in the sidebar: "),
    (" or --model ", " or "),
)


def column_hint(message: Any, hint: str = "choose another text column in the box above") -> str:
    """A core message in the app's words: the ``--text-column`` hint becomes ``hint``, other
    command-line and Python hints (``_CLI_WORDS``) become the app's controls."""
    text = _CLI_COLUMN_HINT.sub(hint, str(message))
    for cli, app in _CLI_WORDS:
        text = text.replace(cli, app)
    return text.replace("(--text-column)", "(the Text column box)")


def render_corpus(config: AppConfig) -> tuple[Corpus, str, str | None, bool]:
    """Upload (or the sample), text and gold columns, load report. Returns (corpus, hash, gold, is_sample)."""
    st.subheader("1 · Corpus")
    uploaded = st.file_uploader(
        "Upload a corpus: CSV, TSV, TXT (one document per line), JSONL or Parquet. "
        "Without one, the bundled BANKING77 sample (online-banking queries) is used.",
        type=UPLOAD_TYPES, key="upload", max_upload_size=max(1, math.ceil(config.max_bytes / 2**20)),
    )
    if uploaded is None:
        data = sample_bytes(str(SAMPLE_PATH), config.sample_rows)
        name, source_key, is_sample = SAMPLE_NAME, short_key("sample", config.sample_rows), True
    else:
        data, name, is_sample = uploaded.getvalue(), uploaded.name, False
        source_key = short_key("upload", uploaded.file_id, uploaded.name, len(data))
    left, right = st.columns(2)
    picker = f"text_column_{source_key}"
    try:
        guessed, _ = _load(source_key, data, name, None, config)
    except CorpusError as error:  # perhaps only the guessed column is unusable: let the analyst choose one
        columns = error.columns
        if len(columns) < 2:
            raise CorpusError(column_hint(error, "upload a file whose text column holds the documents")) from error
        guessed_column = None
        text_column = left.selectbox("Text column", columns, index=None, key=picker,
                                     placeholder="Choose the column holding the texts")
        if text_column is None:  # the error (shown under the picker by main) says to choose
            raise CorpusError(column_hint(error)) from error
    else:
        columns = [str(c) for c in guessed.table.columns]
        guessed_column = guessed.text_column
        text_column = left.selectbox("Text column", columns, index=columns.index(guessed.text_column), key=picker)
    chosen_column = None if text_column == guessed_column else text_column
    try:
        corpus, digest = _load(source_key, data, name, chosen_column, config)
        dedupe_key = f"dedupe_{source_key}"
        if corpus.report.n_duplicates or st.session_state.get(dedupe_key):
            if left.checkbox("Skip duplicate texts", key=dedupe_key,
                             help="Keep only the first row of each exact repeat; the skipped rows are counted."):
                corpus, digest = _load(source_key, data, name, chosen_column, config, drop_duplicates=True)
    except CorpusError as error:
        raise CorpusError(column_hint(error)) from error
    others = [c for c in columns if c != text_column]
    gold_default = others.index(SAMPLE_GOLD_COLUMN) + 1 if is_sample and SAMPLE_GOLD_COLUMN in others else 0
    gold = right.selectbox("Gold label column (optional, for scores)", [NO_COLUMN, *others], index=gold_default,
                           key=f"gold_{source_key}")
    summary, *notes = describe_report(corpus.report)
    st.text(summary)
    if notes:
        with st.expander("Loading details"):
            st.text(column_hint("\n".join(notes)))
    return corpus, digest, (None if gold == NO_COLUMN else gold), is_sample


# --------------------------------------------------------------------------- runs (saved)


def _settings_record(ws: Workspace, choices: Choices, n_docs: int) -> dict[str, Any]:
    return {"analysis": dataclasses.asdict(choices.settings), "effective": choices.settings.as_dict(n_docs),
            "naming_mode": choices.naming[0], "llm_model": choices.naming[2], "labeler": ws.naming_note,
            "device": choices.device}


def _reopen(digest: str, run_id: str, config: AppConfig) -> None:
    """Button callback: restore a saved run into this session and set the widgets to its settings."""
    try:
        saved = runs.load_run(digest, run_id)
    except InBedderError as error:
        st.session_state["reopen_error"] = str(error)
        return
    recorded = saved.info.settings
    known = {f.name for f in dataclasses.fields(AnalysisSettings)}
    settings = AnalysisSettings(**{k: v for k, v in (recorded.get("analysis") or {}).items() if k in known})
    if saved.info.model in model_options(config):
        st.session_state["model_choice"] = saved.info.model
    else:
        st.session_state["model_choice"] = LOCAL_MODEL
        st.session_state["model_path"] = saved.info.model
    st.session_state["algorithm"] = "KMeans" if settings.k else "HDBSCAN"
    if settings.k:
        st.session_state["k"] = settings.k
    st.session_state["min_cluster_size"] = settings.min_cluster_size or 0
    st.session_state["n_neighbors"] = settings.n_neighbors
    st.session_state["assign_noise"] = settings.assign_noise
    if recorded.get("naming_mode") in NAMING_MODES:
        st.session_state["naming"] = recorded["naming_mode"]
    if recorded.get("llm_model"):
        st.session_state["llm_model"] = recorded["llm_model"]
    naming = naming_choice(str(st.session_state.get("naming", NAMING_MODES[1])),
                           str(st.session_state.get("llm_base_url", "")), str(st.session_state.get("llm_model", "")),
                           str(st.session_state.get("llm_api_key", "")), config.llm_model)
    st.session_state["workspace"] = Workspace(
        corpus_hash=digest, model=saved.info.model, results={r.instruction: r for r in saved.results},
        settings=settings, naming=naming, naming_note=str(recorded.get("labeler", "")),
        fingerprint=dict(saved.info.fingerprint), run_id=saved.info.run_id)
    st.session_state["instructions"] = "\n".join(saved.info.instructions)


def render_saved_runs(digest: str, config: AppConfig, shown: str | None) -> None:
    saved = runs.list_runs(digest)
    if "reopen_error" in st.session_state:
        st.error(md_text(st.session_state.pop("reopen_error")))
    with st.expander(f"Earlier runs on this corpus ({len(saved)})", expanded=False):
        st.caption("Runs are saved on this machine and listed to anyone who loads the same documents "
                   "(runs are keyed by the corpus content, not by user).")
        if not saved:
            st.text("No saved runs for this corpus yet.")
            return
        by_id = {info.run_id: info for info in saved}
        if shown in by_id:
            st.text(f"Shown below: {by_id[shown].describe()}")
        run_id = st.selectbox("Saved run", list(by_id), format_func=lambda r: by_id[r].describe(),
                              key=f"saved_run_{short_key(*by_id)}")  # a new list is a new box: no stale choice
        st.button("Reopen this run", key="reopen_run", on_click=_reopen, args=(digest, run_id, config))


# --------------------------------------------------------------------------- running


def workspace_for(digest: str, choices: Choices) -> Workspace:
    """This session's workspace for the corpus and model; switching back to a model finds its maps again."""
    # Duck-typed on purpose: the script (and so the Workspace class) is re-executed on every rerun.
    ws = st.session_state.get("workspace")
    if getattr(ws, "corpus_hash", None) != digest or getattr(ws, "model", None) != choices.model:
        kept_spaces: dict[tuple[str, str], Any] = st.session_state.setdefault("workspaces", {})
        if ws is not None and getattr(ws, "results", None):
            kept_spaces[(ws.corpus_hash, ws.model)] = ws
            while len(kept_spaces) > 3:  # each holds its embeddings: keep the last few only
                kept_spaces.pop(next(iter(kept_spaces)))
        ws = kept_spaces.pop((digest, choices.model), None) or Workspace(corpus_hash=digest, model=choices.model)
        st.session_state["workspace"] = ws
    return ws


def ensure_analysis(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig) -> Analysis:
    if not ws.model:
        raise InBedderError("no model chosen: pick one in the sidebar, or type a local model directory")
    if ws.analysis is None or ws.analysis_device != choices.device:
        encoder = shared_encoder(ws.model, choices.device)
        cached = CachedEncoder(encoder, shared_embedding_cache(str(config.cache_dir)))
        ws.analysis = Analysis(corpus, cached, choices.settings)
        ws.analysis_device = choices.device
        ws.fingerprint = dict(dataclasses.asdict(cached.fingerprint))
        ws.labeler_naming = None
    ws.analysis.with_settings(**dataclasses.asdict(choices.settings))
    if ws.labeler_naming != choices.naming:  # the same labeller object lets Analysis reuse names it already has
        ws.analysis.labeler, ws.naming_note = make_labeler(choices.naming, choices.llm_api_key, config)
        ws.labeler_naming = choices.naming
    return ws.analysis


def compute(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, instructions: Sequence[str],
            heading: str) -> None:
    """Run ``instructions`` (memoised stages make repeats instant), then save the run."""
    started = time.monotonic()
    analysis = ensure_analysis(ws, corpus, choices, config)
    results: dict[str, InstructionResult] = {}
    with st.status(heading, expanded=True) as status:
        bar = st.progress(0.0, text="Starting…")
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
    info = runs.save_run(corpus, list(results.values()), model=ws.model,
                         settings=_settings_record(ws, choices, len(corpus)), fingerprint=ws.fingerprint,
                         max_runs=config.max_runs)
    ws.run_id = info.run_id


def parse_instructions(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if line.strip():
            seen.setdefault(line.strip(), None)
    if len(seen) > MAX_INSTRUCTIONS:
        raise InBedderError(f"{len(seen)} instructions given; at most {MAX_INSTRUCTIONS} per run. "
                            "Remove some lines and run again")
    return list(seen)


def sync_settings(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig) -> None:
    """Re-cluster (and re-name) the current maps when the applied settings changed; embeddings are reused."""
    if ws.results and (ws.settings != choices.settings or ws.naming != choices.naming):
        compute(ws, corpus, choices, config, list(ws.results),
                "Re-clustering with the new settings (embeddings are reused)…")


def render_ask(ws: Workspace, corpus: Corpus, choices: Choices, config: AppConfig, is_sample: bool) -> None:
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


# --------------------------------------------------------------------------- views


def _pick_cluster_from_table(table_key: str, pick_key: str, cluster_ids: list[int], map_version_key: str) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state[pick_key] = cluster_ids[rows[0]]
        _bump(map_version_key)  # clears a lasso


def _bump(counter_key: str) -> None:
    """Widget callback: a new key for a widget whose selection must be cleared (the key embeds the counter)."""
    st.session_state[counter_key] = st.session_state.get(counter_key, 0) + 1


def render_explore(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    results = list(ws.results.values())
    by_instruction = {r.instruction: r for r in results}
    instruction = kept(st.selectbox, "Instruction", list(by_instruction), key="explore_instruction",
                       options=list(by_instruction))
    result = by_instruction[instruction]
    view = short_key(ws.run_id, instruction)  # widget keys of this map: fresh after every (re)computation
    quality = result.quality
    metrics = st.columns(4)
    metrics[0].metric("Documents", f"{len(corpus):,}")
    metrics[1].metric("Clusters", f"{sum(1 for c in result.clusters if c.cluster_id != NOISE)}")
    metrics[2].metric("Noise", f"{100 * float(quality.get('noise_share') or 0):.1f}%")
    silhouette = quality.get("silhouette")
    metrics[3].metric("Silhouette", "n/a" if silhouette is None else f"{float(silhouette):.2f}")
    settings = ws.settings or AnalysisSettings()
    if not any(c.cluster_id != NOISE for c in result.clusters) and settings.k is None:
        size = settings.as_dict(len(corpus))["min_cluster_size"]
        st.warning(f"No clusters: every document is noise. A cluster needs at least {size:,} documents "
                   f"(min cluster size) here, out of {len(corpus):,}; lower 'HDBSCAN min cluster size' in the "
                   "sidebar (0 = automatic), or use KMeans, then Apply.")
    naming_errors = list(quality.get("naming_errors") or [])  # type: ignore[call-overload]
    if naming_errors:
        st.warning(f"The LLM could not name every cluster ({len(naming_errors)} problem(s)); keyword names are "
                   "shown where it failed. Check the endpoint, model and key in the sidebar, then Apply.")
        with st.expander("Naming problems"):
            st.text("\n".join(map(str, naming_errors)))

    table = corpus.table
    columns = [c for c in map(str, table.columns)  # not the texts, nor an id-like column (every value unique)
               if c != corpus.text_column and (len(table) < 2 or table[c].nunique(dropna=False) < len(table))]
    colour_options: list[str | None] = [None, *([gold] if gold else []), *[c for c in columns if c != gold]]
    colour = kept(st.selectbox, "Colour by", colour_options, key="colour_by", options=colour_options,
                  format_func=lambda c: "Cluster" if c is None else (f"Gold label: {c}" if c == gold else c))
    color_by = None if colour is None else (colour, corpus.table[colour].tolist())
    fig = plots.cluster_map(result.coords, result.labels, names_of(result), corpus.texts, answers=result.answers,
                            color_by=color_by)
    version_key = f"map_version_{view}"
    map_key = f"map_{view}_{short_key(colour)}_{st.session_state.get(version_key, 0)}"
    st.caption("Hover a point to read it; lasso or box-select points to list them below.")
    event = st.plotly_chart(fig, key=map_key, on_select="rerun", selection_mode=("lasso", "box"),
                            config={"displaylogo": False, "scrollZoom": True})
    lassoed = plots.selected_documents(fig, event.selection if event else None)
    table_version_key = f"cluster_table_version_{view}"
    pick_key = f"cluster_pick_{view}"
    table_key = f"cluster_table_{view}_{st.session_state.get(table_version_key, 0)}"
    cluster_ids = [c.cluster_id for c in result.clusters]
    st.subheader("Clusters")
    st.caption("Click a row to list its documents.")
    st.dataframe(cluster_frame(result), hide_index=True, key=table_key, on_select=functools.partial(
                     _pick_cluster_from_table, table_key, pick_key, cluster_ids, version_key),
                 selection_mode="single-row", height=min(420, 38 + 35 * len(cluster_ids)),
                 column_config={"share": st.column_config.NumberColumn("share", format="%.1f%%"),
                                "description": st.column_config.TextColumn("description", width="large")})

    st.subheader("Documents")
    sizes = {c.cluster_id: c.size for c in result.clusters}
    names = names_of(result)
    pick = kept(st.selectbox, "Show documents of", [None, *cluster_ids], key=pick_key, options=[None, *cluster_ids],
                disabled=bool(lassoed), on_change=_bump, args=(table_version_key,),  # clears a stale table row
                format_func=lambda c: "All clusters" if c is None else f"{names[c]} ({sizes[c]:,})")
    if lassoed:
        st.text(f"{len(lassoed):,} documents selected on the map; they are listed instead of a cluster "
                "(double-click the map, or click a row of the cluster table, to clear the selection).")
        indices: Sequence[int] = lassoed
    elif pick is None:
        indices = range(len(corpus))
    else:
        indices = [int(i) for i in (result.labels == pick).nonzero()[0]]
    search = kept(st.text_input, "Search texts and answers", key="doc_search", placeholder="e.g. card")
    frame = document_frame(corpus, result, indices, gold, search)
    st.caption(f"{len(frame):,} documents")
    st.dataframe(frame, hide_index=True, column_config={"text": st.column_config.TextColumn(
        "text", width="large")})


def _document_label(corpus: Corpus, i: int) -> str:
    return f"{corpus.ids[i]}: {plots.truncate(corpus.texts[i].replace(chr(10), ' '), 90)}"


def render_compare(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    results = list(ws.results.values())
    if len(results) < 2:
        st.info("Run at least two instructions (one per line) to compare their maps.")
    else:
        instructions = [r.instruction for r in results]
        left, right = st.columns(2)
        with left:
            a = kept(st.selectbox, "Instruction A", instructions, index=0, key="compare_a", options=instructions)
        with right:
            b = kept(st.selectbox, "Instruction B", instructions, index=1, key="compare_b", options=instructions)
        ra, rb = ws.results[a], ws.results[b]
        search = kept(st.text_input, "Find a document to follow in both maps", key="compare_search",
                               placeholder="words from its text")
        needle = search.strip().lower()
        matches = [i for i, t in enumerate(corpus.texts) if not needle or needle in t.lower()]
        if not matches:
            st.text("No document contains that text.")
            doc = None
        else:
            pickable = matches[:MAX_PICKABLE_DOCUMENTS]
            doc = kept(st.selectbox, "Document", pickable, key="compare_doc", options=pickable,
                        format_func=functools.partial(_document_label, corpus))
        maps = st.columns(2)
        for column, result, side in ((maps[0], ra, "A"), (maps[1], rb, "B")):
            fig = plots.cluster_map(result.coords, result.labels, names_of(result), corpus.texts,
                                    answers=result.answers, highlight=doc, title=f"{side}: {result.instruction}",
                                    height=460, show_legend=False)
            column.plotly_chart(fig, key=f"compare_map_{side}", config={"displaylogo": False})
            if doc is not None:
                name = names_of(result).get(int(result.labels[doc]), "")
                answer = f"; answer: {result.answers[doc]}" if result.answers is not None else ""
                column.text(f"{side}: cluster {name}{answer}")
        if doc is not None:
            st.text(f"Picked document {corpus.ids[doc]}: {corpus.texts[doc]}")
        comparison = per_run(ws, ("pair", a, b), lambda: compare_pair(ra, rb))
        scores = st.columns(2)
        scores[0].metric("ARI (A vs B)", f"{comparison.ari:.3f}")
        scores[1].metric("NMI (A vs B)", f"{comparison.nmi:.3f}")
        sankey_tab, heatmap_tab, table_tab = st.tabs(["Flows (Sankey)", "Contingency heatmap", "Contingency table"])
        with sankey_tab:
            st.plotly_chart(plots.cluster_sankey(comparison.contingency), key="compare_sankey")
        with heatmap_tab:
            st.plotly_chart(plots.contingency_heatmap(comparison.contingency), key="compare_heatmap")
        with table_tab:
            st.dataframe(comparison.contingency)
        st.subheader("All instructions: pairwise agreement")
        pairwise = per_run(ws, ("pairwise",), lambda: compare_results(results))
        grid = st.columns(2)
        grid[0].plotly_chart(plots.score_matrix(pairwise.ari, title="ARI", zmin=-1.0), key="pairwise_ari")
        grid[1].plotly_chart(plots.score_matrix(pairwise.nmi, title="NMI"), key="pairwise_nmi")
    if gold:
        st.subheader("Against the gold labels")
        st.text(f"Each clustering scored against the column {gold!r} (noise counts as one cluster).")
        scores = per_run(ws, ("gold", gold), lambda: pd.DataFrame(gold_scores(results, corpus.table[gold].tolist())))
        st.dataframe(scores.drop(columns=["nmi"]), hide_index=True,  # NMI (arithmetic) is the V-measure
                     column_config={"v_measure": st.column_config.NumberColumn("v_measure (= NMI)")})


def render_export(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    results = list(ws.results.values())
    stem = Path(corpus.source).stem or "corpus"
    st.text("The labeled CSV has every input column plus answer_i, cluster_i, label_i and description_i per "
            "instruction (the same format as the command line's 'inbedder cluster').")
    by_instruction = {r.instruction: r for r in results}
    chosen = kept(st.selectbox, "Map to download as a standalone HTML page", list(by_instruction), key="export_map",
                  options=list(by_instruction))
    cols = st.columns(4)
    cols[0].download_button("Labeled CSV", data=functools.partial(labeled_csv, corpus, results),
                            file_name=f"{stem}.labeled.csv", mime="text/csv", key="download_labeled",
                            on_click="ignore")
    cols[1].download_button("Cluster summary CSV", data=functools.partial(summary_csv, results),
                            file_name=f"{stem}.clusters.csv", mime="text/csv", key="download_summary",
                            on_click="ignore")
    cols[2].download_button("Run report (JSON)", data=functools.partial(report_json, corpus, ws, gold),
                            file_name=f"{stem}.json", mime="application/json", key="download_report",
                            on_click="ignore")
    number = results.index(by_instruction[chosen]) + 1
    cols[3].download_button("Map as HTML", data=functools.partial(map_html, corpus, by_instruction[chosen]),
                            file_name=f"{stem}.map_{number}.html", mime="text/html", key="download_map",
                            on_click="ignore")
    if ws.run_id:
        st.text(f"This run is saved as {ws.run_id}; reopen it from 'Earlier runs on this corpus'.")


VIEW_RENDERERS: dict[str, Callable[[Workspace, Corpus, str | None], None]] = {
    "Explore": render_explore,
    "Compare": render_compare,
    "Export": render_export,
}


def render_results(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    st.subheader("3 · Explore")
    if not ws.results:
        others = [model for digest, model in st.session_state.get("workspaces", {}) if digest == ws.corpus_hash]
        kept_note = (f" The maps made with {', '.join(others)} are kept: choose that model again in the sidebar "
                     "to see them." if others else "")
        st.info("Run an instruction to see the corpus clustered by its answers." + md_text(kept_note))
        return
    view = st.radio("View", VIEWS, key="view", horizontal=True, label_visibility="collapsed")
    VIEW_RENDERERS[view](ws, corpus, gold)


# --------------------------------------------------------------------------- main


def main() -> None:
    st.set_page_config(page_title="InBedder Explorer", layout="wide")
    st.title("InBedder Explorer")
    st.caption("Cluster a corpus by the answer to a question (InBedder instruction-following embeddings, "
               "Peng et al., ACL 2024).")
    try:
        config = read_config()
        torch_ready = start_warm_up() if config.warm_up else None
        choices = render_sidebar(config)
        corpus, digest, gold, is_sample = render_corpus(config)
        saved_runs = st.container()  # filled after the run below, so a run saved now is listed now
        ws = workspace_for(digest, choices)
        try:
            if torch_ready is not None:
                torch_ready.wait(timeout=120)
            sync_settings(ws, corpus, choices, config)
            render_ask(ws, corpus, choices, config, is_sample)
        finally:
            with saved_runs:
                render_saved_runs(digest, config, ws.run_id)
        render_results(ws, corpus, gold)
    except InBedderError as error:
        st.error(md_text(column_hint(error)))


if __name__ == "__main__":
    main()
