"""Settings read from the environment, in one place.

``INBEDDER_CACHE_DIR`` moves every file the package writes (embedding cache, saved runs,
bundled models, training checkpoints); the corpus and run caps are positive whole numbers
read by ``positive_int_setting``. Reading a setting changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import overload

from .errors import InBedderError


def default_cache_dir() -> Path:
    """``INBEDDER_CACHE_DIR`` or the platform's user cache directory for ``inbedder-explorer``."""
    override = os.environ.get("INBEDDER_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("inbedder-explorer"))


@overload
def positive_int_setting(value: int | None, env: str, default: int, param: str,
                         error: type[InBedderError]) -> int: ...
@overload
def positive_int_setting(value: int | None, env: str, default: None, param: str,
                         error: type[InBedderError]) -> int | None: ...
def positive_int_setting(value: int | None, env: str, default: int | None, param: str,
                         error: type[InBedderError]) -> int | None:
    """A positive whole-number setting: ``value`` if given, else the variable ``env``, else ``default``.

    Raises:
        error: ``value`` or the environment variable is not a positive whole number (each
            caller names its own ``InBedderError`` subclass, e.g. ``CorpusError``).
    """
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        where = f"{env}={raw!r}"
    else:
        where = f"{param}={value!r}"
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise error(f"{where} is not a positive whole number; set it to one, or unset it for the default")
    return value


DEFAULT_LLM_MODEL = "gpt-4o-mini"
LLM_MODEL_ENV = "INBEDDER_LLM_MODEL"


def default_llm_model() -> str:
    """The chat model that names clusters when none is chosen: ``INBEDDER_LLM_MODEL`` or gpt-4o-mini."""
    return os.environ.get(LLM_MODEL_ENV, "").strip() or DEFAULT_LLM_MODEL


DEFAULT_LLM_TIMEOUT = 15.0
"""Seconds one naming request may take (``INBEDDER_LLM_TIMEOUT``, CLI ``--llm-timeout``)."""
DEFAULT_LLM_BUDGET = 45.0
"""Seconds all naming requests of one question may take together, retries and waits included
(``INBEDDER_LLM_BUDGET``, CLI ``--llm-budget``): a hanging endpoint costs under a minute per question."""
DEFAULT_CONFIRM_SECONDS = 1800.0
"""A run estimated to take longer asks first (CLI: ``--yes``; app: a confirmation);
``INBEDDER_CONFIRM_SECONDS`` changes it."""
CONFIRM_SECONDS_ENV = "INBEDDER_CONFIRM_SECONDS"
LLM_TIMEOUT_ENV = "INBEDDER_LLM_TIMEOUT"
LLM_BUDGET_ENV = "INBEDDER_LLM_BUDGET"


def positive_seconds(value: float | None, env: str, default: float, param: str,
                     error: type[InBedderError]) -> float:
    """A positive number of seconds: ``value`` if given, else the variable ``env``, else ``default``.

    Raises:
        error: ``value`` or the environment variable is not a positive, finite number.
    """
    where = f"{param}={value!r}"
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        where = f"{env}={raw!r}"
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise error(f"{where} is not a positive number of seconds; set it to one (e.g. 15), or unset it "
                    "for the default")
    return float(value)
