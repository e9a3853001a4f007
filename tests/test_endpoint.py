"""``inbedder_core.name.endpoint``: the server's key goes only to the configured endpoint."""

from __future__ import annotations

from inbedder_core.name.endpoint import (
    CUSTOM_ENDPOINT_NEEDS_KEY,
    OPENAI_DEFAULT_URL,
    configured_endpoint,
    llm_endpoint,
    make_labeler,
    naming_choice,
)
from inbedder_core.name.keywords import KeywordLabeler
from inbedder_core.name.llm import LLMLabeler

CONFIGURED = "https://llm.example/v1?token=abc"


def test_the_server_key_goes_only_to_the_configured_endpoint():
    same = llm_endpoint("", "", CONFIGURED, "sk-server")
    assert (same.api_key, same.base_url, same.problem) == ("sk-server", CONFIGURED, "")
    assert "token" not in same.shown
    with_userinfo = llm_endpoint("", "", "https://user:pw@llm.example/v1", "sk-server")
    assert with_userinfo.api_key == "" and "holds a user name or password" in with_userinfo.problem
    assert "pw" not in with_userinfo.problem and "user" not in with_userinfo.shown
    assert llm_endpoint(CONFIGURED + "/", "", CONFIGURED, "sk-server").api_key == "sk-server"
    other = llm_endpoint("http://127.0.0.1:9/v1", "", CONFIGURED, "sk-server")
    assert (other.api_key, other.problem) == ("", CUSTOM_ENDPOINT_NEEDS_KEY)
    own = llm_endpoint("http://127.0.0.1:9/v1", "sk-mine", CONFIGURED, "sk-server")
    assert (own.api_key, own.base_url, own.problem) == ("sk-mine", "http://127.0.0.1:9/v1", "")
    openai = llm_endpoint(OPENAI_DEFAULT_URL, "", "", "sk-server")
    assert (openai.api_key, openai.base_url) == ("sk-server", None)
    assert llm_endpoint("", "", "", "").problem == "no API key configured"
    assert configured_endpoint("") == OPENAI_DEFAULT_URL


def test_naming_choice_holds_no_secret_and_changes_with_the_key():
    one = naming_choice("LLM", " http://x/v1 ", "", "sk-secret-1", "gpt-4o-mini")
    assert one[:3] == ("LLM", "http://x/v1", "gpt-4o-mini") and "sk-secret" not in repr(one)
    assert one != naming_choice("LLM", "http://x/v1", "", "sk-secret-2", "gpt-4o-mini")
    assert naming_choice("Keywords only", "", "m", "", "f")[3] == ""


def test_make_labeler_falls_back_to_keywords_and_says_why():
    labeler, note = make_labeler(("Keywords only", "", "m", ""), "", CONFIGURED, "sk-server")
    assert isinstance(labeler, KeywordLabeler) and note == "keywords"
    labeler, note = make_labeler(("LLM", "http://127.0.0.1:9/v1", "m", ""), "", CONFIGURED, "sk-server")
    assert isinstance(labeler, KeywordLabeler) and note == f"keywords ({CUSTOM_ENDPOINT_NEEDS_KEY})"
    labeler, note = make_labeler(("LLM", "", "m", ""), "", CONFIGURED, "sk-server")
    assert isinstance(labeler, LLMLabeler) and note == "llm (m at https://llm.example/v1)"
    assert "sk-server" not in note
