"""The explore view: one instruction's map, its quality, the cluster table and the documents of a
cluster or of a lasso selection, searchable.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import streamlit as st

from inbedder_app.state import Workspace, _bump, kept, short_key
from inbedder_core import plots
from inbedder_core.analysis import (
    AnalysisSettings,
    names_of,
)
from inbedder_core.corpus import (
    Corpus,
)
from inbedder_core.presentation import answer_frame, cluster_frame, document_frame
from inbedder_core.results import NOISE

# --------------------------------------------------------------------------- views


def _pick_cluster_from_table(table_key: str, pick_key: str, cluster_ids: list[int], map_version_key: str) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state[pick_key] = cluster_ids[rows[0]]
        _bump(map_version_key)  # clears a lasso


def render(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    results = list(ws.results.values())
    by_instruction = {r.instruction: r for r in results}
    instruction = kept(st.selectbox, "Instruction", list(by_instruction), key="explore_instruction",
                       options=list(by_instruction))
    result = by_instruction[instruction]
    view = short_key(ws.run_id, instruction)  # widget keys of this map: fresh after every (re)computation
    quality = result.quality
    metrics = st.columns(4)
    metrics[0].metric("Documents", f"{len(corpus):,}")
    metrics[1].metric("Clusters", f"{sum(1 for c in result.clusters if c.cluster_id != NOISE)}")
    metrics[2].metric("Noise", f"{100 * float(quality.get('noise_share') or 0):.1f}%")
    silhouette = quality.get("silhouette")
    metrics[3].metric("Silhouette", "n/a" if silhouette is None else f"{float(silhouette):.2f}")
    settings = ws.settings or AnalysisSettings()
    if not any(c.cluster_id != NOISE for c in result.clusters) and settings.k is None:
        size = settings.as_dict(len(corpus))["min_cluster_size"]
        st.warning(f"No clusters: every document is noise. A cluster needs at least {size:,} documents "
                   f"(min cluster size) here, out of {len(corpus):,}; lower 'HDBSCAN min cluster size' in the "
                   "sidebar (0 = automatic), or use KMeans, then Apply.")
    naming_errors = list(quality.get("naming_errors") or [])  # type: ignore[call-overload]
    if naming_errors:
        st.warning(f"The LLM could not name every cluster ({len(naming_errors)} problem(s)); keyword names are "
                   "shown where it failed. Check the endpoint, model and key in the sidebar, then Apply.")
        with st.expander("Naming problems"):
            st.text("\n".join(map(str, naming_errors)))

    table = corpus.table
    columns = [c for c in map(str, table.columns)  # not the texts, nor an id-like column (every value unique)
               if c != corpus.text_column and (len(table) < 2 or table[c].nunique(dropna=False) < len(table))]
    colour_options: list[str | None] = [None, *([gold] if gold else []), *[c for c in columns if c != gold]]
    colour = kept(st.selectbox, "Colour by", colour_options, key="colour_by", options=colour_options,
                  format_func=lambda c: "Cluster" if c is None else (f"Gold label: {c}" if c == gold else c))
    color_by = None if colour is None else (colour, corpus.table[colour].tolist())
    fig = plots.cluster_map(result.coords, result.labels, names_of(result), corpus.texts, answers=result.answers,
                            color_by=color_by)
    version_key = f"map_version_{view}"
    map_key = f"map_{view}_{short_key(colour)}_{st.session_state.get(version_key, 0)}"
    st.caption("Hover a point to read it; lasso or box-select points to list them below.")
    common = answer_frame(result)
    beside = st.columns([3, 1]) if len(common) else [st.container()]
    with beside[0]:
        event = st.plotly_chart(fig, key=map_key, on_select="rerun", selection_mode=("lasso", "box"),
                                config={"displaylogo": False, "scrollZoom": True})
    if len(common):
        with beside[1]:
            st.markdown("**Most common answers**")
            st.dataframe(common, hide_index=True, height=min(560, 38 + 35 * len(common)),
                         column_config={"share": st.column_config.NumberColumn("share", format="%.1f%%")})
    lassoed = plots.selected_documents(fig, event.selection if event else None)
    table_version_key = f"cluster_table_version_{view}"
    pick_key = f"cluster_pick_{view}"
    table_key = f"cluster_table_{view}_{st.session_state.get(table_version_key, 0)}"
    cluster_ids = [c.cluster_id for c in result.clusters]
    st.subheader("Clusters")
    st.caption("Click a row to list its documents.")
    st.dataframe(cluster_frame(result), hide_index=True, key=table_key, on_select=functools.partial(
                     _pick_cluster_from_table, table_key, pick_key, cluster_ids, version_key),
                 selection_mode="single-row", height=min(420, 38 + 35 * len(cluster_ids)),
                 column_config={"share": st.column_config.NumberColumn("share", format="%.1f%%"),
                                "description": st.column_config.TextColumn("description", width="large")})

    st.subheader("Documents")
    sizes = {c.cluster_id: c.size for c in result.clusters}
    names = names_of(result)
    pick = kept(st.selectbox, "Show documents of", [None, *cluster_ids], key=pick_key, options=[None, *cluster_ids],
                disabled=bool(lassoed), on_change=_bump, args=(table_version_key,),  # clears a stale table row
                format_func=lambda c: "All clusters" if c is None else f"{names[c]} ({sizes[c]:,})")
    if lassoed:
        st.text(f"{len(lassoed):,} documents selected on the map; they are listed instead of a cluster "
                "(double-click the map, or click a row of the cluster table, to clear the selection).")
        indices: Sequence[int] = lassoed
    elif pick is None:
        indices = range(len(corpus))
    else:
        indices = [int(i) for i in (result.labels == pick).nonzero()[0]]
    search = kept(st.text_input, "Search texts and answers", key="doc_search", placeholder="e.g. card")
    frame = document_frame(corpus, result, indices, gold, search)
    st.caption(f"{len(frame):,} documents")
    st.dataframe(frame, hide_index=True, column_config={"text": st.column_config.TextColumn(
        "text", width="large")})
