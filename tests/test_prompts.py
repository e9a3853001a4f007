"""Prompt patterns are filled in one pass: user text is never interpreted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbedder_core.errors import InBedderError
from inbedder_core.prompts import INBEDDER_PATTERN, fill_pattern, split_pattern, validate_pattern


def test_inbedder_pattern_is_the_papers():
    assert fill_pattern(INBEDDER_PATTERN, "my card", "Why?") == (
        "### Input:\nmy card\n\n### Instruction:\nWhy?\n\n### Response:")


@given(st.text(), st.text())
def test_any_text_and_instruction_survive_verbatim(text, instruction):
    parts = split_pattern(INBEDDER_PATTERN, text, instruction)
    assert parts.text == text
    assert parts.before == "### Input:\n"
    assert parts.after == f"\n\n### Instruction:\n{instruction}\n\n### Response:"
    assert parts.prompt == parts.before + text + parts.after


def test_fields_and_braces_inside_documents_are_not_filled():
    text = "{instruction} {input} {0} {{}} }{"
    assert fill_pattern("{instruction}: {input}", text, "Q {input}") == "Q {input}: " + text


def test_custom_patterns_and_instruction_after_input():
    parts = split_pattern("Q: {instruction}\nA text: {input}\nAnswer:", "doc", "why")
    assert (parts.before, parts.after) == ("Q: why\nA text: ", "\nAnswer:")


@pytest.mark.parametrize("pattern", ["no fields", "{input} {input}", "{instruction}{instruction}{input}"])
def test_invalid_patterns_are_rejected_with_the_fix(pattern):
    with pytest.raises(InBedderError, match="exactly once|at most once"):
        validate_pattern(pattern)
