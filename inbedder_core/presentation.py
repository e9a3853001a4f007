"""What the app (and the CLI) show and download, as data, with no Streamlit: the cluster and
document tables of one result, and the bytes of each export (labeled CSV, summary, report, map).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import atlas, plots
from .analysis import AnalysisSettings, names_of, run_report
from .encoder import Fingerprint
from .export import csv_bytes, export_table, json_bytes, summary_table
from .io.corpus import Corpus
from .landmarks import representative_documents
from .name.keywords import top_answers
from .results import InstructionResult


def labeled_csv(corpus: Corpus, results: Sequence[InstructionResult]) -> bytes:
    """The ``inbedder cluster`` CSV: every input column plus answer/cluster/label/description per instruction."""
    return csv_bytes(export_table(corpus, results))


def summary_csv(results: Sequence[InstructionResult], corpus: Corpus | None = None) -> bytes:
    """One row per cluster per instruction (``export.SUMMARY_COLUMNS``; with ``corpus``, also each
    cluster's representative documents)."""
    return csv_bytes(summary_table(results, corpus))


HTML_MAP_POINTS = 200_000
"""Most points in a map's standalone HTML page (WebGL, hover cards inlined: 41 MB at this size); a bigger
run's page draws a sample (``atlas.sample_rows``: every cluster keeps its share) and says so in its title."""


def map_html(corpus: Corpus, result: InstructionResult, max_points: int = HTML_MAP_POINTS) -> bytes:
    """One instruction's map as a standalone HTML page (plotly.js inlined, ``scattergl``, user text escaped);
    above ``max_points`` documents, a sample of them, the title saying "N of M documents"."""
    rows = atlas.sample_rows(result.labels, max_points)
    title = result.instruction
    if len(rows) < len(corpus):
        title += f" (a sample: {len(rows):,} of {len(corpus):,} documents; every document is in the map table)"
    texts = corpus.texts if len(rows) == len(corpus) else [corpus.texts[i] for i in rows]
    answers = result.answers if result.answers is None or len(rows) == len(corpus) else [
        result.answers[i] for i in rows]
    fig = plots.cluster_map(result.coords[rows], result.labels[rows], names_of(result), texts, answers=answers,
                            title=title, height=800)
    return plots.figure_html(fig, title=f"InBedder map: {result.instruction}").encode("utf-8")


def map_parquet(corpus: Corpus, result: InstructionResult) -> bytes:
    """One instruction's map as a Parquet table, every document: ``id``, ``x``, ``y``, ``cluster`` (id),
    ``cluster_name``, ``answer`` (when the model answers) and the full ``text``; for maps too big for HTML."""
    names = names_of(result)
    table = pd.DataFrame({"id": [str(i) for i in corpus.ids], "x": result.coords[:, 0].astype(np.float32),
                          "y": result.coords[:, 1].astype(np.float32), "cluster": result.labels.astype(np.int64)})
    table["cluster_name"] = pd.Categorical([names.get(int(c), "Unclustered") for c in result.labels])
    if result.answers is not None:
        table["answer"] = list(result.answers)
    table["text"] = list(corpus.texts)
    return table.to_parquet(index=False)


def report_json(corpus: Corpus, results: Sequence[InstructionResult], *, settings: AnalysisSettings | None,
                model: str, fingerprint: Mapping[str, Any] | None, labeler: str, gold: str | None,
                edits: Sequence[Mapping[str, Any]] | None = None) -> bytes:
    """The run report (``analysis.run_report``) as UTF-8 JSON; ``fingerprint`` as ``Fingerprint``'s fields;
    ``edits`` the cluster edits replayed on ``results``."""
    payload = run_report(corpus, list(results), settings=settings or AnalysisSettings(), model=model,
                         fingerprint=Fingerprint(**fingerprint) if fingerprint else None, labeler=labeler,
                         label_column=gold, edits=edits)
    return json_bytes(payload)


def search_hits(corpus: Corpus, result: InstructionResult, search: str) -> list[int]:
    """Documents whose text or answer contains ``search`` (case-insensitive; blank: none), in order."""
    needle = search.strip().lower()
    if not needle:
        return []
    answers = result.answers or [None] * len(corpus)
    return [i for i, (text, answer) in enumerate(zip(corpus.texts, answers, strict=True))
            if needle in text.lower() or (answer is not None and needle in answer.lower())]


def document_frame(corpus: Corpus, result: InstructionResult, indices: Sequence[int], gold: str | None,
                   search: str) -> pd.DataFrame:
    """The document list: id, text, answer, cluster (and gold), filtered by a case-insensitive search."""
    names = names_of(result)
    rows = list(indices)
    frame = pd.DataFrame({
        "id": [corpus.ids[i] for i in rows],
        "text": [corpus.texts[i] for i in rows],
    })
    if result.answers is not None:
        frame["answer"] = [result.answers[i] for i in rows]
    frame["cluster"] = [names.get(int(result.labels[i]), str(int(result.labels[i]))) for i in rows]
    if gold:
        frame[gold if gold not in frame.columns else f"gold: {gold}"] = corpus.table[gold].iloc[rows].tolist()
    if search.strip():
        needle = search.strip().lower()
        hit = frame["text"].str.lower().str.contains(needle, regex=False)
        if "answer" in frame:
            hit |= frame["answer"].fillna("").str.lower().str.contains(needle, regex=False)
        frame = frame[hit]
    return frame.reset_index(drop=True)


def answer_frame(result: InstructionResult, n: int = 15) -> pd.DataFrame:
    """The ``n`` most common answers over the whole corpus (normalised as in cluster names) with their counts
    and share in %, most common first; empty when the model gives no answers."""
    if not result.answers:
        return pd.DataFrame({"answer": [], "count": [], "share": []})
    common = top_answers(result.answers, [0] * len(result.answers), n=n)[0]
    total = len(result.answers)
    return pd.DataFrame({"answer": [a for a, _ in common], "count": [c for _, c in common],
                         "share": [100.0 * c / total for _, c in common]})


def cluster_frame(result: InstructionResult, corpus: Corpus | None = None) -> pd.DataFrame:
    """The cluster table: id, name, size, share (%), description, keywords, top answers, how it
    was named; with ``corpus``, its representative documents (closest to the centre on the map,
    ``landmarks.representative_documents``) as one text, ``" ¶ "`` between documents."""
    frame = pd.DataFrame({
        "cluster": [c.cluster_id for c in result.clusters],
        "name": [c.name for c in result.clusters],
        "size": [c.size for c in result.clusters],
        "share": [100.0 * c.share for c in result.clusters],
        "description": [c.description for c in result.clusters],
        "keywords": [", ".join(c.keywords) for c in result.clusters],
        "top answers": ["; ".join(f"{a} ({n})" for a, n in c.top_answers) for c in result.clusters],
        "named by": [c.source for c in result.clusters],
    })
    if corpus is not None:
        central = representative_documents(result.coords, result.labels)
        frame.insert(3, "representative documents", [
            " ¶ ".join(plots.truncate(" ".join(corpus.texts[i].split()), 160) for i in central.get(c.cluster_id, []))
            for c in result.clusters])
    return frame
