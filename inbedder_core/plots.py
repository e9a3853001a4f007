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

from .comparison import diagonal_contingency
from .landmarks import cluster_centres, neighbour_pairs
from .results import NOISE, NOISE_NAME, NOT_APPLICABLE

NOISE_COLOR = "#b4b4b4"
"""Grey for the noise bucket (and for the "other" bucket when colouring by a column)."""

NOT_APPLICABLE_COLOR = "#5c4033"  # issue 13: the "does not apply" group, dark brown, apart from noise's grey

HIGHLIGHT_COLOR = "#111111"

PALETTE: tuple[str, ...] = (
    "#0000ff", "#00e100", "#ff0000", "#ff1eb4", "#f0c30f", "#0078f0", "#1e690f", "#a53c3c",
    "#00e1b4", "#782d78", "#e100ff", "#ffa5f0", "#006996", "#785a00", "#b4d278", "#ff873c",
    "#5a1eb4", "#00d2f0", "#ff005a", "#007869", "#a5d200", "#ffa596", "#96b4ff", "#d269f0",
    "#4bc34b", "#d24b87", "#e1b469", "#969600", "#b42d00", "#b47896", "#87875a", "#3c4b96",
    "#4ba569", "#005aff", "#a50096", "#a578d2", "#693c2d", "#96d2b4", "#c38700", "#ff6969",
    "#873cff", "#782d4b", "#b4693c", "#4b4b1e", "#d2b4e1", "#ff1e87", "#00a5e1", "#e11ed2",
)
"""48 colours picked Glasbey-style: each the sRGB colour farthest (CIELAB distance) from white,
the noise grey, near-black and every colour before it, among colours of lightness 30-82 and
chroma over 25 (no two closer than 24 ΔE). The map assigns them by graph colouring
(``cluster_palette``); ``cluster_color`` (by id) is the fallback where no map is at hand."""

HOVER_WRAP = 64
"""Hover card width in characters: the text wraps to lines of this length."""
HOVER_TEXT_LINES = 4
HOVER_ANSWER_LINES = 2
HOVER_TEXT_CHARS = HOVER_WRAP * HOVER_TEXT_LINES
HOVER_ANSWER_CHARS = 60
LABEL_CHARS = 48
LEGEND_CHARS = 40
"""Legend entries are cut to this length, so that the legend leaves the map its room."""
MAP_NAME_CHARS = 28
"""Cluster names drawn on the map are cut to this length (the hover and legend show them whole)."""
MAX_CATEGORIES = 20
"""Colouring by a column shows its most frequent values; the rest share one grey trace named
``other (N values, M documents)``; a numeric column with more values is coloured on a scale."""

OTHER_CATEGORY = "other"
MISSING_CATEGORY = "(missing)"
HIGHLIGHT_NAME = "picked document"
OTHER_NODE_COLOR = "#8c8c8c"


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


def wrapped_text(text: Any, width: int = HOVER_WRAP, max_lines: int = HOVER_TEXT_LINES) -> str:
    """User text wrapped to at most ``max_lines`` lines of ``width`` characters (`` …`` ends a cut text),
    each escaped as ``plot_text`` does, joined by ``<br>``. Runs of whitespace (newlines too) count as
    one space; a word longer than a line is split. (A plain greedy wrap: ``textwrap`` is several
    times slower, and every document of the map gets a card.)"""
    value = " ".join(str(text).split()) if text is not None else ""
    if len(value) <= width:
        return plot_text(value)
    lines: list[str] = []
    current = ""
    for word in value.split(" "):
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
        if len(lines) > max_lines:
            break
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 2].rstrip() + " …"
    return "<br>".join(plot_text(line) for line in lines if line)


def cluster_color(cluster_id: int) -> str:
    """The colour of a cluster without a map: grey for ``NOISE``, else a palette colour chosen by id."""
    if int(cluster_id) == NOISE:
        return NOISE_COLOR
    if int(cluster_id) == NOT_APPLICABLE:  # issue 13
        return NOT_APPLICABLE_COLOR
    return PALETTE[int(cluster_id) % len(PALETTE)]


