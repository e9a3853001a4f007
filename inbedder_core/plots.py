"""Plotly figures for the app: pure functions of results, no Streamlit.

Every figure shows user text (documents, answers, cluster names, instructions), and
plotly renders a subset of HTML in hover labels, legend entries, tick labels, titles
and Sankey nodes (``<b>``, ``<a href>``, ``<br>``, entities). Every user string is
therefore passed through ``plot_text`` (``<``, ``>`` and ``&`` escaped, newlines as
``<br>``) before it enters a figure: a document holding ``<a href=...>`` shows as text.

The 2-D map uses ``go.Scattergl`` (WebGL), one trace per cluster (or per category
when coloured by a column), noise in grey below the rest; each point carries its
document index as ``customdata`` so a lasso or box selection maps back to documents
(``selected_documents``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .results import NOISE, NOISE_NAME, NOT_APPLICABLE

NOISE_COLOR = "#b4b4b4"
"""Grey for the noise bucket (and for the "other" bucket when colouring by a column)."""

NOT_APPLICABLE_COLOR = "#5c4033"  # issue 13: the "does not apply" group, dark brown, apart from noise's grey

HIGHLIGHT_COLOR = "#111111"

PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd", "#e6550d",
    "#31a354", "#756bb1", "#636363", "#9c9ede", "#e7ba52", "#ce6dbd", "#6baed6", "#fd8d3c",
    "#74c476", "#9e9ac8", "#d6616b", "#b5cf6b", "#e7969c", "#5254a3",
)
"""Cluster colours, chosen by cluster id (``PALETTE[id % len(PALETTE)]``) so a cluster keeps its colour."""

HOVER_TEXT_CHARS = 160
HOVER_ANSWER_CHARS = 60
LABEL_CHARS = 48
MAX_CATEGORIES = 20
"""Colouring by a column shows its most frequent values; the rest share one grey "(other)" trace."""

OTHER_CATEGORY = "(other)"
MISSING_CATEGORY = "(missing)"
HIGHLIGHT_NAME = "picked document"


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, with an ellipsis when cut."""
    text = str(text)
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 1)].rstrip() + "…"


def plot_text(text: Any, max_chars: int | None = None) -> str:
    """User text made safe for a plotly label: truncated, then ``& < >`` escaped, newlines as ``<br>``.

    Truncation happens before escaping, so an entity is never cut in half.
    """
    value = "" if text is None else str(text)
    if max_chars is not None:
        value = truncate(value, max_chars)
    value = html.escape(value, quote=False)
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def cluster_color(cluster_id: int) -> str:
    """The colour of a cluster: grey for ``NOISE``, else a palette colour chosen by id."""
    if int(cluster_id) == NOISE:
        return NOISE_COLOR
    if int(cluster_id) == NOT_APPLICABLE:  # issue 13
        return NOT_APPLICABLE_COLOR
    return PALETTE[int(cluster_id) % len(PALETTE)]


def hover_texts(
    texts: Sequence[str],
    labels: np.ndarray,
    names: Mapping[int, str],
    answers: Sequence[str | None] | None = None,
    extra: tuple[str, Sequence[Any]] | None = None,
) -> list[str]:
    """One escaped hover label per document: cluster name, text (truncated), answer, and an extra column."""
    out = []
    for i, text in enumerate(texts):
        label = int(labels[i])
        lines = [f"<b>{plot_text(names.get(label, str(label)), LABEL_CHARS)}</b>", plot_text(text, HOVER_TEXT_CHARS)]
        if answers is not None and answers[i] is not None:
            lines.append("answer: " + plot_text(answers[i], HOVER_ANSWER_CHARS))
        if extra is not None:
            lines.append(f"{plot_text(extra[0], LABEL_CHARS)}: {plot_text(extra[1][i], LABEL_CHARS)}")
        out.append("<br>".join(lines))
    return out


