"""Follow-up questions inside a cluster (``inbedder_core.drill``) with the deterministic ``HashEncoder``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inbedder_core import runs
from inbedder_core.analysis import Analysis, AnalysisSettings
from inbedder_core.cache import CachedEncoder, EmbeddingCache
from inbedder_core.corpus import load_corpus
from inbedder_core.drill import (
    DrillLevel,
    ask,
    breadcrumb,
    chain,
    load_tree,
    path_columns,
    rows_of,
    save_tree,
    scaled_settings,
    subset,
    subset_label,
)
from inbedder_core.encoder import HashEncoder
from inbedder_core.errors import InBedderError

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "banking77.csv"
NEED, FEEL, WHEN = "What does the customer need?", "How does the customer feel?", "When did it happen?"


@pytest.fixture(scope="module")
def sample():
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    keep = frame[frame["intent"].isin(sorted(frame["intent"].unique())[:5])]
    return load_corpus(keep.to_csv(index=False).encode(), name="five.csv")


def test_subset_keeps_rows_in_order(sample):
    part = subset(sample, [5, 1, 3])
    assert part.texts == [sample.texts[i] for i in (5, 1, 3)] and part.ids == [sample.ids[i] for i in (5, 1, 3)]
    assert part.table["text"].tolist() == part.texts and len(part) == 3


def test_scaled_settings():
    s = scaled_settings(AnalysisSettings(min_cluster_size=40, min_samples=30, n_neighbors=15), 1000, 100)
    assert (s.min_cluster_size, s.min_samples, s.n_neighbors) == (4, 4, 15)
    assert scaled_settings(AnalysisSettings(), 1000, 8).n_neighbors == 7
    assert scaled_settings(AnalysisSettings(), 1000, 100).min_cluster_size is None  # automatic scales itself
    assert scaled_settings(AnalysisSettings(k=20), 1000, 12).k == 6


def test_two_levels_deep_with_the_cache_reused(sample, tmp_path):
    hashed = HashEncoder(dim=32)
    cached = CachedEncoder(hashed, EmbeddingCache(tmp_path / "cache"))
    settings = AnalysisSettings(random_state=0, k=4)
    root = Analysis(sample, cached, settings).run(NEED)
    biggest = max((c for c in root.clusters if c.cluster_id >= 0), key=lambda c: c.size)
    rows = rows_of(root.labels, [biggest.cluster_id])
    assert len(rows) == biggest.size
    first = ask(sample, cached, rows, FEEL, settings=settings)
    assert first.labels.shape == (len(rows),) and sum(c.size for c in first.clusters) == len(rows)
    level1 = DrillLevel(-1, 1, [biggest.cluster_id], FEEL, rows, first, subset_label(root, [biggest.cluster_id], 0))
    inner = rows_of(first.labels, [first.clusters[0].cluster_id])
    before = hashed.calls
    again = ask(sample, cached, rows, FEEL, settings=settings)  # same subset, same question: all from the cache
    assert hashed.calls == before and np.array_equal(again.labels, first.labels)
    second = ask(sample, cached, rows[inner], WHEN, settings=settings)
    level2 = DrillLevel(0, 1, [first.clusters[0].cluster_id], WHEN, rows[inner], second,
                        subset_label(first, [first.clusters[0].cluster_id], 0))
    levels = [level1, level2]
    path = chain(levels, 1)
    assert path == levels
    crumbs = breadcrumb(NEED, path)
    assert crumbs[0] == "corpus" and crumbs[1] == f"question 1: {NEED}" and crumbs[-1] == f"question 3: {WHEN}"
    assert crumbs[2].startswith('cluster "')
    frame = path_columns(len(sample), path, NEED)
    assert list(frame.columns) == ["path", "cluster_level2", "label_level2", "cluster_level3", "label_level3"]
    assert (frame["cluster_level2"] != "").sum() == len(rows) and (frame["cluster_level3"] != "").sum() == len(inner)
    outside = np.setdiff1d(np.arange(len(sample)), rows)
    assert (frame["label_level2"].iloc[outside] == "").all() and (frame["path"].iloc[outside] == "").all()
    inside = frame["path"].iloc[rows[inner][0]]
    assert inside.startswith(NEED + " > cluster ") and inside.endswith(f" > {WHEN}")
    info = runs.save_run(sample, [root], model="hash", settings={}, root=tmp_path / "runs")
    assert load_tree(info.corpus_hash, info.run_id, tmp_path / "runs") == []
    save_tree(levels, info.corpus_hash, info.run_id, tmp_path / "runs")
    back = load_tree(info.corpus_hash, info.run_id, tmp_path / "runs")
    assert [(lv.parent, lv.instruction, lv.label) for lv in back] == [(lv.parent, lv.instruction, lv.label)
                                                                       for lv in levels]
    assert np.array_equal(back[1].indices, level2.indices) and np.array_equal(back[1].result.labels, second.labels)
    assert back[0].result.clusters == first.clusters


def test_bad_choices_say_what_to_do(sample):
    labels = np.array([0, 0, 1])
    with pytest.raises(InBedderError, match=r"cluster ids \[7\] label no document"):
        rows_of(labels, [7])
    with pytest.raises(InBedderError, match="at least 10"):
        ask(sample, HashEncoder(), [0, 1, 2], FEEL, settings=AnalysisSettings())
    with pytest.raises(InBedderError, match="broken"):
        chain([], 0)