def _lab(colors: Sequence[str]) -> np.ndarray:
    """CIELAB (D65) of ``#rrggbb`` colours, ``float64 (n, 3)``."""
    rgb = np.array([[int(c.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)] for c in colors], dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def color_distance(a: str, b: str) -> float:
    """Perceptual distance (CIE76 ΔE) between two ``#rrggbb`` colours."""
    lab = _lab([a, b])
    return float(np.linalg.norm(lab[0] - lab[1]))


_DISTINCT_ENOUGH = 40.0
"""ΔE beyond which two neighbouring colours count as equally distinct (then the least used colour wins)."""


def cluster_palette(coords: np.ndarray, labels: np.ndarray) -> dict[int, str]:
    """cluster id -> colour, so that clusters next to each other on the map look different.

    Graph colouring over the clusters' neighbourhood (``landmarks.neighbour_pairs`` of their
    centres): clusters are coloured most-neighbours first, each with the ``PALETTE`` colour no
    neighbour has yet that is farthest (CIELAB, up to 40 ΔE) from its neighbours' colours, then
    the least used so far (so the whole palette is used), then the first in the palette. With 48
    colours and a planar neighbourhood, neighbours never share one.
    Deterministic for a given map; noise is ``NOISE_COLOR``, the "does not apply" group
    ``NOT_APPLICABLE_COLOR`` (it takes no palette colour).
    """
    centres = {c: centre for c, centre in cluster_centres(coords, labels).items() if c != NOT_APPLICABLE}
    pairs = neighbour_pairs(centres)
    neighbours: dict[int, set[int]] = {c: set() for c in centres}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    lab = _lab(PALETTE)
    colour_index: dict[int, int] = {}
    used = np.zeros(len(PALETTE), dtype=np.int64)
    for cluster_id in sorted(centres, key=lambda c: (-len(neighbours[c]), c)):
        taken = [colour_index[n] for n in neighbours[cluster_id] if n in colour_index]
        distance = np.full(len(PALETTE), _DISTINCT_ENOUGH)
        if taken:
            distance = np.minimum(distance, np.linalg.norm(lab[:, None, :] - lab[None, taken, :], axis=2).min(axis=1))
            distance[taken] = -1.0  # a colour a neighbour has is never chosen while another is left
        # farthest from the neighbours (up to "distinct enough"), then the least used, then palette order
        best = min(range(len(PALETTE)), key=lambda i: (-round(float(distance[i]), 6), int(used[i]), i))
        colour_index[cluster_id] = best
        used[best] += 1
    out = {c: PALETTE[i] for c, i in colour_index.items()}
    if np.any(np.asarray(labels) == NOISE):
        out[NOISE] = NOISE_COLOR
    if np.any(np.asarray(labels) == NOT_APPLICABLE):
        out[NOT_APPLICABLE] = NOT_APPLICABLE_COLOR
    return out


def hover_texts(
    texts: Sequence[str],
    labels: np.ndarray,
    names: Mapping[int, str],
    answers: Sequence[str | None] | None = None,
    columns: Sequence[tuple[str, Sequence[Any]]] = (),
) -> list[str]:
    """One escaped hover card per document: the cluster name (bold), the text wrapped to
    ``HOVER_TEXT_LINES`` lines, the answer, then ``name: value`` of each of ``columns``."""
    out = []
    for i, text in enumerate(texts):
        label = int(labels[i])
        lines = [f"<b>{plot_text(names.get(label, str(label)), LABEL_CHARS)}</b>", wrapped_text(text)]
        if answers is not None and answers[i] is not None:
            lines.append("<i>answer:</i> " + wrapped_text(answers[i], HOVER_WRAP - 8, HOVER_ANSWER_LINES))
        for column, values in columns:
            lines.append(f"<i>{plot_text(column, LABEL_CHARS)}:</i> {plot_text(values[i], LABEL_CHARS)}")
        out.append("<br>".join(lines))
    return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def other_label(n_values: int, n_documents: int) -> str:
    """The legend name of the grey tail of a column's values."""
    return f"{OTHER_CATEGORY} ({n_values:,} values, {n_documents:,} documents)"


def _categories(values: Sequence[Any]) -> tuple[list[str], np.ndarray, str | None]:
    """(kept categories in order, category per document, the "other" name or None).

    The ``MAX_CATEGORIES`` most frequent values are kept; the rest become one category named
    ``other (N values, M documents)``, so the legend says what it groups.
    """
    cells = [MISSING_CATEGORY if _is_missing(v) else str(v) for v in values]
    counts = pd.Series(cells, dtype=object).value_counts(sort=True)
    kept = [str(c) for c in counts.index[:MAX_CATEGORIES]]
    if len(counts) <= MAX_CATEGORIES:
        return kept, np.array(cells, dtype=object), None
    other = other_label(len(counts) - MAX_CATEGORIES, int(counts.iloc[MAX_CATEGORIES:].sum()))
    keep = set(kept)
    per_doc = np.array([c if c in keep else other for c in cells], dtype=object)
    return [*kept, other], per_doc, other


def _numeric(values: Sequence[Any]) -> np.ndarray | None:
    """``float64`` values when every present value is a number and there are more distinct
    values than ``MAX_CATEGORIES`` (a measurement: coloured on a scale), else ``None``."""
    series = pd.Series(list(values), dtype=object)
    present = series[~series.map(_is_missing)]
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.isna().any() or numbers.nunique() <= MAX_CATEGORIES:
        return None
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)