def _categories(values: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    """Category per document (``MAX_CATEGORIES`` most frequent kept) and the kept categories in order."""
    cells = [MISSING_CATEGORY if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
    counts = pd.Series(cells, dtype=object).value_counts(sort=True)
    kept = [str(c) for c in counts.index[:MAX_CATEGORIES]]
    keep = set(kept)
    per_doc = np.array([c if c in keep else OTHER_CATEGORY for c in cells], dtype=object)
    if len(counts) > MAX_CATEGORIES:
        kept.append(OTHER_CATEGORY)
    return kept, per_doc


def cluster_map(
    coords: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    texts: Sequence[str],
    *,
    answers: Sequence[str | None] | None = None,
    color_by: tuple[str, Sequence[Any]] | None = None,
    highlight: int | None = None,
    title: str | None = None,
    height: int = 600,
    show_legend: bool = True,
) -> go.Figure:
    """The 2-D map of one instruction's result: one WebGL trace per cluster (or category).

    Args:
        coords: ``float32 (n_docs, 2)``.
        labels: ``int (n_docs,)`` cluster ids, ``NOISE`` for noise.
        names: cluster id -> display name (plain text; escaped here).
        texts: the documents.
        answers: the model's answer per document, or ``None``.
        color_by: ``(column name, value per document)`` to colour by a column instead of
            by cluster; the hover still names the cluster.
        highlight: a document index drawn as a large star on top (the "picked document").
        title: plain text, escaped here.
        show_legend: side-by-side maps hide it (the hover names the cluster).

    Returns:
        A figure whose traces carry ``customdata`` = document indices (int). Cluster
        traces come in order of size (largest first), noise (or "(other)") first in
        drawing order, so that it lies below, and last in the legend.

    Raises:
        ValueError: lengths of ``coords``, ``labels``, ``texts`` (or answers / colour values) differ,
            or ``highlight`` is out of range.
    """
    coords = np.asarray(coords, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(texts)
    if coords.shape != (n, 2) or labels.shape != (n,):
        raise ValueError(f"coords {coords.shape}, labels {labels.shape} and {n} texts do not match; "
                         "expected coords (n, 2) and labels (n,)")
    if answers is not None and len(answers) != n:
        raise ValueError(f"{len(answers)} answers for {n} documents")
    if color_by is not None and len(color_by[1]) != n:
        raise ValueError(f"{len(color_by[1])} values of {color_by[0]!r} for {n} documents")
    hovers = np.array(hover_texts(texts, labels, names, answers, color_by), dtype=object)
    fig = go.Figure()
    groups: list[tuple[str, np.ndarray, str, bool]] = []  # (legend name, member indices, colour, is background)
    if color_by is None:
        ids, counts = np.unique(labels, return_counts=True)
        order = sorted(zip(ids.tolist(), counts.tolist(), strict=True), key=lambda p: (p[0] == NOISE, -p[1], p[0]))
        for cluster_id, _ in order:
            name = names.get(cluster_id, NOISE_NAME if cluster_id == NOISE else f"Cluster {cluster_id}")
            groups.append((name, np.flatnonzero(labels == cluster_id), cluster_color(cluster_id), cluster_id == NOISE))
    else:
        kept, per_doc = _categories(color_by[1])
        for position, category in enumerate(kept):
            background = category == OTHER_CATEGORY
            color = NOISE_COLOR if background else PALETTE[position % len(PALETTE)]
            groups.append((category, np.flatnonzero(per_doc == category), color, background))
    groups.sort(key=lambda g: not g[3])  # background traces are drawn first, under the others
    for rank, (name, members, color, background) in enumerate(groups):
        fig.add_trace(go.Scattergl(
            x=coords[members, 0], y=coords[members, 1], mode="markers",
            name=plot_text(f"{name} ({len(members):,})", LABEL_CHARS + 12),
            marker=dict(color=color, size=5 if background else 6, opacity=0.45 if background else 0.8),
            customdata=members.astype(np.int64), text=hovers[members].tolist(),
            hovertemplate="%{text}<extra></extra>",
            legendrank=2000 if background else 1000 + rank,
        ))
    if highlight is not None:
        if not 0 <= int(highlight) < n:
            raise ValueError(f"highlight={highlight} is out of range for {n} documents")
        i = int(highlight)
        fig.add_trace(go.Scattergl(
            x=[float(coords[i, 0])], y=[float(coords[i, 1])], mode="markers", name=HIGHLIGHT_NAME,
            marker=dict(symbol="star", size=20, color="#ffd400", line=dict(color=HIGHLIGHT_COLOR, width=2)),
            customdata=np.array([i], dtype=np.int64), text=[hovers[i]], hovertemplate="%{text}<extra></extra>",
            legendrank=1,
        ))
    legend_title = "cluster" if color_by is None else plot_text(color_by[0], LABEL_CHARS)
    fig.update_layout(
        title=dict(text=plot_text(title, 90)) if title else None,
        height=height, margin=dict(l=10, r=10, t=40, b=10),  # room for the toolbar above the legend
        xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x", scaleratio=1),
        legend=dict(title=dict(text=legend_title), itemsizing="constant"),
        showlegend=show_legend, dragmode="lasso", hovermode="closest", uirevision="map",
        plot_bgcolor="white",
    )
    return fig


def selected_documents(fig: go.Figure, selection: Mapping[str, Any] | None) -> list[int]:
    """Document indices of a Streamlit plotly selection (``event.selection``) on a ``cluster_map``.

    Each selected point is mapped back through its ``customdata`` when the selection
    carries it, else through its trace (``curve_number``) and position in the trace
    (``point_index``). Sorted, without duplicates; an empty or missing selection gives ``[]``.
    """
    if not selection:
        return []
    found: set[int] = set()
    for point in selection.get("points", []) or []:
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)):
            custom = custom[0] if custom else None
        if custom is not None:
            found.add(int(custom))
            continue
        curve, index = point.get("curve_number"), point.get("point_index", point.get("point_number"))
        if curve is None or index is None or not 0 <= int(curve) < len(fig.data):
            continue
        data = fig.data[int(curve)].customdata
        if data is not None and 0 <= int(index) < len(data):
            found.add(int(np.asarray(data).reshape(-1)[int(index)]))
    return sorted(found)


def contingency_heatmap(contingency: pd.DataFrame, *, title: str | None = None, height: int = 520) -> go.Figure:
    """The contingency table (rows: clusters under A, columns: under B) as an annotated heatmap.

    Axis titles are the table's index and column names (the instructions); all labels escaped.
    """
    values = contingency.to_numpy(dtype=np.int64)
    rows = [plot_text(label, LABEL_CHARS) for label in contingency.index]
    cols = [plot_text(label, LABEL_CHARS) for label in contingency.columns]
    annotate = values.size <= 900
    fig = go.Figure(go.Heatmap(
        z=values, x=cols, y=rows, colorscale="Blues", colorbar=dict(title=dict(text="documents")),
        texttemplate="%{z}" if annotate else None,
        hovertemplate="A: %{y}<br>B: %{x}<br>documents: %{z}<extra></extra>",
    ))
    fig.update_layout(
        title=dict(text=plot_text(title, 90)) if title else None, height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title=dict(text="B: " + plot_text(contingency.columns.name or "", 70)), type="category",
                   tickangle=-35),
        yaxis=dict(title=dict(text="A: " + plot_text(contingency.index.name or "", 70)), type="category",
                   autorange="reversed"),
    )
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _id_of(label: str) -> int:
    """Cluster id of a contingency label (``"3"``, ``"3: name"`` or ``"Noise"``)."""
    head = str(label).split(":", 1)[0].strip()
    return int(head) if head.lstrip("-").isdigit() else NOISE


