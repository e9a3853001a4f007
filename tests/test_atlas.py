"""inbedder_core.atlas: the threshold setting, the table sent to Embedding Atlas, the sampling rule, the selection
predicate applied back (and refused when bad), the component folder served offline; the export of big maps."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from inbedder_core import atlas, runs
from inbedder_core.corpus import load_corpus
from inbedder_core.errors import MapError
from inbedder_core.presentation import map_html, map_parquet
from inbedder_core.results import NOISE


def _map(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 5, n)
    coords = rng.normal(size=(n, 2))
    frame = atlas.map_frame(coords, labels, {i: f"c{i}" for i in range(5)}, [f"text {i} " * 40 for i in range(n)],
                            [f"a{label}" for label in labels])
    return labels, coords, frame


def test_threshold_setting(monkeypatch):
    assert atlas.atlas_threshold() == atlas.DEFAULT_ATLAS_THRESHOLD
    monkeypatch.setenv(atlas.ATLAS_THRESHOLD_ENV, "2000")
    assert atlas.atlas_threshold() == 2000
    monkeypatch.setenv(atlas.ATLAS_THRESHOLD_ENV, "lots")
    with pytest.raises(MapError, match="INBEDDER_ATLAS_THRESHOLD='lots' is not a positive whole number"):
        atlas.atlas_threshold()


def test_map_frame_sends_only_what_the_map_needs():
    labels, coords, frame = _map()
    assert list(frame.columns) == ["x", "y", "cluster", "answer", "text", atlas.ROW_COLUMN]
    assert frame["x"].dtype == np.float32 and frame[atlas.ROW_COLUMN].tolist() == list(range(len(labels)))
    assert frame["cluster"].cat.categories.dtype == object  # Arrow "string", which the component reads
    assert set(frame["cluster"].cat.categories) == {"Noise", "c0", "c1", "c2", "c3", "c4"}
    assert frame["text"].str.len().max() == atlas.TEXT_CHARS
    assert (frame["cluster"] == "Noise").sum() == (labels == NOISE).sum()


def test_sample_rows_keeps_every_clusters_share():
    labels = np.repeat([NOISE, 0, 1, 2], [50, 700, 240, 10])
    rows = atlas.sample_rows(labels, 100, random_state=1)
    assert len(rows) == 100 and len(set(rows)) == 100 and list(rows) == sorted(rows)
    assert np.bincount(labels[rows] + 1).tolist() == [5, 70, 24, 1]
    assert atlas.sample_rows(labels, 5000).tolist() == list(range(1000))  # under the cap: everything


def test_selected_rows_applies_the_predicate_to_every_document():
    labels, coords, frame = _map()
    assert atlas.selected_rows(frame, "\"cluster\" IN ('c1')") == np.flatnonzero(labels == 1).tolist()
    inside = atlas.selected_rows(frame, "x > 0 AND y < 0.5")
    assert inside == np.flatnonzero((coords[:, 0] > 0) & (coords[:, 1] < 0.5)).tolist()
    assert atlas.selected_rows(frame, None) == [] and atlas.selected_rows(frame, "  ") == []
    shown = atlas.sample_rows(labels, 100)  # a sampled map: row numbers refer to the points sent
    assert atlas.selected_rows(frame, "__row_index__ IN (0, 7)", shown) == sorted(shown[[0, 7]].tolist())


@pytest.mark.parametrize("bad, said", [
    ("x >", "syntax error"),
    ("1=1); SELECT 1; SELECT (1", "not one SQL condition"),
    ("x > (SELECT count(*) FROM read_csv('/etc/passwd'))", "file system operations are disabled"),
    ("nosuch > 1", "nosuch"),
])
def test_a_bad_predicate_is_one_clear_error(bad, said):
    _, _, frame = _map(50)
    with pytest.raises(MapError, match="clear the selection") as caught:
        atlas.selected_rows(frame, bad)
    assert said in str(caught.value)


def test_component_folder_serves_duckdb_from_this_machine(tmp_path):
    pytest.importorskip("embedding_atlas")
    folder = atlas.component_folder(tmp_path)
    (script,) = (folder / "assets").glob("index-*.js")
    text = script.read_text("utf-8")
    assert "cdn.jsdelivr.net/npm/" not in text and "new URL(`../duckdb/`,import.meta.url)" in text
    for name in atlas.DUCKDB_FILES:
        assert (folder / "duckdb" / name).stat().st_size > 100_000
    assert (folder / "duckdb" / "duckdb-eh.wasm").read_bytes()[:4] == b"\0asm"
    assert atlas.component_folder(tmp_path) == folder  # made once


def test_big_export_draws_a_stated_sample_and_the_parquet_has_everything(tmp_path):
    data, run_id = atlas.synthetic_run(3000, n_clusters=6, root=tmp_path)
    corpus = load_corpus(data, name="synthetic.csv")
    result = runs.load_run(runs.corpus_hash(corpus), run_id, root=tmp_path).results[0]
    page = map_html(corpus, result, max_points=1000).decode("utf-8")
    assert "a sample: 1,000 of 3,000 documents" in page and "scattergl" in page
    whole = map_html(corpus, result).decode("utf-8")
    assert "a sample" not in whole
    table = pd.read_parquet(io.BytesIO(map_parquet(corpus, result)))
    assert len(table) == 3000 and table["text"].tolist() == list(corpus.texts)
    assert table["cluster"].tolist() == result.labels.tolist()
