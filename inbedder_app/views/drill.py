"""Follow-up questions inside a cluster (issue 13): the breadcrumb, the form that asks a question of
some clusters (or a lasso selection) of the current level, and the nested map of each level.

The levels live in ``st.session_state`` per run and are saved beside the saved run
(``inbedder_core.drill.save_tree``), so a reopened run finds them; moving along the breadcrumb
recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st

from inbedder_app.state import Workspace, short_key
from inbedder_core import drill, plots
from inbedder_core.analysis import AnalysisSettings, names_of
from inbedder_core.comparison import pairwise_comparisons
from inbedder_core.corpus import Corpus
from inbedder_core.errors import InBedderError
from inbedder_core.presentation import cluster_frame
from inbedder_core.results import InstructionResult


def _tree(ws: Workspace) -> dict[str, Any]:
    """This run's drill-down state: ``levels`` and the ``current`` level (-1: the corpus-wide map)."""
    trees = st.session_state.setdefault("drill_trees", {})
    key = (ws.corpus_hash, ws.run_id)
    if key not in trees:
        try:
            levels = drill.load_tree(ws.corpus_hash, ws.run_id) if ws.run_id else []
        except InBedderError as error:
            st.warning(str(error))
            levels = []
        trees[key] = {"levels": levels, "current": -1, "root": {}}
    return trees[key]


def _go(tree: dict[str, Any], index: int) -> None:
    tree["current"] = index


def render(ws: Workspace, corpus: Corpus, result: InstructionResult, picked: int | None,
           lassoed: Sequence[int]) -> None:
    """Below the Explore map of ``result`` (question ``picked``'s cluster or the lasso preselected)."""
    tree = _tree(ws)
    levels: list[drill.DrillLevel] = tree["levels"]
    current = tree["current"]
    if current >= 0 and levels[current].question != _question_number(ws, result):
        current = tree["current"] = -1  # another question was picked in Explore
    st.subheader("Follow-up question")
    path = drill.chain(levels, current) if current >= 0 else []
    crumbs = drill.breadcrumb(result.instruction, path)
    cols = st.columns(len(path) + 2)
    cols[0].button("corpus", key=f"crumb_root_{current}", on_click=_go, args=(tree, -1), disabled=current < 0)
    cols[1].caption(crumbs[1])
    for depth, level in enumerate(path, start=2):
        target = levels.index(level)
        cols[depth].button(f"› {level.label} › {level.instruction}", key=f"crumb_{target}_{current}",
                           on_click=_go, args=(tree, target), disabled=target == current)
    st.caption(" › ".join(crumbs))
    children = [i for i, level in enumerate(levels) if level.parent == current
                and (current >= 0 or level.question == _question_number(ws, result))]
    for child in children:  # follow-ups asked earlier from here: reopened without recomputing
        st.button(f"↳ {levels[child].label} › {levels[child].instruction}", key=f"child_{child}_{current}",
                  on_click=_go, args=(tree, child))
    here = levels[current].result if current >= 0 else result
    here_rows = levels[current].indices if current >= 0 else np.arange(len(corpus))
    if current >= 0:
        _render_level(corpus, levels[current], levels, result)
    _ask_form(ws, corpus, tree, here, here_rows, picked if current < 0 else None,
              lassoed if current < 0 else [], _question_number(ws, result))


def _question_number(ws: Workspace, result: InstructionResult) -> int:
    return list(ws.results).index(result.instruction) + 1 if result.instruction in ws.results else 1


def _ask_form(ws: Workspace, corpus: Corpus, tree: dict[str, Any], here: InstructionResult, rows: np.ndarray,
              picked: int | None, lassoed: Sequence[int], question: int) -> None:
    names = names_of(here)
    ids = [c.cluster_id for c in here.clusters]
    form_key = f"drill_form_{short_key(ws.run_id, tree['current'], here.instruction)}"
    with st.form(form_key):
        chosen = st.multiselect("Inside clusters", ids, default=[picked] if picked in ids else [],
                                format_func=lambda c: f"{names[c]} ({sum(1 for x in here.labels if x == c):,})",
                                key=f"{form_key}_clusters",
                                help="Leave empty to use the documents selected with the lasso on the map.")
        instruction = st.text_input("Follow-up question", key=f"{form_key}_question",
                                    placeholder="e.g. How does the customer feel?")
        asked = st.form_submit_button("Ask inside")
    if not asked:
        return
    if chosen:
        local = drill.rows_of(here.labels, chosen)
    elif lassoed:
        local = np.asarray(sorted(lassoed), dtype=np.int64)
    else:
        raise InBedderError("choose one or more clusters (or lasso documents on the map) to ask the question inside")
    if ws.analysis is None:
        raise InBedderError("this run was reopened without its model: run its question again, then ask inside")
    label = drill.subset_label(here, chosen, len(local))
    with st.status(f"Asking {instruction!r} of {len(local):,} documents…", expanded=False):
        sub = drill.ask(corpus, ws.analysis.encoder, rows[local], instruction,
                        settings=ws.settings or AnalysisSettings(), labeler=ws.analysis.labeler, n_parent=len(rows))
    tree["levels"].append(drill.DrillLevel(tree["current"], question, list(map(int, chosen)), instruction,
                                           rows[local], sub, label))
    tree["current"] = len(tree["levels"]) - 1
    if ws.run_id:
        drill.save_tree(tree["levels"], ws.corpus_hash, ws.run_id)
    st.rerun()


def _render_level(corpus: Corpus, level: drill.DrillLevel, levels: list[drill.DrillLevel],
                  root: InstructionResult) -> None:
    result = level.result
    texts = [corpus.texts[i] for i in level.indices]
    st.text(f"{len(level.indices):,} documents · {level.label} · {level.instruction}")
    fig = plots.cluster_map(result.coords, result.labels, names_of(result), texts, answers=result.answers,
                            title=level.instruction, height=480)
    st.plotly_chart(fig, key=f"drill_map_{levels.index(level)}", config={"displaylogo": False})
    st.dataframe(cluster_frame(result), hide_index=True, key=f"drill_table_{levels.index(level)}",
                 column_config={"share": st.column_config.NumberColumn("share", format="%.1f%%")})
    parent = levels[level.parent].result if level.parent >= 0 else root
    parent_rows = levels[level.parent].indices if level.parent >= 0 else np.arange(len(corpus))
    position = {int(r): p for p, r in enumerate(parent_rows.tolist())}
    before = np.array([parent.labels[position[int(r)]] for r in level.indices])
    pair = pairwise_comparisons({"parent question": before, "follow-up": result.labels})
    st.caption(f"Compare with the parent question on these documents: ARI {pair.ari.iloc[0, 1]:.2f}, "
               f"NMI {pair.nmi.iloc[0, 1]:.2f} (low: the follow-up question splits them another way).")
