"""The export view: download buttons for the labeled CSV, the cluster summary, the run report and
one map as standalone HTML.
"""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from inbedder_app.editing import edits_of
from inbedder_app.state import Workspace, kept
from inbedder_core import atlas
from inbedder_core.corpus import (
    Corpus,
)
from inbedder_core.presentation import HTML_MAP_POINTS, labeled_csv, map_html, map_parquet, report_json, summary_csv


def render(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    results = list(ws.results.values())
    stem = Path(corpus.source).stem or "corpus"
    st.text("The labeled CSV has every input column plus answer_i, cluster_i, label_i, description_i and the map "
            "coordinates x_i, y_i per "
            "instruction (the same format as the command line's 'inbedder cluster').")
    by_instruction = {r.instruction: r for r in results}
    chosen = kept(st.selectbox, "Map to download as a standalone HTML page", list(by_instruction), key="export_map",
                  options=list(by_instruction))
    cols = st.columns(4)
    cols[0].download_button("Labeled CSV", data=functools.partial(labeled_csv, corpus, results),
                            file_name=f"{stem}.labeled.csv", mime="text/csv", key="download_labeled",
                            on_click="ignore")
    cols[1].download_button("Cluster summary CSV", data=functools.partial(summary_csv, results, corpus),
                            file_name=f"{stem}.clusters.csv", mime="text/csv", key="download_summary",
                            on_click="ignore")
    cols[2].download_button("Run report (JSON)", data=functools.partial(
                                report_json, corpus, results, settings=ws.settings, model=ws.model,
                                fingerprint=ws.fingerprint, labeler=ws.naming_note, gold=gold,
                                edits=edits_of(ws)),
                            file_name=f"{stem}.json", mime="application/json", key="download_report",
                            on_click="ignore")
    number = results.index(by_instruction[chosen]) + 1
    cols[3].download_button("Map as HTML", data=functools.partial(map_html, corpus, by_instruction[chosen]),
                            file_name=f"{stem}.map_{number}.html", mime="text/html", key="download_map",
                            on_click="ignore")
    if len(corpus) > atlas.atlas_threshold():  # issue 15: a big map's page holds a sample; the table holds all
        if len(corpus) > HTML_MAP_POINTS:
            st.text(f"The map's HTML page draws {HTML_MAP_POINTS:,} of the {len(corpus):,} documents (every cluster "
                    "keeps its share): a page with all of them would be too big to open. The map table (Parquet) "
                    "has every document's place, cluster, answer and text.")
        st.download_button("Map table (Parquet)", data=functools.partial(map_parquet, corpus, by_instruction[chosen]),
                           file_name=f"{stem}.map_{number}.parquet", mime="application/octet-stream",
                           key="download_map_parquet", on_click="ignore")
    if ws.run_id:
        st.text(f"This run is saved as {ws.run_id}; reopen it from 'Earlier runs on this corpus'.")
