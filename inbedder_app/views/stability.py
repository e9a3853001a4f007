"""The stability view (issue 13): one question run under its rewordings (typed, proposed by the LLM,
or the built-in templates); per cluster its best-match Jaccard and badge, ARI/NMI, and per document the
share of rewordings that keep its neighbours, with downloads.
"""

from __future__ import annotations

import streamlit as st

from inbedder_app.state import Workspace, kept
from inbedder_core import stability
from inbedder_core.corpus import Corpus
from inbedder_core.errors import InBedderError
from inbedder_core.export import csv_bytes, export_table, json_bytes


def render(ws: Workspace, corpus: Corpus, gold: str | None) -> None:
    questions = list(ws.results)
    question = kept(st.selectbox, "Question", questions, key="stability_question", options=questions)
    text_key = f"stability_rewordings_{question}"
    st.session_state.setdefault(text_key, "\n".join(stability.template_rewordings(question)))
    labeler = ws.analysis.labeler if ws.analysis is not None else None
    if getattr(labeler, "client", None) is not None and st.button("Propose rewordings with the LLM"):
        st.session_state[text_key] = "\n".join(stability.propose_rewordings(labeler.client, labeler.model, question))
    with st.form("stability_form"):
        typed = st.text_area("Rewordings (one per line; the built-in templates to start)", key=text_key, height=110)
        go = st.form_submit_button("Measure stability")
    reports = st.session_state.setdefault("stability_reports", {})
    key = (ws.run_id, question)
    if go:
        if ws.analysis is None:
            raise InBedderError("this run was reopened without its model: run its question again first")
        rewordings = [line.strip() for line in typed.splitlines() if line.strip()]
        with st.status(f"Running {len(rewordings)} rewording(s)…", expanded=False):
            reports[key] = stability.measure(ws.analysis, question, rewordings)
    report = reports.get(key)
    if report is None:
        st.info("Each rewording is embedded and clustered like the question; a cluster that the rewordings do "
                "not find again depends on the wording.")
        return
    means = report.mean_pairwise()
    cols = st.columns(3)
    cols[0].metric("ARI vs rewordings", f"{means['ari']:.2f}")
    cols[1].metric("NMI vs rewordings", f"{means['nmi']:.2f}")
    cols[2].metric("Neighbours kept", f"{100 * report.document_share.mean():.0f}%")
    flagged = [c for c in report.clusters if c.flag]
    for cluster in flagged:
        st.warning(f"{cluster.name}: {cluster.flag} (best-match Jaccard {cluster.jaccard:.2f})")
    st.dataframe(report.cluster_frame(), hide_index=True, key="stability_table",
                 column_config={"best-match Jaccard": st.column_config.ProgressColumn(
                     "best-match Jaccard", min_value=0.0, max_value=1.0, format="%.2f")})
    frame = export_table(corpus, report.results[:1]).join(stability.document_columns(report))
    row = st.columns(2)
    row[0].download_button("Stability report (JSON)", json_bytes(report.to_dict()), "stability.json",
                           "application/json")
    row[1].download_button("Documents with stability (CSV)", csv_bytes(frame), "stability.csv", "text/csv")