def name_positions(coords: np.ndarray, labels: np.ndarray, names: Mapping[int, str], *,
                   width_px: int = 900, height_px: int = 600, font_px: int = 12,
                   max_chars: int = MAP_NAME_CHARS) -> tuple[list[tuple[int, float, float, str]], int]:
    """Where to draw cluster names on the map, decluttered: ``([(id, x, y, name), ...], n_hidden)``.

    Names sit at the cluster centres (``landmarks.cluster_centres``). Largest clusters first, a
    name is drawn only where its box (``font_px`` text cut to ``max_chars``, at the scale of a
    ``width_px`` x ``height_px`` plot with equal axes) overlaps no name already placed; the others
    are counted in ``n_hidden`` (their names stay in the hover and the legend).
    """
    coords = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    centres = cluster_centres(coords, labels)
    if not centres:
        return [], 0
    span = np.ptp(coords, axis=0) * 1.1 + 1e-9  # plotly pads the range by about 5% each side
    per_px = max(span[0] / width_px, span[1] / height_px)  # data units per pixel with equal axes
    sizes = {c: int(np.sum(labels == c)) for c in centres}
    placed: list[tuple[float, float, float, float]] = []
    out: list[tuple[int, float, float, str]] = []
    for cluster_id in sorted(centres, key=lambda c: (-sizes[c], c)):
        name = truncate(names.get(cluster_id, str(cluster_id)), max_chars)
        half_w = (len(name) * font_px * 0.58 + 10) / 2 * per_px
        half_h = (font_px * 1.4 + 6) / 2 * per_px
        x, y = (float(v) for v in centres[cluster_id])
        bottom = y + 6 * per_px  # drawn just above the centre (``cluster_map``: yanchor bottom, yshift 6)
        box = (x - half_w, x + half_w, bottom, bottom + 2 * half_h)
        if any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in placed):
            continue
        placed.append(box)
        out.append((cluster_id, x, y, name))
    return out, len(centres) - len(out)


