"""The compare view: two instructions' maps side by side with one document followed in both, their
flows (a Sankey of the largest clusters) and contingency (reordered to a diagonal), pairwise agreement
over all instructions, and the question x label-column matrix whenever the corpus has label columns.
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
    corpus_label_matrix,
    names_of,
)
from inbedder_core.comparison import diagonal_contingency, label_columns
from inbedder_core.corpus import (
    Corpus,
)
from inbedder_core.results import InstructionResult


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
                                    height=460, show_legend=False, width_hint=560)
            column.plotly_chart(fig, key=f"compare_map_{side}", config={"displaylogo": False})
            if doc is not None:
                name = names_of(result).get(int(result.labels[doc]), "")
                answer = f"; answer: {result.answers[doc]}" if result.answers is not None else ""
                column.text(f"{side}: cluster {name}{answer}")
        if doc is not None:
            st.text(f"Picked document {corpus.ids[doc]}: {corpus.texts[doc]}")
        with st.spinner("Comparing the two maps…"):  # shown here, where the analyst is looking
            comparison = per_run(ws, ("pair", a, b), lambda: compare_pair(ra, rb))
            colors_a = per_run(ws, ("palette", a), lambda: plots.cluster_palette(ra.coords, ra.labels))
            colors_b = per_run(ws, ("palette", b), lambda: plots.cluster_palette(rb.coords, rb.labels))
        scores = st.columns(2)
        scores[0].metric("ARI (A vs B)", f"{comparison.ari:.3f}")
        scores[1].metric("NMI (A vs B)", f"{comparison.nmi:.3f}")
        sankey_tab, heatmap_tab, table_tab = st.tabs(["Flows (Sankey)", "Contingency heatmap", "Contingency table"])
        with sankey_tab:
            st.caption(f"The {plots.SANKEY_NODES} largest clusters of each side; the rest flow through one "
                       "'other' node, and the smallest flows are left out (the title counts them).")
            st.plotly_chart(plots.cluster_sankey(comparison.contingency, colors_a=colors_a, colors_b=colors_b),
                            key="compare_sankey")
        with heatmap_tab:
            st.caption("Rows and columns are reordered so that matching clusters sit on the diagonal.")
            st.plotly_chart(plots.contingency_heatmap(comparison.contingency), key="compare_heatmap")
        with table_tab:
            st.dataframe(diagonal_contingency(comparison.contingency))
        st.subheader("All instructions: pairwise agreement")
        with st.spinner("Comparing every pair of instructions…"):
            pairwise = per_run(ws, ("pairwise",), lambda: compare_results(results))
        grid = st.columns(2)
        grid[0].plotly_chart(plots.score_matrix(pairwise.ari, title="ARI", zmin=-1.0), key="pairwise_ari")
        grid[1].plotly_chart(plots.score_matrix(pairwise.nmi, title="NMI"), key="pairwise_nmi")
    _label_matrix(ws, corpus, results, gold)


def _label_matrix(ws: Workspace, corpus: Corpus, results: list[InstructionResult], gold: str | None) -> None:
    """Every question against every label column (V-measure, ARI, noise share), the best question per
    column marked; shown whenever the corpus has a label column (``comparison.label_columns``) or a gold one."""
    columns = label_columns(corpus.table, exclude=[corpus.text_column])
    if gold and gold not in columns:
        columns.append(gold)
    if not columns:
        return
    st.subheader("Questions against the label columns")
    st.text(f"Each question's clustering scored against every label column ({', '.join(columns)}); noise counts "
            "as one cluster. ★ marks the question whose map follows that column most (highest V-measure).")
    with st.spinner("Scoring every question against every label column…"):
        rows = per_run(ws, ("label_matrix", *columns), lambda: corpus_label_matrix(corpus, results, columns))
    st.plotly_chart(plots.label_matrix_figure(rows), key="label_matrix")
    frame = pd.DataFrame(rows)[["instruction_index", "instruction", "column", "v_measure", "ari", "homogeneity",
                                "completeness", "noise_share", "best"]]
    frame["best"] = frame["best"].map({True: "★ best", False: ""})
    st.dataframe(frame, hide_index=True, key="label_matrix_table",
                 column_config={"v_measure": st.column_config.NumberColumn("v_measure (= NMI)", format="%.3f"),
                                "ari": st.column_config.NumberColumn("ari", format="%.3f"),
                                "homogeneity": st.column_config.NumberColumn("homogeneity", format="%.3f"),
                                "completeness": st.column_config.NumberColumn("completeness", format="%.3f"),
                                "noise_share": st.column_config.NumberColumn("noise share", format="percent")})