def cluster_sankey(contingency: pd.DataFrame, *, min_count: int = 1, title: str | None = None,
                   height: int | None = None) -> go.Figure:
    """Flows from clusters under A (left) to clusters under B (right), one link per non-empty cell.

    Node labels are the table's labels (escaped); node colours follow ``cluster_color``
    of each side's cluster id; links take their source's colour, translucent. Cells
    below ``min_count`` are left out. ``height`` defaults to 560 px, or more when a side
    has many clusters (about 24 px each, so labels do not overlap).
    """
    values = contingency.to_numpy(dtype=np.int64)
    n_a, n_b = values.shape
    height = height or max(560, 80 + 24 * max(n_a, n_b))
    labels = [plot_text(label, LABEL_CHARS) for label in [*contingency.index, *contingency.columns]]
    colors = [cluster_color(_id_of(label)) for label in [*contingency.index, *contingency.columns]]
    sources, targets, counts, link_colors = [], [], [], []
    for r in range(n_a):
        for c in range(n_b):
            if values[r, c] >= max(1, min_count):
                sources.append(r)
                targets.append(n_a + c)
                counts.append(int(values[r, c]))
                link_colors.append(_rgba(colors[r], 0.35))
    fig = go.Figure(go.Sankey(
        arrangement="snap", textfont=dict(color="#1a1a1a", size=12),
        node=dict(label=labels, color=colors, pad=12, thickness=14, line=dict(width=0.5, color="#555555"),
                  hovertemplate="%{label}<br>%{value} documents<extra></extra>"),
        link=dict(source=sources, target=targets, value=counts, color=link_colors,
                  hovertemplate="%{source.label} → %{target.label}<br>%{value} documents<extra></extra>"),
    ))
    heading = title or f"{contingency.index.name or 'A'} → {contingency.columns.name or 'B'}"
    fig.update_layout(title=dict(text=plot_text(heading, 110)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def score_matrix(matrix: pd.DataFrame, *, title: str, zmin: float = 0.0, zmax: float = 1.0,
                 height: int = 420) -> go.Figure:
    """A square score matrix (pairwise ARI or NMI between instructions) as an annotated heatmap."""
    values = matrix.to_numpy(dtype=float)
    labels = [plot_text(label, LABEL_CHARS) for label in matrix.index]
    columns = [plot_text(label, LABEL_CHARS) for label in matrix.columns]
    fig = go.Figure(go.Heatmap(
        z=values, x=columns, y=labels, zmin=min(zmin, float(np.nanmin(values)) if values.size else zmin),
        zmax=zmax, colorscale="Viridis", texttemplate="%{z:.2f}",
        hovertemplate="%{y}<br>%{x}<br>%{z:.3f}<extra></extra>",
    ))
    fig.update_layout(title=dict(text=plot_text(title, 90)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(type="category", tickangle=-25),
                      yaxis=dict(type="category", autorange="reversed"))
    return fig


def figure_html(fig: go.Figure, title: str = "InBedder map") -> str:
    """A standalone HTML page of ``fig`` with plotly.js inlined (opens offline)."""
    page = fig.to_html(include_plotlyjs=True, full_html=True)
    return page.replace("<head>", f"<head><title>{html.escape(title)}</title>", 1)
