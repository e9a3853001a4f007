"""Prompt patterns: the InBedder template filled in one pass.

A document that itself contains ``{instruction}``, ``{input}`` or braces must
survive verbatim, so the pattern is filled by one regex substitution over the
*pattern*, never by ``str.format`` or chained ``str.replace`` on user text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InBedderError

INBEDDER_PATTERN = "### Input:\n{input}\n\n### Instruction:\n{instruction}\n\n### Response:"
BASELINE_PATTERN = "{instruction} {input}"

_FIELD = re.compile(r"\{(input|instruction)\}")


@dataclass(frozen=True)
class PromptParts:
    """A filled prompt split around the document: ``before + text + after``."""

    before: str
    text: str
    after: str

    @property
    def prompt(self) -> str:
        return self.before + self.text + self.after


def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` if it has exactly one ``{input}`` and at most one ``{instruction}``.

    Raises:
        InBedderError: the pattern lacks ``{input}`` or repeats a field.
    """
    fields = _FIELD.findall(pattern)
    if fields.count("input") != 1:
        raise InBedderError(
            f"prompt pattern {pattern!r} must contain '{{input}}' exactly once "
            f"(found {fields.count('input')}); e.g. {INBEDDER_PATTERN!r}"
        )
    if fields.count("instruction") > 1:
        raise InBedderError(
            f"prompt pattern {pattern!r} contains '{{instruction}}' more than once; use it at most once"
        )
    return pattern


def fill_pattern(pattern: str, text: str, instruction: str) -> str:
    """Fill ``{input}`` and ``{instruction}`` in ``pattern`` in a single pass.

    >>> fill_pattern("{instruction}|{input}", "a {instruction} b", "Q?")
    'Q?|a {instruction} b'
    """
    return split_pattern(pattern, text, instruction).prompt


def split_pattern(pattern: str, text: str, instruction: str) -> PromptParts:
    """Fill ``pattern`` and return it split around the document text.

    The split lets the encoder truncate the document, never the instruction or the
    response marker. Raises ``InBedderError`` for an invalid pattern.
    """
    validate_pattern(pattern)
    values = {"input": text, "instruction": instruction}
    pieces = _FIELD.split(pattern)  # [lit, field, lit, field, lit, ...]
    before: list[str] = []
    after: list[str] = []
    seen_input = False
    for i, piece in enumerate(pieces):
        is_field = i % 2 == 1
        if is_field and piece == "input":
            seen_input = True
            continue
        chunk = values[piece] if is_field else piece
        (after if seen_input else before).append(chunk)
    return PromptParts("".join(before), text, "".join(after))
