"""Stage corpus (in) and export (out): files to a ``Corpus``, results to files.

``corpus`` (the type) <- ``decode``, ``readers`` <- ``load`` (``load_corpus``).
"""

from __future__ import annotations

from .corpus import (
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
from .load import SUPPORTED_FORMATS, TEXT_COLUMN_NAMES, load_corpus

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "MAX_BYTES_ENV",
    "MAX_ROWS_ENV",
    "SKIP_MISSING",
    "SKIP_EMPTY",
    "SKIP_WHITESPACE",
    "SKIP_DUPLICATE",
    "SKIP_NUL",
    "LoadReport",
    "Corpus",
    "describe_report",
    "SUPPORTED_FORMATS",
    "TEXT_COLUMN_NAMES",
    "load_corpus",
]
