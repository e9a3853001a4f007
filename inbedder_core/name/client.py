"""The OpenAI client and the choice of labeller: ``make_client`` (``openai`` imported lazily),
``llm_available`` and ``choose_labeler`` (LLM when a key is set, else keywords).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.util import find_spec
from typing import TYPE_CHECKING

from ..errors import LabelingError
from ..settings import (
    DEFAULT_LLM_BUDGET,
    DEFAULT_LLM_MODEL,
    DEFAULT_LLM_TIMEOUT,
    LLM_BUDGET_ENV,
    LLM_TIMEOUT_ENV,
    positive_seconds,
)
from .base import LABELER_MODES, LabelerMode
from .cleaning import _scrubber, display_url, url_userinfo_problem
from .keywords import KeywordLabeler
from .llm import LLMLabeler

if TYPE_CHECKING:
    import openai



# --------------------------------------------------------------------------------------------
# Client construction and choice of labeller
# --------------------------------------------------------------------------------------------


def make_client(api_key: str | None = None, base_url: str | None = None, timeout: float = 30.0) -> openai.OpenAI:
    """An ``openai.OpenAI`` client with its own retries off (``LLMLabeler`` retries itself).

    Args:
        api_key: the key; ``None`` reads ``OPENAI_API_KEY``.
        base_url: an OpenAI-compatible endpoint such as ``http://127.0.0.1:8000/v1``; ``None``
            reads ``OPENAI_BASE_URL`` (and else uses OpenAI's).
        timeout: seconds per request.

    Raises:
        LabelingError: no key is configured, the timeout is not positive, the URL holds a user name
            or password (``user:pass@host``), or ``openai`` is missing.
    """
    key = _api_key(api_key)
    if not key:
        raise LabelingError("no OpenAI API key: set OPENAI_API_KEY (or pass api_key), or choose the keywords labeler")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise LabelingError(f"timeout must be a number of seconds > 0; got {timeout!r}")
    url = base_url if base_url is not None else os.environ.get("OPENAI_BASE_URL") or None
    problem = url_userinfo_problem(url, "the endpoint URL" if base_url is not None else "OPENAI_BASE_URL")
    if problem:
        raise LabelingError(problem)
    try:
        import openai
    except ImportError as err:
        raise LabelingError(
            "the 'openai' package is not installed: pip install openai, or choose the keywords labeler"
        ) from err
    return openai.OpenAI(api_key=key, base_url=url, timeout=float(timeout), max_retries=0)


def _api_key(api_key: str | None) -> str:
    """``api_key``, else ``OPENAI_API_KEY``, stripped ("" when neither is set)."""
    return (api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")).strip()


def llm_available(env: Mapping[str, str] = os.environ) -> bool:
    """True when ``env`` has a non-empty ``OPENAI_API_KEY`` and the ``openai`` package is installed."""
    return bool(str(env.get("OPENAI_API_KEY", "") or "").strip()) and find_spec("openai") is not None


def choose_labeler(
    mode: LabelerMode = "auto",
    *,
    model: str = DEFAULT_LLM_MODEL,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    budget: float | None = None,
) -> tuple[KeywordLabeler | LLMLabeler, str]:
    """Pick the labeller for ``mode`` and say which one and why.

    ``"auto"`` uses the LLM when a key is configured (``api_key`` or ``OPENAI_API_KEY``) and
    keywords otherwise; ``"llm"`` requires a key; ``"keywords"`` never calls an API.
    ``timeout`` (seconds per request) and ``budget`` (seconds for all requests of one question)
    default to ``INBEDDER_LLM_TIMEOUT`` / ``INBEDDER_LLM_BUDGET``, else 15 s and 45 s.

    Returns:
        ``(labeler, reason)``, e.g. ``(KeywordLabeler(), "keywords (no OPENAI_API_KEY set)")``.
        The reason never contains the key.

    Raises:
        LabelingError: unknown ``mode``, ``"llm"`` without a key, a bad timeout or budget, or an
            endpoint URL with a user name or password.
    """
    if mode not in LABELER_MODES:
        raise LabelingError(f"unknown labeler mode {mode!r}; expected one of {list(LABELER_MODES)}")
    if mode == "keywords":
        return KeywordLabeler(), "keywords (chosen)"
    timeout = positive_seconds(timeout, LLM_TIMEOUT_ENV, DEFAULT_LLM_TIMEOUT, "timeout", LabelingError)
    budget = positive_seconds(budget, LLM_BUDGET_ENV, DEFAULT_LLM_BUDGET, "budget", LabelingError)
    key = _api_key(api_key)
    if mode == "auto":
        if not key:
            return KeywordLabeler(), "keywords (no OPENAI_API_KEY set)"
        if find_spec("openai") is None:
            return KeywordLabeler(), "keywords (the openai package is not installed)"
    client = make_client(key, base_url, timeout)  # raises LabelingError, with the fix, when key is empty
    where = display_url(_scrubber(key)(str(client.base_url)))
    if mode == "llm":
        why = "chosen"
    else:
        why = "API key given" if api_key is not None else "OPENAI_API_KEY is set"
    return LLMLabeler(client, model, budget=budget), f"llm ({model} at {where}; {why})"
