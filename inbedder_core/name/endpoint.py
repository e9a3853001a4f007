"""Which endpoint gets which key when clusters are named by an LLM: the server's key goes only to
the server-configured endpoint; another endpoint needs the analyst's own key (``llm_endpoint``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .cleaning import display_url, url_userinfo_problem
from .client import choose_labeler

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
CUSTOM_ENDPOINT_NEEDS_KEY = "a custom endpoint needs its own API key"
LLM_MODE = "LLM"

Naming = tuple[str, str, str, str]
"""(mode, typed base URL, LLM model, key tag of the analyst's own key): holds no secret."""


def key_tag(*parts: Any) -> str:
    """A short, stable digest of ``parts`` (12 hex characters): a name for a value not to be kept."""
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def naming_choice(mode: str, base_url: str, llm_model: str, user_key: str, fallback_model: str) -> Naming:
    """The naming settings as compared between runs: a new endpoint, model or key re-names the clusters.

    The analyst's own key enters only as ``key_tag`` (a short digest), so the tuple holds no secret.
    """
    key = user_key.strip()
    return (mode, base_url.strip(), llm_model.strip() or fallback_model, key_tag("llm-key", key) if key else "")


def configured_endpoint(configured_url: str) -> str:
    """The server-configured endpoint, scrubbed for display (OpenAI's when none is configured)."""
    return display_url(configured_url) if configured_url else OPENAI_DEFAULT_URL


@dataclass(frozen=True)
class Endpoint:
    """Where cluster names are asked for, with which key. ``problem`` says why the LLM cannot be used."""

    api_key: str = field(repr=False)
    base_url: str | None  # None: OpenAI's default endpoint
    shown: str  # scrubbed, for messages
    problem: str = ""


def _same_endpoint(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def llm_endpoint(typed_url: str, user_key: str, configured_url: str, server_key: str) -> Endpoint:
    """The endpoint and key for LLM naming: the server's key goes only to the configured endpoint.

    An empty ``typed_url`` (or the configured URL itself) means the configured endpoint with
    the server's key (the analyst's own key only when the server has none). Any other URL
    gets only the analyst's own key; without one, ``problem`` is ``CUSTOM_ENDPOINT_NEEDS_KEY``.
    """
    typed, own = typed_url.strip(), user_key.strip()
    for url, where in ((typed, "the endpoint URL"), (configured_url, "the configured endpoint (OPENAI_BASE_URL)")):
        problem = url_userinfo_problem(url, where)
        if problem:
            return Endpoint("", None, display_url(url), problem)
    if not typed or _same_endpoint(typed, configured_url or OPENAI_DEFAULT_URL):
        key = server_key or own
        return Endpoint(key, configured_url or None, configured_endpoint(configured_url),
                        "" if key else "no API key configured")
    return Endpoint(own, typed, display_url(typed), "" if own else CUSTOM_ENDPOINT_NEEDS_KEY)


def make_labeler(naming: Naming, user_key: str, configured_url: str, server_key: str) -> tuple[Any, str]:
    """The labeller for the naming settings, and a note on it (shown and saved; it holds no secret)."""
    mode, base_url, llm_model, _ = naming
    if mode != LLM_MODE:
        return choose_labeler("keywords")[0], "keywords"
    endpoint = llm_endpoint(base_url, user_key, configured_url, server_key)
    if endpoint.problem:
        return choose_labeler("keywords")[0], f"keywords ({endpoint.problem})"
    labeler, _ = choose_labeler("llm", model=llm_model, api_key=endpoint.api_key, base_url=endpoint.base_url)
    return labeler, f"llm ({llm_model} at {endpoint.shown})"
