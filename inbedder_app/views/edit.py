"""The edit view (issue 14): rename, merge, split, move documents, mark "not interesting", undo/redo,
and "Add documents" that places a new file into the saved run shown (no refit).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from inbedder_app import editing
from inbedder_app.resources import shared_embedding_cache, shared_encoder
from inbedder_app.state import Workspace, kept, short_key
from inbedder_app.text import md_text
from inbedder_core import plots
from inbedder_core.analysis import names_of
from inbedder_core.cache import CachedEncoder
from inbedder_core.corpus import Corpus, load_corpus
from inbedder_core.edits import merge_edit, move_edit, not_interesting_edit, rename_edit, split_edit
from inbedder_core.encoder import pools_prompt
from inbedder_core.errors import CorpusError, InBedderError
from inbedder_core.living import assign, map_with_new, sizes_with_new
from inbedder_core.placement import reduced_vectors
from inbedder_core.results import NOISE
from inbedder_core.settings import default_cache_dir

ADDED_KEY = "living_added"


def _vectors(run, result) -> np.ndarray:
    """Where a split re-clusters: the run's clustering-space vectors (kept with it), else the 2-D map."""
    vectors = reduced_vectors(run.folder, [r.instruction for r in run.base].index(result.instruction))
    return np.asarray(result.coords) if vectors is None else vectors


def _encoder(ws: Workspace):
    if ws.analysis is not None:
        return ws.analysis.encoder
    return CachedEncoder(shared_encoder(ws.model, ws.analysis_device or "auto", pools_prompt(ws.fingerprint)),
                         shared_embedding_cache(str(default_cache_dir())))


def _history(ws: Workspace, run) -> None:
    cols = st.columns([1, 1, 4])
    if cols[0].button("Undo", key="edit_undo", disabled=not run.log.edits):
        editing.undo(ws, run)
        st.rerun()
    if cols[1].button("Redo", key="edit_redo", disabled=not run.log.undone):
        editing.redo(ws, run)
        st.rerun()
    cols[2].text(f"{len(run.log.edits)} edit(s)" + (": " + "; ".join(e.describe() for e in run.log.edits[-4:])
                                                     if run.log.edits else ""))


def _edit_forms(ws: Workspace, run, result, view: str, texts: list[str]) -> None:
    clusters = [c for c in result.clusters if c.cluster_id != NOISE]
    ids = [c.cluster_id for c in clusters]
    names = names_of(result)
    label = lambda c: f"{names[c]} ({c})"  # noqa: E731
    tabs = st.tabs(["Rename", "Merge", "Split", "Move documents", "Not interesting"])
    edit = None
    with tabs[0], st.form(f"rename_{view}"):
        cluster = st.selectbox("Cluster", ids, format_func=label, key=f"rename_cluster_{view}")
        name = st.text_input("New name", key=f"rename_name_{view}")
        if st.form_submit_button("Rename"):
            edit = rename_edit(result, cluster, name)
    with tabs[1], st.form(f"merge_{view}"):
        chosen = st.multiselect("Clusters to merge (the first keeps its id and name)", ids, format_func=label,
                                key=f"merge_clusters_{view}")
        if st.form_submit_button("Merge"):
            edit = merge_edit(result, chosen)
    with tabs[2], st.form(f"split_{view}"):
        cluster = st.selectbox("Cluster", ids, format_func=label, key=f"split_cluster_{view}")
        parts = st.number_input("Parts", min_value=2, max_value=10, value=2, key=f"split_parts_{view}")
        if st.form_submit_button("Split"):
            edit = split_edit(result, cluster, _vectors(run, result), int(parts))
    with tabs[3]:
        fig = plots.cluster_map(result.coords, result.labels, names, texts,
                                answers=result.answers, height=420)
        event = st.plotly_chart(fig, key=f"move_map_{view}_{len(run.log.edits)}", on_select="rerun",
                                selection_mode=("lasso", "box"), config={"displaylogo": False})
        selected = plots.selected_documents(fig, event.selection if event else None)
        st.text(f"{len(selected):,} document(s) selected on the map (lasso or box)")
        with st.form(f"move_{view}"):
            to = st.selectbox("Move them to", [*ids, NOISE], format_func=lambda c: names.get(c, "Noise"),
                              key=f"move_to_{view}")
            if st.form_submit_button("Move"):
                edit = move_edit(result, selected, to)
    with tabs[4], st.form(f"dull_{view}"):
        cluster = st.selectbox("Cluster", ids, format_func=label, key=f"dull_cluster_{view}")
        value = st.checkbox("Not interesting", value=True, key=f"dull_value_{view}")
        if st.form_submit_button("Mark"):
            edit = not_interesting_edit(result, cluster, value)
    if edit is not None:
        editing.do(ws, run, edit)
        st.rerun()


