"""The LLM-answers engine (``--model llm:NAME``): answers from any OpenAI-compatible chat model, embedded offline.

``prompt`` (fenced prompts, batched replies, token estimates), ``store`` (the answers cache) <- ``engine``.
"""

from __future__ import annotations

from .engine import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LLM_BATCH,
    EMBED_FORMATS,
    LLM_PREFIX,
    AnswerPlan,
    LLMAnswerEncoder,
    llm_model_name,
    load_answer_encoder,
)
from .prompt import SYSTEM_BATCH, SYSTEM_SINGLE, batch_messages, clean_answer, parse_batch, single_messages
from .store import ANSWERS_FILE, AnswerStore, answer_key

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LLM_BATCH",
    "EMBED_FORMATS",
    "LLM_PREFIX",
    "AnswerPlan",
    "LLMAnswerEncoder",
    "llm_model_name",
    "load_answer_encoder",
    "SYSTEM_BATCH",
    "SYSTEM_SINGLE",
    "batch_messages",
    "clean_answer",
    "parse_batch",
    "single_messages",
    "ANSWERS_FILE",
    "AnswerStore",
    "answer_key",
]
