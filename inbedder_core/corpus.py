"""Kept so that ``from inbedder_core.corpus import ...`` keeps working: a thin re-export of the corpus
side of ``inbedder_core.io`` (the ``Corpus`` type, readers, ``load_corpus``). New code imports from there.
"""

from __future__ import annotations

from .io.corpus import (  # noqa: F401
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    MAX_BYTES_ENV,
    MAX_ROWS_ENV,
    SKIP_DUPLICATE,
    SKIP_EMPTY,
    SKIP_MISSING,
    SKIP_NUL,
    SKIP_WHITESPACE,
    Corpus,
    LoadReport,
    describe_report,
)
from .io.load import (  # noqa: F401
    SUPPORTED_FORMATS,
    TEXT_COLUMN_NAMES,
    load_corpus,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "MAX_BYTES_ENV",
    "MAX_ROWS_ENV",
    "SUPPORTED_FORMATS",
    "TEXT_COLUMN_NAMES",
    "SKIP_MISSING",
    "SKIP_EMPTY",
    "SKIP_WHITESPACE",
    "SKIP_DUPLICATE",
    "SKIP_NUL",
    "LoadReport",
    "Corpus",
    "describe_report",
    "load_corpus",
]