def _add_documents(ws: Workspace, corpus: Corpus, run, result, view: str) -> None:
    st.subheader("Add documents")
    st.caption("New documents are embedded with the run's model and placed into this map without refitting; "
               "names and clusters stay.")
    upload = st.file_uploader("A file of new documents (same text column)", key=f"add_docs_{view}",
                              type=["csv", "tsv", "txt", "jsonl", "parquet"])
    added = st.session_state.setdefault(ADDED_KEY, {})
    if upload is not None and st.button("Place them", key=f"place_{view}"):
        data = upload.getvalue()
        try:
            new = load_corpus(data, name=upload.name, text_column=corpus.text_column)
        except CorpusError:  # another layout: guess its text column
            new = load_corpus(data, name=upload.name)
        with st.spinner(f"Embedding and placing {len(new):,} documents…"):
            assignment = assign(run, new, _encoder(ws))
        added.clear()
        added[ws.run_id] = (new, assignment, tuple(map(repr, run.log.edits)))
    entry = added.get(ws.run_id)
    if entry is None:
        return
    new, assignment, state = entry
    if state != tuple(map(repr, run.log.edits)):  # the edits changed: place again (same embeddings, cached)
        assignment = assign(run, new, _encoder(ws))
        added[ws.run_id] = (new, assignment, tuple(map(repr, run.log.edits)))
    number = [r.instruction for r in run.base].index(result.instruction)
    placed, drift = assignment.results[number], assignment.drifts[number]
    (st.warning if drift.drifted else st.info)(md_text(drift.describe()))
    show = st.checkbox("Show the new documents on the map", value=True, key=f"show_new_{view}")
    st.plotly_chart(map_with_new(result, corpus.texts, placed, new.texts, show_new=show),
                    key=f"new_map_{view}_{show}", config={"displaylogo": False})
    st.text(f"{len(new):,} new documents placed")
    st.dataframe(sizes_with_new(result, placed), hide_index=True, key=f"new_sizes_{view}")


def render(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    run = editing.living_run(ws)
    if run is None:
        st.info("Edits need a saved run: run an instruction (runs are saved), or reopen one.")
        return
    results = list(ws.results.values())
    by_instruction = {r.instruction: r for r in results}
    instruction = kept(st.selectbox, "Instruction", list(by_instruction), key="edit_instruction",
                       options=list(by_instruction))
    result = by_instruction[instruction]
    view = short_key(ws.run_id, instruction)
    _history(ws, run)
    st.dataframe([{**dataclasses.asdict(c), "top_answers": "; ".join(f"{a} ({n})" for a, n in c.top_answers),
                   "keywords": ", ".join(c.keywords)} for c in result.clusters],
                 hide_index=True, key=f"edit_table_{view}_{len(run.log.edits)}",
                 column_order=["cluster_id", "name", "generated_name", "size", "interesting", "top_answers"])
    try:
        _edit_forms(ws, run, result, view, corpus.texts)
    except InBedderError as error:
        st.error(md_text(str(error)))
    try:
        _add_documents(ws, corpus, run, result, view)
    except InBedderError as error:
        st.error(md_text(str(error)))