def cluster_map(
    coords: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    texts: Sequence[str],
    *,
    answers: Sequence[str | None] | None = None,
    color_by: tuple[str, Sequence[Any]] | None = None,
    hover_columns: Sequence[tuple[str, Sequence[Any]]] = (),
    highlight: int | None = None,
    focus: Sequence[int] | None = None,
    focus_name: str = "selected",
    show_names: bool = True,
    title: str | None = None,
    height: int = 600,
    width_hint: int = 900,
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
            by cluster: its ``MAX_CATEGORIES`` most frequent values, the rest in one grey
            ``other (N values, M documents)`` trace; a numeric column with more values is
            one trace on a colour scale. The hover still names the cluster.
        hover_columns: ``(column name, value per document)`` pairs added to the hover card.
        highlight: a document index drawn as a large star on top (the "picked document").
        focus: document indices to bring forward (search hits, the chosen cluster, a
            selection): drawn on top, outlined, in a trace named ``focus_name``, while the
            rest fade. ``None`` or empty: nothing fades.
        show_names: draw cluster names at the cluster centres (``name_positions``).
        width_hint: the plot's expected width in pixels, for decluttering the names (the
            figure itself fills its container).
        title: plain text, escaped here.
        show_legend: side-by-side maps hide it (the hover names the cluster).

    Returns:
        A figure whose traces carry ``customdata`` = document indices (int). Cluster
        traces come in order of size (largest first), noise (or "other") first in
        drawing order, so that it lies below, and last in the legend. Cluster colours
        come from ``cluster_palette``. ``layout.meta`` holds ``names_drawn`` and
        ``names_hidden`` (how many cluster names the map shows and leaves to the hover).

    Raises:
        ValueError: lengths of ``coords``, ``labels``, ``texts`` (or answers / column values) differ,
            or ``highlight`` / ``focus`` is out of range.
    """
    coords = np.asarray(coords, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(texts)
    if coords.shape != (n, 2) or labels.shape != (n,):
        raise ValueError(f"coords {coords.shape}, labels {labels.shape} and {n} texts do not match; "
                         "expected coords (n, 2) and labels (n,)")
    if answers is not None and len(answers) != n:
        raise ValueError(f"{len(answers)} answers for {n} documents")
    for column, values in [*([color_by] if color_by is not None else []), *hover_columns]:
        if len(values) != n:
            raise ValueError(f"{len(values)} values of {column!r} for {n} documents")
    focus_idx = np.asarray(sorted({int(i) for i in focus or ()}), dtype=np.int64)
    if focus_idx.size and not (0 <= focus_idx[0] and focus_idx[-1] < n):
        raise ValueError(f"focus holds a document index out of range for {n} documents")
    extra = list(hover_columns)
    if color_by is not None and all(color_by[0] != c for c, _ in extra):
        extra.insert(0, color_by)
    hovers = np.array(hover_texts(texts, labels, names, answers, extra), dtype=object)
    palette = cluster_palette(coords, labels)
    fig = go.Figure()
    doc_colors = np.full(n, NOISE_COLOR, dtype=object)
    groups: list[tuple[str, np.ndarray, str, bool]] = []  # (legend name, member indices, colour, is background)
    scale: np.ndarray | None = None
    if color_by is None:
        ids, counts = np.unique(labels, return_counts=True)
        order = sorted(zip(ids.tolist(), counts.tolist(), strict=True), key=lambda p: (p[0] == NOISE, -p[1], p[0]))
        for cluster_id, _ in order:
            name = names.get(cluster_id, NOISE_NAME if cluster_id == NOISE else f"Cluster {cluster_id}")
            groups.append((name, np.flatnonzero(labels == cluster_id), palette[cluster_id], cluster_id == NOISE))
    elif (scale := _numeric(color_by[1])) is not None:
        missing = np.flatnonzero(np.isnan(scale))
        if missing.size:
            groups.append((MISSING_CATEGORY, missing, NOISE_COLOR, True))
    else:
        kept, per_doc, other = _categories(color_by[1])
        for position, category in enumerate(kept):
            background = category == other
            color = NOISE_COLOR if background else PALETTE[position % len(PALETTE)]
            groups.append((category, np.flatnonzero(per_doc == category), color, background))
    groups.sort(key=lambda g: not g[3])  # background traces are drawn first, under the others
    faded = 0.15 if focus_idx.size else 1.0
    for rank, (name, members, color, background) in enumerate(groups):
        doc_colors[members] = color
        fig.add_trace(go.Scattergl(
            x=coords[members, 0], y=coords[members, 1], mode="markers",
            name=f"{plot_text(name, LEGEND_CHARS)} ({len(members):,})",
            marker=dict(color=color, size=5 if background else 6, opacity=(0.45 if background else 0.8) * faded),
            customdata=members.astype(np.int64), text=hovers[members].tolist(),
            hovertemplate="%{text}<extra></extra>",
            legendrank=2000 if background else 1000 + rank,
        ))
    if scale is not None:
        present = np.flatnonzero(~np.isnan(scale))
        fig.add_trace(go.Scattergl(
            x=coords[present, 0], y=coords[present, 1], mode="markers",
            name=plot_text(f"{color_by[0]} ({len(present):,})", LABEL_CHARS + 12),
            marker=dict(color=scale[present], colorscale="Viridis", size=6, opacity=0.8 * faded,
                        colorbar=dict(title=dict(text=plot_text(color_by[0], LABEL_CHARS)), x=1.0, xanchor="left")),
            customdata=present.astype(np.int64), text=hovers[present].tolist(),
            hovertemplate="%{text}<extra></extra>", legendrank=1000,
        ))
        doc_colors[present] = "#3b528b"
    if focus_idx.size:
        fig.add_trace(go.Scattergl(
            x=coords[focus_idx, 0], y=coords[focus_idx, 1], mode="markers",
            name=plot_text(f"{focus_name} ({focus_idx.size:,})", LABEL_CHARS + 12),
            marker=dict(color=doc_colors[focus_idx].tolist(), size=9, opacity=1.0,
                        line=dict(color=HIGHLIGHT_COLOR, width=1.2)),
            customdata=focus_idx, text=hovers[focus_idx].tolist(), hovertemplate="%{text}<extra></extra>",
            legendrank=2,
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
    placed, hidden = ([], 0) if not show_names else name_positions(coords, labels, names, width_px=width_hint,
                                                                   height_px=height)
    for cluster_id, x, y, name in placed:
        fig.add_annotation(x=x, y=y, text=plot_text(name), showarrow=False, font=dict(size=12, color="#111111"),
                           yanchor="bottom", yshift=6,  # just above the centre: the cluster stays visible
                           bgcolor="rgba(255,255,255,0.7)", bordercolor=palette.get(cluster_id, NOISE_COLOR),
                           borderwidth=1.5, borderpad=2, opacity=1.0 if not focus_idx.size else 0.85)
    legend_title = "cluster" if color_by is None else plot_text(color_by[0], LABEL_CHARS)
    fig.update_layout(
        title=dict(text=plot_text(title, 90)) if title else None,
        height=height, margin=dict(l=10, r=10, t=40, b=10),  # room for the toolbar above the legend
        xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x", scaleratio=1),
        legend=dict(title=dict(text=legend_title), itemsizing="constant"),
        showlegend=show_legend, dragmode="lasso", hovermode="closest", uirevision="map",
        plot_bgcolor="white",
        hoverlabel=dict(bgcolor="white", bordercolor="#444444", font=dict(size=12, color="#111111"), align="left"),
        meta=dict(names_drawn=len(placed), names_hidden=hidden),
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


def _short_label(label: str, many: bool) -> str:
    """An axis label of a contingency table: the id alone (``"12"``) when there are many, else cut."""
    if many and _id_of(label) != NOISE:
        return str(label).split(":", 1)[0].strip()
    return truncate(label, 30)


def contingency_heatmap(contingency: pd.DataFrame, *, title: str | None = None, height: int | None = None,
                        reorder: bool = True) -> go.Figure:
    """The contingency table (rows: clusters under A, columns: under B) as a heatmap.

    ``reorder`` puts matching clusters on the diagonal (``comparison.diagonal_contingency``).
    Labels do not overlap: with more than 25 clusters on an axis its ticks show cluster ids
    only (the hover has the names), otherwise names cut to 30 characters; the height grows with
    the rows (at least 16 px each). Cells are annotated with their counts up to 400 cells.
    Axis titles are the table's index and column names (the instructions); all labels escaped.
    """
    table = diagonal_contingency(contingency) if reorder else contingency
    values = table.to_numpy(dtype=np.int64)
    many_rows, many_cols = len(table.index) > 25, len(table.columns) > 25
    rows = [plot_text(label, LABEL_CHARS) for label in table.index]
    cols = [plot_text(label, LABEL_CHARS) for label in table.columns]
    height = height or max(420, 140 + 16 * len(rows))
    fig = go.Figure(go.Heatmap(
        z=values, x=cols, y=rows, colorscale="Blues", colorbar=dict(title=dict(text="documents")),
        texttemplate="%{z}" if values.size <= 400 else None,
        hovertemplate="A: %{y}<br>B: %{x}<br>documents: %{z}<extra></extra>",
    ))
    fig.update_layout(
        title=dict(text=plot_text(title, 90)) if title else None, height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title=dict(text="B: " + plot_text(table.columns.name or "", 70)), type="category",
                   tickangle=-90 if many_cols else -40, automargin=True, tickfont=dict(size=10),
                   tickvals=cols, ticktext=[plot_text(_short_label(c, many_cols)) for c in table.columns]),
        yaxis=dict(title=dict(text="A: " + plot_text(table.index.name or "", 70)), type="category",
                   autorange="reversed", automargin=True, tickfont=dict(size=10),
                   tickvals=rows, ticktext=[plot_text(_short_label(r, many_rows)) for r in table.index]),
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


SANKEY_NODES = 12
"""The Sankey shows this many of the largest clusters per side; the rest are one "other" node."""
SANKEY_MIN_SHARE = 0.005
"""Flows under this share of the documents are not drawn (and counted in the title)."""


def _collapsed(values: np.ndarray, labels: list[str], axis: int, keep: int) -> tuple[np.ndarray, list[str], int]:
    """``values`` with all but the ``keep`` largest rows (``axis=0``) or columns merged into one
    ``other (N clusters)`` at the end; returns (values, labels, number merged)."""
    sizes = values.sum(axis=1 - axis)
    if len(labels) <= keep + 1:
        return values, labels, 0
    order = sorted(range(len(labels)), key=lambda i: (-sizes[i], i))
    kept, rest = sorted(order[:keep]), order[keep:]
    taken = np.take(values, kept, axis=axis)
    merged = np.take(values, rest, axis=axis).sum(axis=axis, keepdims=True)
    n_docs = int(merged.sum())
    return (np.concatenate([taken, merged], axis=axis),
            [labels[i] for i in kept] + [f"{OTHER_CATEGORY} ({len(rest)} clusters, {n_docs:,} documents)"], len(rest))


def cluster_sankey(contingency: pd.DataFrame, *, max_nodes: int = SANKEY_NODES, min_share: float = SANKEY_MIN_SHARE,
                   min_count: int = 1, colors_a: Mapping[int, str] | None = None,
                   colors_b: Mapping[int, str] | None = None, title: str | None = None,
                   height: int | None = None) -> go.Figure:
    """Flows from clusters under A (left) to clusters under B (right), limited so that it reads.

    Each side keeps its ``max_nodes`` largest clusters (noise counts as one); the others are
    merged into one explicit ``other (N clusters, M documents)`` node, so every document still
    flows. Flows under ``min_share`` of all documents (or ``min_count``) are not drawn; the
    title says how many and how many documents they hold. Node labels are the table's labels
    (escaped); node colours come from ``colors_a`` / ``colors_b`` (cluster id -> colour, e.g. the
    maps' ``cluster_palette``) or ``cluster_color``; "other" is dark grey; links take their
    source's colour, translucent. Rows and columns come in ``diagonal_contingency`` order, so
    matching clusters face each other. ``height`` defaults to 560 px, or 24 px per node on the
    longer side.
    """
    contingency = diagonal_contingency(contingency)  # matching clusters face each other: fewer crossings
    values = contingency.to_numpy(dtype=np.int64)
    labels_a, labels_b = [str(x) for x in contingency.index], [str(x) for x in contingency.columns]
    values, labels_a, merged_a = _collapsed(values, labels_a, 0, max_nodes)
    values, labels_b, merged_b = _collapsed(values, labels_b, 1, max_nodes)
    n_a, n_b = values.shape
    total = int(values.sum())
    threshold = max(1, min_count, int(np.ceil(min_share * total)))
    height = height or max(560, 80 + 24 * max(n_a, n_b))

    def colour(label: str, side: Mapping[int, str] | None, is_other: bool) -> str:
        if is_other:
            return OTHER_NODE_COLOR
        cluster_id = _id_of(label)
        return (side or {}).get(cluster_id) or cluster_color(cluster_id)

    colors = ([colour(x, colors_a, merged_a > 0 and i == n_a - 1) for i, x in enumerate(labels_a)]
              + [colour(x, colors_b, merged_b > 0 and i == n_b - 1) for i, x in enumerate(labels_b)])
    node_labels = [plot_text(label, LABEL_CHARS) for label in [*labels_a, *labels_b]]
    sources, targets, counts, link_colors = [], [], [], []
    hidden_flows = hidden_docs = 0
    for r in range(n_a):
        for c in range(n_b):
            count = int(values[r, c])
            if count >= threshold:
                sources.append(r)
                targets.append(n_a + c)
                counts.append(count)
                link_colors.append(_rgba(colors[r], 0.35))
            elif count > 0:
                hidden_flows += 1
                hidden_docs += count
    fig = go.Figure(go.Sankey(
        arrangement="snap", textfont=dict(color="#1a1a1a", size=12),
        node=dict(label=node_labels, color=colors, pad=12, thickness=14, line=dict(width=0.5, color="#555555"),
                  hovertemplate="%{label}<br>%{value} documents<extra></extra>"),
        link=dict(source=sources, target=targets, value=counts, color=link_colors,
                  hovertemplate="%{source.label} → %{target.label}<br>%{value} documents<extra></extra>"),
    ))
    heading = plot_text(title or f"{contingency.index.name or 'A'} → {contingency.columns.name or 'B'}", 110)
    if hidden_flows:
        heading += (f"<br><sup>{hidden_flows:,} flows under {threshold:,} documents not drawn "
                    f"({hidden_docs:,} documents)</sup>")
    fig.update_layout(title=dict(text=heading), height=height, margin=dict(l=10, r=10, t=60, b=10))
    return fig


def label_matrix_figure(rows: Sequence[Mapping[str, Any]], *, height: int | None = None) -> go.Figure:
    """The question x label-column matrix (``comparison.label_matrix`` rows) as a heatmap of
    V-measure, each cell annotated with V, ARI and the noise share; the best question per column
    is marked ★. Questions and column names are escaped."""
    questions = list(dict.fromkeys(str(r["question"]) for r in rows))
    columns = list(dict.fromkeys(str(r["column"]) for r in rows))
    z = np.full((len(questions), len(columns)), np.nan)
    text = [["" for _ in columns] for _ in questions]
    for r in rows:
        i, j = questions.index(str(r["question"])), columns.index(str(r["column"]))
        z[i, j] = float(r["v_measure"])
        star = "★ best<br>" if r["best"] else ""
        text[i][j] = (f"{star}V {float(r['v_measure']):.2f} · ARI {float(r['ari']):.2f}<br>"
                      f"noise {100 * float(r['noise_share']):.0f}%")
    y = [plot_text(truncate(q, 60)) for q in questions]
    x = [plot_text(truncate(c, 30)) for c in columns]
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=y, zmin=0.0, zmax=1.0, colorscale="Viridis", text=text, texttemplate="%{text}",
        colorbar=dict(title=dict(text="V-measure")), xgap=2, ygap=2,
        hovertemplate="%{y}<br>label column: %{x}<br>%{text}<extra></extra>",
    ))
    fig.update_layout(height=height or max(260, 110 + 70 * len(questions)), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(type="category", side="top", automargin=True),
                      yaxis=dict(type="category", autorange="reversed", automargin=True))
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
