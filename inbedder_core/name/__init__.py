"""Stage name: a short name and a description for each cluster.

``base`` (the labeller protocol) <- ``cleaning`` <- ``keywords`` <- ``llm`` <- ``client`` (``choose_labeler``).
"""

from __future__ import annotations

from .base import LABELER_MODES, ClusterLabeler, LabelerMode
from .cleaning import clean_label_text, display_url
from .client import choose_labeler, llm_available, make_client
from .keywords import NEGATIONS, KeywordLabeler, class_tfidf, name_from_keywords, normalize_answer, top_answers
from .llm import DATA_BEGIN, DATA_END, SYSTEM_PROMPT, LLMLabeler

__all__ = [
    "LabelerMode",
    "LABELER_MODES",
    "ClusterLabeler",
    "clean_label_text",
    "display_url",
    "NEGATIONS",
    "class_tfidf",
    "normalize_answer",
    "top_answers",
    "name_from_keywords",
    "KeywordLabeler",
    "DATA_BEGIN",
    "DATA_END",
    "SYSTEM_PROMPT",
    "LLMLabeler",
    "make_client",
    "llm_available",
    "choose_labeler",
]
