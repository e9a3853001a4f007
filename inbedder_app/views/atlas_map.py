"""The big map (issue 15), drawn inside ``explore`` above ``INBEDDER_ATLAS_THRESHOLD`` documents: Embedding
Atlas's Streamlit component (coloured by cluster, hover card with text, answer and cluster name, its search,
lasso and cross-filters), fed with ``inbedder_core.atlas.map_frame``; its selection comes back as an SQL
predicate that ``atlas.selected_rows`` turns into the documents listed below the map.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from inbedder_core import atlas
from inbedder_core.analysis import names_of
from inbedder_core.corpus import Corpus
from inbedder_core.errors import MapError
from inbedder_core.results import InstructionResult


@functools.cache
def _component(folder: str):
    """The component, declared once per process from the folder ``atlas.component_folder`` made."""
    return components.declare_component("embedding_atlas_map", path=folder)


def _tables(view: str, corpus: Corpus, result: InstructionResult,
            max_points: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(every document's map row, the rows sent, the sent table), made once per map in this session."""
    memo = st.session_state.setdefault("atlas_tables", {})
    if memo.get("view") != (view, max_points):
        memo.clear()
        full = atlas.map_frame(result.coords, result.labels, names_of(result), corpus.texts, answers=result.answers)
        shown = atlas.sample_rows(result.labels, max_points)
        memo.update(view=(view, max_points), full=full, shown=shown,
                    sent=full if len(shown) == len(full) else full.iloc[shown].reset_index(drop=True))
    return memo["full"], memo["shown"], memo["sent"]


def render(view: str, corpus: Corpus, result: InstructionResult, lasso_key: str, map_key: str) -> None:
    """Draw the map; a new selection predicate replaces the kept selection (``lasso_key``) with its documents.

    Raises:
        MapError: embedding-atlas is missing or not laid out as expected.
    """
    from embedding_atlas.options import make_embedding_atlas_props

    max_points = atlas.atlas_max_points()
    full, shown, sent = _tables(view, corpus, result, max_points)
    names = names_of(result)
    props = make_embedding_atlas_props(x="x", y="y", text="text", point_size=None,
                                       labels=atlas.label_points(result.coords[shown], result.labels[shown], names))
    # colour by cluster from the start (the analyst can recolour inside the map)
    props["defaultChartsConfig"] = {"embedding": {"data": {"x": "x", "y": "y", "text": "text", "category": "cluster"}}}
    if len(shown) < len(full):
        st.info(f"Showing {len(shown):,} of {len(full):,} points (every cluster keeps its share; "
                f"INBEDDER_ATLAS_MAX_POINTS={max_points:,}). A selection by place, cluster, answer or search applies "
                "to all documents; picked points only to the shown ones.")
    st.caption(f"Map of {len(full):,} documents drawn by Embedding Atlas (more than "
               f"{atlas.atlas_threshold():,}: INBEDDER_ATLAS_THRESHOLD). Colour, search and filters are inside the "
               "map; box with shift-drag, lasso with shift+cmd/meta-drag (or the map's lasso button) to list documents "
               "below. Points are drawn with WebGPU where the browser has it, else WebGL2.")
    component = _component(str(atlas.component_folder()))
    value = component(data_frame=sent, props=props, key=map_key, default={})
    predicate = (value or {}).get("predicate") if isinstance(value, dict) else None
    seen_key = f"{map_key}::predicate"
    if predicate == st.session_state.get(seen_key):
        return  # nothing new from the map: the kept selection (or its clearing elsewhere) stands
    st.session_state[seen_key] = predicate
    try:
        chosen = atlas.selected_rows(full, predicate, shown)
    except MapError as error:
        st.session_state.pop(lasso_key, None)
        st.warning(str(error))
        return
    if predicate:
        st.session_state[lasso_key] = chosen
    elif st.session_state.pop(lasso_key, None) is None:
        return
    st.rerun()  # the list below the map was drawn before this selection arrived
