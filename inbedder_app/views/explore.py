"""The explore view: one instruction's map (cluster names drawn on it, colours by cluster or by any
column, a hover card with the columns the analyst picks), its quality, the cluster table with
representative documents, and the documents of a cluster, a lasso selection or a search.

State rules (each covered by ``tests/test_app.py``):

- The filters sit above the map and every active one is listed under it, each with its own
  button to undo it: the map selection (lasso or box), the cluster, the search.
- The map brings forward exactly the documents listed below it (the rest fades).
- A map selection is kept in this session (not in the chart), so it survives changing the
  colouring, the hover columns or the search; "Clear selection" (or a click on a cluster row)
  ends it.
- Clicking a cluster row shows that cluster; unticking the row shows all clusters again.
- When nothing is listed, the app says which filter left nothing and how to undo it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from inbedder_app.state import Workspace, _bump, kept, short_key
from inbedder_app.text import md_text
from inbedder_app.views import atlas_map  # issue 15: Embedding Atlas above the threshold
from inbedder_app.views import drill as drill_view  # issue 13: follow-up questions
from inbedder_core import atlas, plots
from inbedder_core.analysis import (
    AnalysisSettings,
    names_of,
)
from inbedder_core.corpus import (
    Corpus,
)
from inbedder_core.presentation import answer_frame, cluster_frame, document_frame, search_hits
from inbedder_core.results import NOISE

LISTED_ROWS = 20_000  # most documents listed under the map (a million rows would not fit one message)

# --------------------------------------------------------------------------- callbacks


def _pick_cluster_from_table(table_key: str, pick_key: str, pick_version_key: str, cluster_ids: list[int],
                             lasso_key: str) -> None:
    """A ticked row shows its cluster (and ends a map selection); an unticked row shows all clusters."""
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state[pick_key] = cluster_ids[rows[0]]
    else:  # a new picker, at its default: set to None, a selectbox would keep showing the old choice
        _bump(pick_version_key)
    st.session_state.pop(lasso_key, None)


def _keep_selection(map_key: str, lasso_key: str, fig: go.Figure) -> None:
    """The map reported a selection: keep its documents in the session (an empty one ends it)."""
    event = st.session_state.get(map_key)
    chosen = plots.selected_documents(fig, event.selection if event else None)
    if chosen:
        st.session_state[lasso_key] = chosen
    else:
        st.session_state.pop(lasso_key, None)


def _clear(*keys: str, bump: tuple[str, ...] = ()) -> None:
    """Button callback: end a filter (the search is emptied, other keys dropped; ``bump``: widgets to renew)."""
    for key in keys:
        if key == "doc_search":
            st.session_state[key] = ""
        else:
            st.session_state.pop(key, None)
    for counter in bump:
        _bump(counter)


# --------------------------------------------------------------------------- view


def _column_choices(corpus: Corpus, gold: str | None) -> tuple[list[str | None], list[str]]:
    """(colour options, hover options): every column but the texts. Colour leaves out columns whose every
    value differs (ids: one colour each says nothing) unless they hold fractional numbers (a measurement,
    coloured on a scale); the hover card may show any column."""
    table = corpus.table
    columns = [c for c in map(str, table.columns) if c != corpus.text_column]

    def colourable(column: str) -> bool:
        values = table[column]
        if len(table) < 2 or values.nunique(dropna=False) < len(table):
            return True
        numbers = pd.to_numeric(values, errors="coerce")
        return bool(numbers.notna().all() and (numbers != numbers.round()).any())

    colour = [None, *([gold] if gold else []), *[c for c in columns if c != gold and colourable(c)]]
    return colour, columns


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
    for note in quality.get("notes") or []:  # type: ignore[union-attr]
        if str(note).startswith("fitted on a random sample"):  # a big corpus: UMAP and HDBSCAN saw a sample
            st.caption(f"{str(note).capitalize()}.")
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

    names = names_of(result)
    sizes = {c.cluster_id: c.size for c in result.clusters}
    cluster_ids = [c.cluster_id for c in result.clusters]
    pick_version_key, lasso_key = f"cluster_pick_version_{view}", f"lasso_{view}"
    pick_key = f"cluster_pick_{view}_{st.session_state.get(pick_version_key, 0)}"
    table_version_key = f"cluster_table_version_{view}"
    map_version_key = f"map_version_{view}"
    colour_options, hover_options = _column_choices(corpus, gold)

    big = len(corpus) > atlas.atlas_threshold()  # issue 15: Embedding Atlas draws maps above the threshold
    missing = atlas.atlas_missing() if big else None
    if missing:
        st.info(f"This map has {len(corpus):,} documents (more than INBEDDER_ATLAS_THRESHOLD="
                f"{atlas.atlas_threshold():,}) but is drawn by plotly, which is slow at this size: {missing}.")
    big = big and not missing
    colour, hover = None, []
    if not big:  # the big map colours and shows hover cards inside itself
        looks = st.columns([1, 2])
        colour = kept(looks[0].selectbox, "Colour by", colour_options, key="colour_by", options=colour_options,
                      format_func=lambda c: "Cluster" if c is None else (f"Gold label: {c}" if c == gold else c))
        hover = kept(looks[1].multiselect, "Hover card shows", hover_options, key="hover_columns",
                     options=hover_options, placeholder="columns to add to the hover card")
    filters = st.columns([2, 1])
    lassoed: list[int] = list(st.session_state.get(lasso_key) or [])
    with filters[0]:
        search = kept(st.text_input, "Search texts and answers", key="doc_search", placeholder="e.g. card")
    with filters[1]:
        pick = kept(st.selectbox, "Show documents of", [None, *cluster_ids], key=pick_key,
                    options=[None, *cluster_ids], disabled=bool(lassoed),
                    on_change=_bump, args=(table_version_key,),  # clears a stale table row
                    format_func=lambda c: "All clusters" if c is None else f"{names[c]} ({sizes[c]:,})")

    # what is listed (and brought forward on the map): a selection or a cluster, then the search within it
    if lassoed:
        base, scope = lassoed, f"the {len(lassoed):,} documents selected on the map"
    elif pick is not None:
        base, scope = [int(i) for i in (result.labels == pick).nonzero()[0]], f"cluster {names[pick]}"
    else:
        base, scope = list(range(len(corpus))), "the corpus"
    hits = search_hits(corpus, result, search) if search.strip() else None
    listed: Sequence[int] = base if hits is None else sorted(set(base) & set(hits))
    filtered = bool(lassoed) or pick is not None or hits is not None
    focus_name = ("search hits" if hits is not None else
                  "selection" if lassoed else f"cluster {plots.truncate(names.get(pick, ''), 30)}")

    map_key = f"map_{view}_{st.session_state.get(map_version_key, 0)}"
    if not big:
        hover_columns = [(c, corpus.table[c].tolist()) for c in hover]
        color_by = None if colour is None else (colour, corpus.table[colour].tolist())
        fig = plots.cluster_map(result.coords, result.labels, names, corpus.texts, answers=result.answers,
                                color_by=color_by, hover_columns=hover_columns,
                                focus=listed if filtered else None, focus_name=focus_name)
        drawn, hidden = fig.layout.meta["names_drawn"], fig.layout.meta["names_hidden"]
        names_note = (f"Names of the {drawn} largest clusters are drawn; {hidden} more would overlap (hover a "
                      "point, or see the table)." if hidden else "Every cluster is named on the map.")
        st.caption(f"{names_note} Hover a point to read it; lasso or box-select points to list them below.")
    common = answer_frame(result)  # issue 16: the most common answers beside the map, when the model answers
    beside = st.columns([3, 1]) if len(common) else [st.container()]
    with beside[0]:
        if big:
            atlas_map.render(view, corpus, result, lasso_key, map_key)
        else:
            st.plotly_chart(fig, key=map_key, on_select=functools.partial(_keep_selection, map_key, lasso_key, fig),
                            selection_mode=("lasso", "box"), config={"displaylogo": False, "scrollZoom": True})
    if len(common):
        with beside[1]:
            st.markdown("**Most common answers**")
            st.dataframe(common, hide_index=True, height=min(560, 38 + 35 * len(common)),
                         column_config={"share": st.column_config.NumberColumn("share", format="%.1f%%")})

    # every active filter, said and undoable
    active = st.columns(4)
    if lassoed:
        active[0].button(f"Clear selection ({len(lassoed):,})", key=f"clear_lasso_{view}",
                         on_click=_clear, args=(lasso_key,), kwargs={"bump": (map_version_key,)})
    if pick is not None and not lassoed:
        active[1].button("Show all clusters", key=f"clear_pick_{view}", on_click=_clear,
                         kwargs={"bump": (pick_version_key, table_version_key)})
    if hits is not None:
        active[2].button("Clear search", key=f"clear_search_{view}", on_click=_clear, args=("doc_search",))
    if lassoed:
        st.text(f"{len(lassoed):,} documents selected on the map; they are listed instead of a cluster "
                "(Clear selection, or click a row of the cluster table, to end it).")

    table_key = f"cluster_table_{view}_{st.session_state.get(table_version_key, 0)}"
    st.subheader("Clusters")
    st.caption("Click a row to list its documents; untick it to list all again. Representative documents are "
               "the ones closest to the cluster's centre on the map.")
    st.dataframe(cluster_frame(result, corpus), hide_index=True, key=table_key, on_select=functools.partial(
                     _pick_cluster_from_table, table_key, pick_key, pick_version_key, cluster_ids, lasso_key),
                 selection_mode="single-row", height=min(420, 38 + 35 * len(cluster_ids)),
                 column_config={"share": st.column_config.NumberColumn("share", format="%.1f%%"),
                                "representative documents": st.column_config.TextColumn(
                                    "representative documents", width="large"),
                                "description": st.column_config.TextColumn("description", width="large")})

    st.subheader("Documents")
    table_rows = listed if not big or len(listed) <= LISTED_ROWS else list(listed)[:LISTED_ROWS]  # capped when big
    frame = document_frame(corpus, result, table_rows, gold, "")
    for column in hover:
        if column not in frame.columns:
            frame[column] = corpus.table[column].iloc[list(table_rows)].tolist()
    st.caption(f"{len(listed):,} documents")
    if len(table_rows) < len(listed):
        st.text(f"The first {len(table_rows):,} are listed here; narrow the list (select on the map, pick a "
                "cluster, search) or download the labeled CSV (Export) for all of them.")
    if not len(frame) and hits is not None:
        everywhere = len(hits)
        st.info(md_text(f"No document in {scope} contains {search.strip()!r}"
                        + (f" ({everywhere:,} in the whole corpus: show all clusters or clear the selection to "
                           "see them)." if everywhere and scope != "the corpus" else ".")))
    st.dataframe(frame, hide_index=True, column_config={"text": st.column_config.TextColumn(
        "text", width="large")})
    drill_view.render(ws, corpus, result, pick, lassoed)  # issue 13: follow-up question inside clusters
