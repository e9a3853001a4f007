"""Settings read from the environment: the cache directory and positive whole-number caps."""

from __future__ import annotations

import pytest

from inbedder_core.cache import CachedEncoder, EmbeddingCache
from inbedder_core.encoder import HashEncoder
from inbedder_core.errors import CorpusError, RunError
from inbedder_core.settings import default_cache_dir, positive_int_setting


def test_cache_lives_where_inbedder_cache_dir_says(tmp_path, monkeypatch):
    monkeypatch.setenv("INBEDDER_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    cache = EmbeddingCache()
    CachedEncoder(HashEncoder(), cache).encode(["a", "b", "c"], "q ?")
    assert (tmp_path / "here" / "embeddings.sqlite3").exists()
    assert cache.stats().n_vectors == 3


def test_positive_int_setting_reads_value_then_environment_then_default(monkeypatch) -> None:
    monkeypatch.delenv("INBEDDER_TEST_CAP", raising=False)
    assert positive_int_setting(None, "INBEDDER_TEST_CAP", 7, "cap", CorpusError) == 7
    assert positive_int_setting(None, "INBEDDER_TEST_CAP", None, "cap", CorpusError) is None
    monkeypatch.setenv("INBEDDER_TEST_CAP", " 12 ")
    assert positive_int_setting(None, "INBEDDER_TEST_CAP", 7, "cap", CorpusError) == 12
    assert positive_int_setting(3, "INBEDDER_TEST_CAP", 7, "cap", CorpusError) == 3
    for raw in ("lots", "0", "-4", "1.5"):
        monkeypatch.setenv("INBEDDER_TEST_CAP", raw)
        with pytest.raises(RunError, match=f"INBEDDER_TEST_CAP='{raw}' is not a positive whole number"):
            positive_int_setting(None, "INBEDDER_TEST_CAP", 7, "cap", RunError)
    with pytest.raises(CorpusError, match="cap=True is not a positive whole number"):
        positive_int_setting(True, "INBEDDER_TEST_CAP", 7, "cap", CorpusError)
