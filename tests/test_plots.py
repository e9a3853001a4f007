"""Figures of the app: traces, points, colours, and escaping of user text."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from inbedder_core import plots
from inbedder_core.comparison import compare_labelings
from inbedder_core.results import NOISE

EVIL = "<b>bold</b> & <a href='javascript:alert(1)'>click</a> <img src=x onerror=alert(1)>"


def _data(n: int = 12):
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, NOISE, NOISE][:n], dtype=np.int64)
    texts = [f"document {i}" for i in range(n)]
    names = {0: "card arrival", 1: "refunds", 2: "top up", NOISE: "Noise"}
    return coords, labels, texts, names


def test_cluster_map_has_one_webgl_trace_per_cluster_with_every_point_once():
    coords, labels, texts, names = _data()
    fig = plots.cluster_map(coords, labels, names, texts)
    assert all(isinstance(trace, go.Scattergl) for trace in fig.data)
    assert len(fig.data) == 4  # three clusters and noise
    members = np.concatenate([np.asarray(trace.customdata) for trace in fig.data])
    assert sorted(members.tolist()) == list(range(len(texts)))
    for trace in fig.data:
        index = np.asarray(trace.customdata)
        np.testing.assert_allclose(np.asarray(trace.x), coords[index, 0])
        np.testing.assert_allclose(np.asarray(trace.y), coords[index, 1])
        assert {int(labels[i]) for i in index} and len({int(labels[i]) for i in index}) == 1


def test_cluster_map_colours_noise_grey_below_and_clusters_by_id():
    coords, labels, texts, names = _data()
    fig = plots.cluster_map(coords, labels, names, texts)
    first = fig.data[0]
    assert first.name.startswith("Noise") and first.marker.color == plots.NOISE_COLOR  # drawn first: underneath
    assert first.legendrank > max(t.legendrank for t in fig.data[1:])  # listed last
    by_name = {trace.name.split(" (")[0]: trace for trace in fig.data}
    assert by_name["card arrival"].marker.color == plots.cluster_color(0) == plots.PALETTE[0]
    assert by_name["refunds"].marker.color == plots.PALETTE[1]
    assert plots.cluster_color(NOISE) == plots.NOISE_COLOR
    assert by_name["card arrival"].name == "card arrival (5)"
    # largest cluster first after the background
    assert [t.name for t in fig.data[1:]] == ["card arrival (5)", "refunds (3)", "top up (2)"]


def test_hover_and_legend_escape_html_from_documents_answers_and_names():
    coords, labels, texts, names = _data()
    texts[0] = EVIL + "\nsecond line"
    answers = [EVIL] * len(texts)
    names = {**names, 0: "<script>alert(1)</script>"}
    fig = plots.cluster_map(coords, labels, names, texts, answers=answers, title="<i>title</i>")
    everything = [trace.name for trace in fig.data] + [h for trace in fig.data for h in trace.text]
    everything.append(fig.layout.title.text)
    for value in everything:
        stripped = value.replace("<br>", "").replace("<b>", "").replace("</b>", "")
        assert "<" not in stripped and ">" not in stripped, value
    hover = next(h for trace in fig.data for h in trace.text if "second line" in h)
    assert "&lt;a href=" in hover and "&amp;" in hover and "<br>second line" in hover
    assert "&lt;script&gt;" in fig.data[1].name


def test_plot_text_truncates_before_escaping():
    assert plots.plot_text("&" * 10, max_chars=5) == "&amp;" * 4 + "…"
    assert plots.plot_text("a < b", max_chars=None) == "a &lt; b"
    assert plots.plot_text(None) == ""
    assert plots.truncate("short", 10) == "short"
    long = plots.plot_text("x" * 1000, plots.HOVER_TEXT_CHARS)
    assert len(long) == plots.HOVER_TEXT_CHARS and long.endswith("…")


def test_cluster_map_coloured_by_a_column_groups_rare_values_in_grey_other():
    n = 60
    rng = np.random.default_rng(1)
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    labels = np.zeros(n, dtype=np.int64)
    values = [f"v{i % 30}" for i in range(n)]  # 30 categories > MAX_CATEGORIES
    fig = plots.cluster_map(coords, labels, {0: "all"}, [str(i) for i in range(n)], color_by=("intent", values))
    names = [trace.name.split(" (")[0] for trace in fig.data]
    assert len(fig.data) == plots.MAX_CATEGORIES + 1
    other = fig.data[names.index(plots.OTHER_CATEGORY)]
    assert other.marker.color == plots.NOISE_COLOR
    assert len(other.customdata) == n - 2 * plots.MAX_CATEGORIES
    assert fig.layout.legend.title.text == "intent"
    for trace in fig.data:
        for position, doc in enumerate(trace.customdata):
            assert f"intent: {values[doc]}" in trace.text[position]
            assert trace is other or trace.name.startswith(values[doc])


def test_cluster_map_highlight_is_a_star_on_the_document():
    coords, labels, texts, names = _data()
    fig = plots.cluster_map(coords, labels, names, texts, highlight=7, show_legend=False)
    star = fig.data[-1]
    assert star.name == plots.HIGHLIGHT_NAME and star.marker.symbol == "star"
    assert list(star.customdata) == [7]
    assert (star.x[0], star.y[0]) == pytest.approx((float(coords[7, 0]), float(coords[7, 1])))
    assert fig.layout.showlegend is False
    with pytest.raises(ValueError, match="highlight"):
        plots.cluster_map(coords, labels, names, texts, highlight=len(texts))


def test_cluster_map_rejects_mismatched_lengths():
    coords, labels, texts, names = _data()
    with pytest.raises(ValueError, match="do not match"):
        plots.cluster_map(coords[:-1], labels, names, texts)
    with pytest.raises(ValueError, match="answers"):
        plots.cluster_map(coords, labels, names, texts, answers=["a"])


def test_selected_documents_maps_streamlit_points_back_to_documents():
    coords, labels, texts, names = _data()
    fig = plots.cluster_map(coords, labels, names, texts)
    assert plots.selected_documents(fig, None) == []
    assert plots.selected_documents(fig, {"points": []}) == []
    with_custom = {"points": [{"curve_number": 1, "point_index": 0, "customdata": [3]},
                              {"curve_number": 2, "point_index": 1, "customdata": 6}]}
    assert plots.selected_documents(fig, with_custom) == [3, 6]
    # without customdata: through the trace and the position in it
    trace = 2
    expected = sorted(int(i) for i in fig.data[trace].customdata)
    points = [{"curve_number": trace, "point_index": k} for k in range(len(expected))]
    points.append({"curve_number": 99, "point_index": 0})  # unknown trace: ignored
    assert plots.selected_documents(fig, {"points": points}) == expected


def test_contingency_heatmap_and_sankey_show_the_table_with_escaped_names():
    a = np.array([0, 0, 0, 1, 1, NOISE, 2, 2])
    b = np.array([5, 5, 6, 6, 6, 6, NOISE, 5])
    comparison = compare_labelings(a, b, names_a={0: "<b>x</b>", 1: "y", 2: "z"}, names_b={5: "p", 6: "q & r"},
                                   label_a="How <feel>?", label_b="Need")
    table = comparison.contingency
    heat = plots.contingency_heatmap(table)
    np.testing.assert_array_equal(np.asarray(heat.data[0].z), table.to_numpy())
    assert "0: &lt;b&gt;x&lt;/b&gt;" in list(heat.data[0].y)
    assert "6: q &amp; r" in list(heat.data[0].x)
    assert "&lt;feel&gt;" in heat.layout.yaxis.title.text

    sankey = plots.cluster_sankey(table)
    link = sankey.data[0].link
    assert len(link.value) == int(np.count_nonzero(table.to_numpy()))
    assert sum(link.value) == len(a)
    labels = list(sankey.data[0].node.label)
    assert labels[: len(table.index)] == [plots.plot_text(x, plots.LABEL_CHARS) for x in table.index]
    assert sankey.data[0].node.color[labels.index("Noise")] == plots.NOISE_COLOR
    assert all(s < len(table.index) <= t for s, t in zip(link.source, link.target, strict=True))
    fewer = plots.cluster_sankey(table, min_count=2)
    assert all(v >= 2 for v in fewer.data[0].link.value)
    assert sankey.layout.height == 560  # few clusters: the usual size


def test_a_sankey_of_many_clusters_grows_so_labels_do_not_overlap():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 56, 3000), rng.integers(0, 41, 3000)
    table = compare_labelings(a, b).contingency
    fig = plots.cluster_sankey(table)
    assert fig.layout.height >= 24 * len(table.index) and len(fig.data[0].node.label) == 56 + 41


def test_score_matrix_keeps_values_and_escapes_labels():
    matrix = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=["1: <x>", "2: y"], columns=["1: <x>", "2: y"])
    fig = plots.score_matrix(matrix, title="ARI", zmin=-1.0)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), matrix.to_numpy())
    assert list(fig.data[0].y) == ["1: &lt;x&gt;", "2: y"]
    assert fig.data[0].zmin == -1.0


def test_figure_html_is_standalone_and_carries_no_live_markup_from_documents():
    coords, labels, texts, names = _data()
    texts[0] = "</script><script>alert(1)</script>"
    page = plots.figure_html(plots.cluster_map(coords, labels, names, texts), title="map <1>")
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "<title>map &lt;1&gt;</title>" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing fetched: plotly.js is inlined
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    assert "<script>alert(1)" not in page
