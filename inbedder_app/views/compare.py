"""The compare view: two instructions' maps side by side with one document followed in both, their
flows and contingency, pairwise agreement over all instructions, and scores against gold labels.
"""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from inbedder_app.config import MAX_PICKABLE_DOCUMENTS
from inbedder_app.state import Workspace, kept, per_run
from inbedder_core import plots
from inbedder_core.analysis import (
    compare_pair,
    compare_results,
    gold_scores,
    names_of,
)
from inbedder_core.corpus import (
    Corpus,
)


def _document_label(corpus: Corpus, i: int) -> str:
    return f"{corpus.ids[i]}: {plots.truncate(corpus.texts[i].replace(chr(10), ' '), 90)}"


def render(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    results = list(ws.results.values())
    if len(results) < 2:
        st.info("Run at least two instructions (one per line) to compare their maps.")
    else:
        instructions = [r.instruction for r in results]
        left, right = st.columns(2)
        with left:
            a = kept(st.selectbox, "Instruction A", instructions, index=0, key="compare_a", options=instructions)
        with right:
            b = kept(st.selectbox, "Instruction B", instructions, index=1, key="compare_b", options=instructions)
        ra, rb = ws.results[a], ws.results[b]
        search = kept(st.text_input, "Find a document to follow in both maps", key="compare_search",
                               placeholder="words from its text")
        needle = search.strip().lower()
        matches = [i for i, t in enumerate(corpus.texts) if not needle or needle in t.lower()]
        if not matches:
            st.text("No document contains that text.")
            doc = None
        else:
            pickable = matches[:MAX_PICKABLE_DOCUMENTS]
            doc = kept(st.selectbox, "Document", pickable, key="compare_doc", options=pickable,
                        format_func=functools.partial(_document_label, corpus))
        maps = st.columns(2)
        for column, result, side in ((maps[0], ra, "A"), (maps[1], rb, "B")):
            fig = plots.cluster_map(result.coords, result.labels, names_of(result), corpus.texts,
                                    answers=result.answers, highlight=doc, title=f"{side}: {result.instruction}",
                                    height=460, show_legend=False)
            column.plotly_chart(fig, key=f"compare_map_{side}", config={"displaylogo": False})
            if doc is not None:
                name = names_of(result).get(int(result.labels[doc]), "")
                answer = f"; answer: {result.answers[doc]}" if result.answers is not None else ""
                column.text(f"{side}: cluster {name}{answer}")
        if doc is not None:
            st.text(f"Picked document {corpus.ids[doc]}: {corpus.texts[doc]}")
        comparison = per_run(ws, ("pair", a, b), lambda: compare_pair(ra, rb))
        scores = st.columns(2)
        scores[0].metric("ARI (A vs B)", f"{comparison.ari:.3f}")
        scores[1].metric("NMI (A vs B)", f"{comparison.nmi:.3f}")
        sankey_tab, heatmap_tab, table_tab = st.tabs(["Flows (Sankey)", "Contingency heatmap", "Contingency table"])
        with sankey_tab:
            st.plotly_chart(plots.cluster_sankey(comparison.contingency), key="compare_sankey")
        with heatmap_tab:
            st.plotly_chart(plots.contingency_heatmap(comparison.contingency), key="compare_heatmap")
        with table_tab:
            st.dataframe(comparison.contingency)
        st.subheader("All instructions: pairwise agreement")
        pairwise = per_run(ws, ("pairwise",), lambda: compare_results(results))
        grid = st.columns(2)
        grid[0].plotly_chart(plots.score_matrix(pairwise.ari, title="ARI", zmin=-1.0), key="pairwise_ari")
        grid[1].plotly_chart(plots.score_matrix(pairwise.nmi, title="NMI"), key="pairwise_nmi")
    if gold:
        st.subheader("Against the gold labels")
        st.text(f"Each clustering scored against the column {gold!r} (noise counts as one cluster).")
        scores = per_run(ws, ("gold", gold), lambda: pd.DataFrame(gold_scores(results, corpus.table[gold].tolist())))
        st.dataframe(scores.drop(columns=["nmi"]), hide_index=True,  # NMI (arithmetic) is the V-measure
                     column_config={"v_measure": st.column_config.NumberColumn("v_measure (= NMI)")})
