"""Tests of inbedder_core.comparison: ARI/NMI, contingency, best matches, noise modes, gold scoring."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from inbedder_core.comparison import (
    ClusterMatch,
    Comparison,
    PairwiseComparison,
    compare_labelings,
    diagonal_contingency,
    diagonal_order,
    label_columns,
    label_matrix,
    pairwise_comparisons,
    score_against_gold,
)
from inbedder_core.errors import ClusteringError, EvaluationError
from inbedder_core.results import NOISE


def test_permuted_identical_labelings_agree_perfectly():
    a = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    b = np.array([7, 7, 0, 0, 4, 4, 4, 1])  # same partition, other ids
    result = compare_labelings(a, b)
    assert isinstance(result, Comparison)
    assert result.ari == pytest.approx(1.0) and result.nmi == pytest.approx(1.0)
    assert [(m.a, m.b, m.overlap, m.jaccard) for m in result.best_matches] == [
        (2, 4, 3, 1.0),
        (0, 7, 2, 1.0),
        (1, 0, 2, 1.0),
        (3, 1, 1, 1.0),
    ]


def test_contingency_counts_labels_and_totals():
    a = [0, 0, 1, 1, NOISE, 1]
    b = [5, 5, 5, NOISE, NOISE, 2]
    result = compare_labelings(a, b, names_a={0: "Card delivery", 1: "Refunds"}, names_b={5: "Money"})
    table = result.contingency
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["0: Card delivery", "1: Refunds", "Noise"]
    assert list(table.columns) == ["2", "5: Money", "Noise"]
    assert table.index.name == "A" and table.columns.name == "B"
    assert int(table.to_numpy().sum()) == 6 == result.n_compared
    assert table.loc["1: Refunds"].tolist() == [1, 1, 1]
    assert table.loc["Noise", "Noise"] == 1
    assert table.loc["0: Card delivery", "5: Money"] == 2


def test_best_matches_use_jaccard_and_are_sorted():
    a = np.array([0] * 6 + [1] * 4 + [2] * 2)
    b = np.array([0] * 4 + [1] * 2 + [1] * 4 + [NOISE] * 2)
    result = compare_labelings(a, b)
    matches = {m.a: m for m in result.best_matches}
    # A0 (6 points) shares 4 with B0 (4 points): 4 / 6; A1 (4) shares 4 with B1 (6): 4 / 6.
    assert matches[0] == ClusterMatch(0, 0, 4, pytest.approx(4 / 6))
    assert matches[1] == ClusterMatch(1, 1, 4, pytest.approx(4 / 6))
    assert matches[2] == ClusterMatch(2, NOISE, 2, pytest.approx(1.0))
    assert [m.a for m in result.best_matches] == [2, 0, 1]
    jaccards = [m.jaccard for m in result.best_matches]
    assert jaccards == sorted(jaccards, reverse=True)


def test_noise_modes_are_explicit_and_change_the_scores():
    a = np.array([0, 0, 0, 1, 1, 1, NOISE, NOISE, NOISE, NOISE])
    b = np.array([3, 3, 3, 4, 4, 4, 5, 5, 5, 5])  # B groups A's noise into one cluster

    separate = compare_labelings(a, b)
    assert separate.noise == "separate" and separate.ari == pytest.approx(1.0)

    singletons = compare_labelings(a, b, noise="singletons")
    assert singletons.noise == "singletons" and singletons.ari < 0.9
    expected = adjusted_rand_score([0, 0, 0, 1, 1, 1, 2, 3, 4, 5], b)
    assert singletons.ari == pytest.approx(expected)
    # ... but the table still shows one noise row.
    assert singletons.contingency.loc["Noise", "5"] == 4 and singletons.contingency.shape == (3, 3)
    # The same noise points on both sides still agree as singletons.
    assert compare_labelings(a, a, noise="singletons").ari == pytest.approx(1.0)

    b = np.where(b == 5, NOISE, b)
    b2 = b.copy()
    b2[0] = NOISE  # one more point is noise in B only
    excluded = compare_labelings(a, b2, noise="exclude")
    assert excluded.noise == "exclude" and excluded.n_compared == 5 and excluded.n_excluded == 5
    assert excluded.ari == pytest.approx(1.0)
    assert "Noise" not in excluded.contingency.index and "Noise" not in excluded.contingency.columns
    assert int(excluded.contingency.to_numpy().sum()) == 5


def test_exclude_with_nothing_left_gives_nan_scores():
    result = compare_labelings([NOISE, NOISE], [0, 1], noise="exclude")
    assert result.n_compared == 0 and math.isnan(result.ari) and math.isnan(result.nmi)
    assert result.contingency.shape == (0, 0) and result.best_matches == []


def test_compare_rejects_bad_input():
    with pytest.raises(ClusteringError, match="3 entries and labels_b 2"):
        compare_labelings([0, 1, 1], [0, 1])
    with pytest.raises(ClusteringError, match="noise='drop'"):
        compare_labelings([0], [0], noise="drop")  # type: ignore[arg-type]
    with pytest.raises(ClusteringError, match="-3"):
        compare_labelings([0, -3], [0, 1])
    with pytest.raises(ClusteringError, match="integer"):
        compare_labelings([0.5, 1], [0, 1])


def test_pairwise_comparisons_matrices():
    labelings = {
        "topic?": np.array([0, 0, 1, 1, 2, 2]),
        "same, renamed": np.array([5, 5, 3, 3, 9, 9]),
        "sentiment?": np.array([0, 1, 0, 1, 0, 1]),
    }
    result = pairwise_comparisons(labelings)
    assert isinstance(result, PairwiseComparison) and result.noise == "separate"
    for matrix in (result.ari, result.nmi):
        assert list(matrix.index) == list(labelings) == list(matrix.columns)
        np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
        np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0)
    assert result.ari.loc["topic?", "same, renamed"] == pytest.approx(1.0)
    assert result.ari.loc["topic?", "sentiment?"] == pytest.approx(
        compare_labelings(labelings["topic?"], labelings["sentiment?"]).ari
    )
    assert result.nmi.loc["topic?", "sentiment?"] < 0.5
    with pytest.raises(ClusteringError, match="different lengths"):
        pairwise_comparisons({"a": [0, 1], "b": [0]})


def test_gold_scoring_perfect_and_shuffled():
    gold = ["refund", "refund", "card", "card", "card", "pin", "pin", "pin"] * 5
    perfect = np.array([{"refund": 2, "card": 0, "pin": 7}[g] for g in gold])
    scores = score_against_gold(perfect, gold)
    assert set(scores) == {"v_measure", "homogeneity", "completeness", "ari", "nmi"}
    for value in scores.values():
        assert value == pytest.approx(1.0)
    shuffled = np.random.default_rng(0).permutation(perfect)
    worse = score_against_gold(shuffled, gold)
    assert worse["v_measure"] < 0.5 and worse["ari"] < 0.5


def test_gold_scoring_treats_noise_as_one_bucket():
    gold = ["a", "a", "b", "b"]
    # Noise on one point of each class: the noise bucket mixes classes, so homogeneity drops.
    scores = score_against_gold([0, NOISE, 1, NOISE], gold)
    assert scores["homogeneity"] < 1.0 and scores["completeness"] < 1.0
    # Noise that coincides with a class is as good as a cluster.
    assert score_against_gold([0, 0, NOISE, NOISE], gold)["v_measure"] == pytest.approx(1.0)


def test_gold_scoring_rejects_mismatched_input():
    with pytest.raises(EvaluationError, match="gold has 2"):
        score_against_gold([0, 1, 1], ["x", "y"])
    with pytest.raises(EvaluationError, match="empty"):
        score_against_gold([], [])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(min_value=-1, max_value=5), min_size=n, max_size=n),
            st.lists(st.integers(min_value=-1, max_value=5), min_size=n, max_size=n),
        )
    ),
    st.sampled_from(["separate", "singletons", "exclude"]),
)
def test_scores_are_symmetric_and_bounded(pair, noise):
    a, b = pair
    ab = compare_labelings(a, b, noise=noise)
    ba = compare_labelings(b, a, noise=noise)
    if ab.n_compared == 0:
        assert math.isnan(ab.ari) and math.isnan(ba.ari)
        return
    assert ab.ari == pytest.approx(ba.ari) and ab.nmi == pytest.approx(ba.nmi)
    assert -1.0 <= ab.ari <= 1.0 and -1e-12 <= ab.nmi <= 1.0 + 1e-12
    assert int(ab.contingency.to_numpy().sum()) == ab.n_compared
    np.testing.assert_array_equal(ab.contingency.to_numpy(), ba.contingency.to_numpy().T)
    # Renaming the ids of one side changes nothing.
    renamed = [x if x == NOISE else 10 - x for x in a]
    assert compare_labelings(renamed, b, noise=noise).ari == pytest.approx(ab.ari)


# --------------------------------------------------------------------------- label columns and the matrix


def test_label_columns_are_the_columns_with_a_few_repeated_values():
    n = 40
    table = pd.DataFrame({
        "id": [str(i) for i in range(n)],  # every value differs: an id, not a label
        "text": [f"document {i}" for i in range(n)],
        "sentiment": ["positive", "negative"] * (n // 2),
        "domain": ["movie", "product", "restaurant", "movie"] * (n // 4),
        "stars": [str(1 + i % 5) for i in range(n)],  # integers: a label
        "price": [f"{i % 7}.5" for i in range(n)],  # a measurement, not a class
        "constant": ["x"] * n,
    })
    assert label_columns(table, exclude=["text"]) == ["sentiment", "domain", "stars"]
    assert label_columns(table, exclude=["text"], max_values=4) == ["sentiment", "domain"]


def test_label_matrix_scores_every_question_against_every_column_and_marks_the_best():
    sentiment = ["pos", "neg"] * 6
    domain = ["movie"] * 6 + ["food"] * 6
    by_sentiment = np.array([0, 1] * 6)
    by_domain = np.array([2] * 6 + [3] * 5 + [NOISE])
    rows = label_matrix({"1: feel?": by_sentiment, "2: about?": by_domain},
                        {"sentiment": sentiment, "domain": domain})
    assert [(r["question"], r["column"]) for r in rows] == [("1: feel?", "sentiment"), ("1: feel?", "domain"),
                                                            ("2: about?", "sentiment"), ("2: about?", "domain")]
    cell = {(r["question"], r["column"]): r for r in rows}
    assert cell[("1: feel?", "sentiment")]["v_measure"] == pytest.approx(1.0)
    assert cell[("1: feel?", "sentiment")]["ari"] == pytest.approx(1.0)
    assert cell[("2: about?", "domain")]["noise_share"] == pytest.approx(1 / 12)
    assert cell[("1: feel?", "sentiment")]["noise_share"] == 0.0
    assert [r["best"] for r in rows] == [True, False, False, True]
    assert cell[("2: about?", "domain")] == {**score_against_gold(by_domain, domain), "question": "2: about?",
                                             "column": "domain", "noise_share": pytest.approx(1 / 12), "best": True}
    tie = label_matrix({"a": by_sentiment, "b": by_sentiment}, {"sentiment": sentiment})
    assert [r["best"] for r in tie] == [True, False]  # a tie goes to the first question


def test_diagonal_order_pairs_matching_clusters_largest_first():
    table = np.array([[0, 9, 0, 1],
                      [5, 0, 0, 0],
                      [0, 0, 2, 0]])
    rows, cols = diagonal_order(table)
    reordered = table[np.ix_(rows, cols)]
    assert np.diag(reordered).tolist() == [9, 5, 2]
    assert cols.tolist() == [1, 0, 2, 3]  # the unpaired column last
    assert sorted(rows.tolist()) == [0, 1, 2]


def test_diagonal_contingency_keeps_noise_last_and_every_count():
    a = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, NOISE])
    b = np.array([5, 5, 5, 4, 4, 3, 3, 3, NOISE, 3])
    table = compare_labelings(a, b).contingency
    diagonal = diagonal_contingency(table)
    assert diagonal.index[-1] == "Noise" and diagonal.columns[-1] == "Noise"
    assert diagonal.to_numpy().sum() == table.to_numpy().sum()
    assert np.diag(diagonal.to_numpy())[:3].tolist() == [3, 3, 2]
    # ties (3 and 3) keep the row order
    assert list(diagonal.index[:3]) == ["0", "2", "1"] and list(diagonal.columns[:3]) == ["5", "3", "4"]


def test_a_repeated_column_name_counts_once_by_its_first_column():
    """A labeled CSV read back may hold a name twice (``cluster_1`` of an earlier run and of this one)."""
    n = 40
    table = pd.DataFrame({"text": [f"document {i}" for i in range(n)],
                          "a": ["x", "y"] * (n // 2), "b": [str(i) for i in range(n)]})
    table.columns = ["text", "cluster_1", "cluster_1"]
    assert label_columns(table, exclude=["text"]) == ["cluster_1"]
    table.columns = ["text", "b", "b"]
    table.iloc[:, 1] = [str(i) for i in range(n)]  # the first "b" is no label: the second is not considered
    assert label_columns(table, exclude=["text"]) == []
