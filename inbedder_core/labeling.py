"""Kept so that ``from inbedder_core.labeling import ...`` keeps working: a thin re-export of
``inbedder_core.name`` (keywords, llm, cleaning, client). New code imports from there.
"""

from __future__ import annotations

from .name.base import (  # noqa: F401
    LABELER_MODES,
    ClusterLabeler,
    LabelerMode,
)
from .name.cleaning import (  # noqa: F401
    clean_label_text,
    display_url,
)
from .name.client import (  # noqa: F401
    choose_labeler,
    llm_available,
    make_client,
)
from .name.keywords import (  # noqa: F401
    NEGATIONS,
    KeywordLabeler,
    class_tfidf,
    name_from_keywords,
    normalize_answer,
    top_answers,
)
from .name.llm import (  # noqa: F401
    DATA_BEGIN,
    DATA_END,
    SYSTEM_PROMPT,
    LLMLabeler,
)

__all__ = [
    "LabelerMode",
    "LABELER_MODES",
    "NEGATIONS",
    "DATA_BEGIN",
    "DATA_END",
    "SYSTEM_PROMPT",
    "ClusterLabeler",
    "class_tfidf",
    "normalize_answer",
    "top_answers",
    "name_from_keywords",
    "KeywordLabeler",
    "clean_label_text",
    "display_url",
    "LLMLabeler",
    "make_client",
    "llm_available",
    "choose_labeler",
]
