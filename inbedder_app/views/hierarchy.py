"""The hierarchy view (issue 14): each instruction's cluster tree as an icicle, a cut at fewer
clusters (recorded as merges, so it can be undone), and merge suggestions with one-click merges.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from inbedder_app import editing
from inbedder_app.state import Workspace, kept, short_key
from inbedder_app.text import md_text
from inbedder_core.analysis import names_of
from inbedder_core.corpus import Corpus
from inbedder_core.edits import merge_edit
from inbedder_core.errors import InBedderError
from inbedder_core.hierarchy import condensed_tree, cut_merges, icicle_figure, linkage_tree, merge_suggestions
from inbedder_core.placement import reduced_vectors


def _vectors(ws: Workspace, run, instruction: str, result) -> np.ndarray:
    """The clustering-space vectors of the run (kept with it), else the 2-D map."""
    vectors = reduced_vectors(run.folder, [r.instruction for r in run.base].index(instruction))
    return np.asarray(result.coords) if vectors is None else vectors


def render(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    run = editing.living_run(ws)
    if run is None:
        st.info("The hierarchy needs a saved run: run an instruction (runs are saved), or reopen one.")
        return
    by_instruction = {r.instruction: r for r in ws.results.values()}
    instruction = kept(st.selectbox, "Instruction", list(by_instruction), key="tree_instruction",
                       options=list(by_instruction))
    result = by_instruction[instruction]
    view = short_key(ws.run_id, instruction, len(run.log.edits))
    names = names_of(result)
    number = [r.instruction for r in run.base].index(instruction)
    try:
        vectors = _vectors(ws, run, instruction, result)
        tree = None
        clusterer = None if run.log.for_instruction(instruction) else editing.clusterer_of(run, number)
        if clusterer is not None:
            try:
                tree = condensed_tree(result, clusterer)
            except InBedderError:
                tree = None
        tree = tree or linkage_tree(result, vectors)
    except InBedderError as error:
        st.info(md_text(str(error)))
        return
    st.caption("HDBSCAN's own tree: clusters joined where HDBSCAN split them." if tree.source == "hdbscan" else
               "Clusters joined by how close their centres are (Ward linkage of the centroids).")
    st.caption("Each box is sized by documents; click one to zoom in.")
    st.plotly_chart(icicle_figure(tree, names), key=f"icicle_{view}", config={"displaylogo": False})
    n_leaves = len(tree.leaves())
    if n_leaves > 1:
        with st.form(f"cut_{view}"):
            level = st.slider("Cut the tree at this many clusters", 1, n_leaves, n_leaves, key=f"cut_level_{view}")
            if st.form_submit_button("Apply the cut (merges; undo in Edit clusters)"):
                for group in cut_merges(tree, level):
                    editing.do(ws, run, merge_edit(run.results[number], group))
                st.rerun()
    st.subheader("Merge suggestions")
    suggestions = merge_suggestions(result, vectors, corpus.texts)
    if not suggestions:
        st.text("No pair of clusters is both close and sharing top answers.")
    for number, s in enumerate(suggestions):
        cols = st.columns([5, 1])
        cols[0].text(f"{s.name_a}  +  {s.name_b}   (answers shared {100 * s.overlap:.0f}%, "
                     f"distance {s.distance:.2f})\n  e.g. {'; '.join(s.examples_a)}\n  e.g. {'; '.join(s.examples_b)}")
        if cols[1].button("Merge", key=f"suggested_merge_{view}_{number}"):
            editing.do(ws, run, merge_edit(result, [s.a, s.b]))
            st.rerun()
