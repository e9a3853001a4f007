"""Figures of the app: traces, points, colours, and escaping of user text."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from inbedder_core import plots
from inbedder_core.comparison import compare_labelings
from inbedder_core.landmarks import cluster_centres
from inbedder_core.results import NOISE, NOT_APPLICABLE

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


def test_cluster_map_colours_noise_grey_below_and_clusters_by_the_palette():
    coords, labels, texts, names = _data()
    fig = plots.cluster_map(coords, labels, names, texts)
    first = fig.data[0]
    assert first.name.startswith("Noise") and first.marker.color == plots.NOISE_COLOR  # drawn first: underneath
    assert first.legendrank > max(t.legendrank for t in fig.data[1:])  # listed last
    by_name = {trace.name.split(" (")[0]: trace for trace in fig.data}
    palette = plots.cluster_palette(coords, labels)
    for cluster_id in (0, 1, 2):
        assert by_name[names[cluster_id]].marker.color == palette[cluster_id]
    assert len({palette[0], palette[1], palette[2]}) == 3 and palette[NOISE] == plots.NOISE_COLOR
    assert plots.cluster_color(NOISE) == plots.NOISE_COLOR and plots.cluster_color(1) == plots.PALETTE[1]
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
        stripped = value
        for tag in ("<br>", "<b>", "</b>", "<i>", "</i>"):
            stripped = stripped.replace(tag, "")
        assert "<" not in stripped and ">" not in stripped, value
    hover = next(h for trace in fig.data for h in trace.text if "second line" in h)
    assert "&lt;a href=" in hover and "&amp;" in hover and "second line" in hover
    assert "&lt;script&gt;" in fig.data[1].name
    drawn = [a.text for a in fig.layout.annotations]  # names drawn on the map are escaped too
    assert drawn and all("<" not in a and ">" not in a for a in drawn)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in drawn


def test_plot_text_truncates_before_escaping():
    assert plots.plot_text("&" * 10, max_chars=5) == "&amp;" * 4 + "…"
    assert plots.plot_text("a < b", max_chars=None) == "a &lt; b"
    assert plots.plot_text(None) == ""
    assert plots.truncate("short", 10) == "short"
    long = plots.plot_text("x" * 1000, plots.HOVER_TEXT_CHARS)
    assert len(long) == plots.HOVER_TEXT_CHARS and long.endswith("…")


def test_the_hover_card_wraps_the_text_to_a_few_lines_and_adds_the_answer_cluster_and_picked_columns():
    words = " ".join(f"word{i}" for i in range(200))  # ~1,400 characters, one paragraph
    (card,) = plots.hover_texts([words + " <x>"], np.array([0]), {0: "card arrival"}, answers=["a & b"],
                                columns=[("intent", ["lost_card"]), ("price <usd>", [12])])
    lines = card.split("<br>")
    assert lines[0] == "<b>card arrival</b>"
    text_lines = lines[1:1 + plots.HOVER_TEXT_LINES]
    assert all(len(line) <= plots.HOVER_WRAP for line in text_lines) and text_lines[-1].endswith("…")
    assert text_lines[0].startswith("word0 word1")
    assert lines[1 + plots.HOVER_TEXT_LINES] == "<i>answer:</i> a &amp; b"
    assert lines[-2:] == ["<i>intent:</i> lost_card", "<i>price &lt;usd&gt;:</i> 12"]
    short = plots.wrapped_text("short\ntext")
    assert short == "short text"  # newlines inside a document are spaces in the card


def test_cluster_map_coloured_by_a_column_names_its_grey_tail_with_how_many_values_and_documents():
    n = 60
    rng = np.random.default_rng(1)
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    labels = np.zeros(n, dtype=np.int64)
    values = [f"v{i % 30}" for i in range(n)]  # 30 categories > MAX_CATEGORIES
    fig = plots.cluster_map(coords, labels, {0: "all"}, [str(i) for i in range(n)], color_by=("intent", values))
    assert len(fig.data) == plots.MAX_CATEGORIES + 1
    n_other = n - 2 * plots.MAX_CATEGORIES
    (other,) = [t for t in fig.data if t.name.startswith(plots.OTHER_CATEGORY)]
    assert other.name == f"other (10 values, {n_other} documents) ({n_other})"
    assert other.marker.color == plots.NOISE_COLOR and len(other.customdata) == n_other
    assert sum(len(t.customdata) for t in fig.data) == n  # nothing dropped
    assert fig.layout.legend.title.text == "intent"
    for trace in fig.data:
        for position, doc in enumerate(trace.customdata):
            assert f"<i>intent:</i> {values[doc]}" in trace.text[position]
            assert trace is other or trace.name.startswith(values[doc])


def test_a_numeric_column_with_many_values_is_coloured_on_a_scale_and_missing_values_stay_grey():
    n = 50
    coords = np.random.default_rng(2).normal(size=(n, 2)).astype(np.float32)
    prices = [str(10 + i) for i in range(n - 2)] + [None, float("nan")]
    fig = plots.cluster_map(coords, np.zeros(n, dtype=np.int64), {0: "all"}, ["t"] * n, color_by=("price", prices))
    missing, scale = fig.data
    assert missing.name == "(missing) (2)" and sorted(missing.customdata) == [n - 2, n - 1]
    assert list(scale.marker.color) == [10.0 + i for i in range(n - 2)] and scale.marker.colorbar.title.text == "price"


def test_focus_brings_hits_forward_outlined_and_fades_the_rest():
    coords, labels, texts, names = _data()
    plain = plots.cluster_map(coords, labels, names, texts)
    fig = plots.cluster_map(coords, labels, names, texts, focus=[3, 1, 3], focus_name="search hits")
    focus = fig.data[-1]
    assert focus.name == "search hits (2)" and list(focus.customdata) == [1, 3]
    assert focus.marker.line.width > 0 and focus.marker.size > plain.data[1].marker.size
    palette = plots.cluster_palette(coords, labels)
    assert list(focus.marker.color) == [palette[int(labels[1])], palette[int(labels[3])]]
    assert all(t.marker.opacity < p.marker.opacity for t, p in zip(fig.data[:-1], plain.data, strict=True))
    with pytest.raises(ValueError, match="focus"):
        plots.cluster_map(coords, labels, names, texts, focus=[len(texts)])


def _blobs(n_clusters: int, per_cluster: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, size=(n_clusters, 2))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    coords = (centres[labels] + rng.normal(scale=0.5, size=(len(labels), 2))).astype(np.float32)
    return coords, labels


def test_the_palette_gives_neighbouring_clusters_distinct_colours_at_60_clusters():
    coords, labels = _blobs(60)
    palette = plots.cluster_palette(coords, labels)
    assert set(palette) == set(range(60))
    centres = cluster_centres(coords, labels)
    ids = sorted(centres)
    points = np.array([centres[i] for i in ids])
    distance = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(distance, np.inf)
    # neighbours checked independently of the colouring's own graph: each cluster's 4 nearest clusters
    for row, cluster_id in enumerate(ids):
        for col in np.argsort(distance[row])[:4]:
            other = ids[int(col)]
            assert palette[cluster_id] != palette[other], (cluster_id, other)
            assert plots.color_distance(palette[cluster_id], palette[other]) > 20, (cluster_id, other)
    assert len(set(palette.values())) > 30  # the palette is used, not a few colours repeated
    assert plots.cluster_palette(coords, labels) == palette  # deterministic


def test_the_does_not_apply_group_keeps_its_own_colour_and_takes_none_of_the_palette():
    coords, labels = _blobs(6, seed=3)
    labels = labels.copy()
    labels[labels == 5] = NOT_APPLICABLE  # issue 13's group, drawn by issue 19's neighbourhood palette
    labels[labels == 4] = NOISE
    palette = plots.cluster_palette(coords, labels)
    assert palette[NOT_APPLICABLE] == plots.NOT_APPLICABLE_COLOR and palette[NOISE] == plots.NOISE_COLOR
    colours = [palette[c] for c in range(4)]
    assert plots.NOT_APPLICABLE_COLOR not in colours and len(set(colours)) == 4


def test_cluster_names_are_drawn_at_the_centres_and_decluttered_when_they_crowd():
    coords, labels = _blobs(4, seed=1)
    names = {i: f"cluster {i}" for i in range(4)}
    fig = plots.cluster_map(coords, labels, names, ["t"] * len(labels))
    centres = cluster_centres(coords, labels)
    drawn = {a.text: (a.x, a.y) for a in fig.layout.annotations}
    assert set(drawn) == set(names.values()) and fig.layout.meta["names_hidden"] == 0
    for cluster_id, name in names.items():
        assert drawn[name] == pytest.approx(tuple(centres[cluster_id]))
    crowded, crowded_labels = _blobs(60, seed=2)
    long = {i: f"a rather long cluster name {i}" for i in range(60)}
    placed, hidden = plots.name_positions(crowded, crowded_labels, long)
    assert placed and hidden > 0 and len(placed) + hidden == 60
    sizes_first = [cluster_id for cluster_id, *_ in placed]
    assert len(set(sizes_first)) == len(placed)
    fig = plots.cluster_map(crowded, crowded_labels, long, ["t"] * len(crowded_labels))
    assert len(fig.layout.annotations) == len(placed) and fig.layout.meta["names_hidden"] == hidden
    assert not plots.cluster_map(coords, labels, names, ["t"] * len(labels), show_names=False).layout.annotations


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

    sankey = plots.cluster_sankey(table, min_share=0)
    link = sankey.data[0].link
    assert len(link.value) == int(np.count_nonzero(table.to_numpy()))
    assert sum(link.value) == len(a)
    labels = list(sankey.data[0].node.label)
    assert sorted(labels[: len(table.index)]) == sorted(plots.plot_text(x, plots.LABEL_CHARS) for x in table.index)
    assert sankey.data[0].node.color[labels.index("Noise")] == plots.NOISE_COLOR
    assert all(s < len(table.index) <= t for s, t in zip(link.source, link.target, strict=True))
    fewer = plots.cluster_sankey(table, min_count=2)
    assert all(v >= 2 for v in fewer.data[0].link.value)
    assert "flows under 2 documents not drawn" in fewer.layout.title.text
    assert sankey.layout.height == 560  # few clusters: the usual size


def test_a_sankey_of_many_clusters_keeps_the_largest_and_says_what_other_holds():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 57, 3000), rng.integers(0, 44, 3000)
    a[:600] = 3  # one large cluster on each side, flowing into each other
    b[:600] = 7
    table = compare_labelings(a, b).contingency
    fig = plots.cluster_sankey(table)
    labels = list(fig.data[0].node.label)
    assert len(labels) == 2 * (plots.SANKEY_NODES + 1)
    other_a, other_b = labels[plots.SANKEY_NODES], labels[-1]
    rest_a = int(table.sum(axis=1).sort_values(ascending=False).iloc[plots.SANKEY_NODES:].sum())
    assert other_a == f"other (45 clusters, {rest_a:,} documents)" and other_b.startswith("other (32 clusters, ")
    assert fig.data[0].node.color[plots.SANKEY_NODES] == plots.OTHER_NODE_COLOR
    link = fig.data[0].link
    hidden = re.search(r"([\d,]+) flows under ([\d,]+) documents not drawn \(([\d,]+) documents\)",
                       fig.layout.title.text)
    assert hidden and sum(link.value) + int(hidden.group(3).replace(",", "")) == 3000  # every document accounted
    assert max(link.value) >= 600 and min(link.value) >= int(hidden.group(2))
    assert labels[0] == "3" and labels[plots.SANKEY_NODES + 1] == "7"  # the matching pair faces each other, on top
    assert fig.layout.height >= 24 * len(labels) / 2


def test_the_heatmap_puts_matching_clusters_on_the_diagonal_and_shortens_crowded_labels():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 40, 2000)
    permutation = rng.permutation(40)
    b = np.where(rng.random(2000) < 0.8, permutation[a], rng.integers(0, 40, 2000))
    table = compare_labelings(a, b).contingency
    fig = plots.contingency_heatmap(table)
    z = np.asarray(fig.data[0].z)
    assert np.trace(z) == sum(int(table.to_numpy().max(axis=1)[i]) for i in range(40))  # the best match of each
    assert np.trace(z) > 3 * np.trace(table.to_numpy())
    assert all(len(t) <= 3 for t in fig.layout.xaxis.ticktext) and fig.layout.xaxis.tickangle == -90
    assert fig.layout.height >= 16 * 40 and fig.layout.xaxis.automargin
    kept = plots.contingency_heatmap(table, reorder=False)
    np.testing.assert_array_equal(np.asarray(kept.data[0].z), table.to_numpy())


def test_the_label_matrix_figure_marks_the_best_question_per_column():
    rows = [{"question": "1: feel?", "column": "sentiment", "v_measure": 0.6, "ari": 0.5, "noise_share": 0.1,
             "best": True},
            {"question": "1: feel?", "column": "<domain>", "v_measure": 0.1, "ari": 0.0, "noise_share": 0.1,
             "best": False},
            {"question": "2: about?", "column": "sentiment", "v_measure": 0.2, "ari": 0.1, "noise_share": 0.3,
             "best": False},
            {"question": "2: about?", "column": "<domain>", "v_measure": 0.7, "ari": 0.6, "noise_share": 0.3,
             "best": True}]
    fig = plots.label_matrix_figure(rows)
    heat = fig.data[0]
    assert list(heat.x) == ["sentiment", "&lt;domain&gt;"] and list(heat.y) == ["1: feel?", "2: about?"]
    np.testing.assert_allclose(np.asarray(heat.z), [[0.6, 0.1], [0.2, 0.7]])
    assert heat.text[0][0].startswith("★ best") and heat.text[1][1].startswith("★ best")
    assert "★" not in heat.text[0][1] and "noise 30%" in heat.text[1][0]


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
