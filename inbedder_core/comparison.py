"""Compare clusterings: of one corpus under two instructions, or against gold labels.

Cluster ids are arbitrary, so every figure here is invariant to renaming them:
ARI and NMI (scikit-learn), a contingency table of cluster A x cluster B, and for
each cluster of A its best-overlapping cluster of B by Jaccard index.

Noise (``NOISE`` = -1) needs a decision, made explicit by ``noise``:

- ``"separate"`` (default): all noise points of a labelling form one extra cluster;
- ``"singletons"``: each noise point is a cluster of its own, so noise points never
  count as grouped together (noise in one labelling that the other clusters lowers
  ARI/NMI more than under ``"separate"``);
- ``"exclude"``: points that are noise in either labelling are dropped.

The contingency table and best matches always show noise as one ``"Noise"`` row/column
(absent under ``"exclude"``); the mode changes the scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from inbedder_core.cluster.base import as_labels
from inbedder_core.errors import ClusteringError, EvaluationError
from inbedder_core.results import NOISE, NOISE_NAME

if TYPE_CHECKING:
    import pandas as pd

NoiseMode = Literal["separate", "singletons", "exclude"]
NOISE_MODES: tuple[str, ...] = ("separate", "singletons", "exclude")


class ClusterMatch(NamedTuple):
    """A cluster of A and the cluster of B it overlaps best (``b`` is ``NOISE`` for B's noise)."""

    a: int
    b: int
    overlap: int
    jaccard: float


@dataclass
class Comparison:
    """How two labellings of the same documents agree.

    Attributes:
        ari: adjusted Rand index, in [-1, 1] (1: same partition, ~0: chance); NaN when no
            point is left to compare.
        nmi: normalised mutual information, in [0, 1]; NaN when no point is left.
        contingency: ``pandas.DataFrame`` of counts, rows = clusters of A, columns = clusters
            of B, labelled ``"3"`` or ``"3: Card delivery"`` when names are given, noise
            as ``"Noise"`` (last). Totals equal ``n_compared``.
        best_matches: for each non-noise cluster of A, the cluster of B with the highest
            Jaccard index (ties: larger overlap, then smaller id), sorted by Jaccard,
            highest first.
        noise: the noise mode used.
        n_compared: points the scores were computed on.
        n_excluded: points dropped (``noise="exclude"`` only).
    """

    ari: float
    nmi: float
    contingency: pd.DataFrame
    best_matches: list[ClusterMatch]
    noise: str
    n_compared: int
    n_excluded: int = 0


@dataclass
class PairwiseComparison:
    """ARI and NMI between every pair of labellings (symmetric, diagonal 1).

    Attributes:
        ari: ``pandas.DataFrame`` indexed and columned by labelling name.
        nmi: same shape, NMI.
        noise: the noise mode used.
    """

    ari: pd.DataFrame
    nmi: pd.DataFrame
    noise: str


def _check_noise_mode(noise: str) -> None:
    if noise not in NOISE_MODES:
        raise ClusteringError(f"noise={noise!r} is invalid; expected one of {list(NOISE_MODES)}")


def _for_scoring(a: np.ndarray, b: np.ndarray, noise: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels as the scores see them under ``noise`` (after any exclusion)."""
    if noise != "singletons":
        return a, b  # "separate": -1 is just another id; "exclude": no noise is left
    out = []
    for lab in (a, b):
        lab = lab.copy()
        is_noise = lab == NOISE
        start = int(lab.max()) + 1 if lab.size else 0
        lab[is_noise] = start + np.arange(int(is_noise.sum()))
        out.append(lab)
    return out[0], out[1]


def _scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if a.size == 0:
        return float("nan"), float("nan")
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return float(adjusted_rand_score(a, b)), float(normalized_mutual_info_score(a, b))


def _axis_labels(ids: np.ndarray, names: Mapping[int, str] | None) -> list[str]:
    out = []
    for i in ids:
        i = int(i)
        if i == NOISE:
            out.append(NOISE_NAME)
        elif names is not None and i in names and names[i]:
            out.append(f"{i}: {names[i]}")
        else:
            out.append(str(i))
    return out


def _codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids in display order (ascending, noise last) and each point's position in it."""
    ids = np.unique(labels)
    codes = np.searchsorted(ids, labels)
    if ids.size and ids[0] == NOISE:
        ids = np.roll(ids, -1)
        codes = (codes - 1) % ids.size
    return ids, codes


def compare_labelings(
    labels_a: Sequence[int] | np.ndarray,
    labels_b: Sequence[int] | np.ndarray,
    *,
    names_a: Mapping[int, str] | None = None,
    names_b: Mapping[int, str] | None = None,
    noise: NoiseMode = "separate",
    label_a: str = "A",
    label_b: str = "B",
) -> Comparison:
    """Compare two labellings of the same documents.

    Args:
        labels_a, labels_b: ``int (n,)`` cluster ids, ``NOISE`` for noise, same order of
            documents.
        names_a, names_b: optional cluster id -> name, used in the contingency labels.
        noise: ``"separate"``, ``"singletons"`` or ``"exclude"`` (see the module docs).
        label_a, label_b: names of the contingency's row and column axes (e.g. the
            instructions).

    Returns:
        A ``Comparison``. Identical partitions give ARI = NMI = 1 whatever the ids.

    Raises:
        ClusteringError: lengths differ, labels are not integer ids >= -1, or an
            unknown noise mode.
    """
    _check_noise_mode(noise)
    a = as_labels(labels_a, what="labels_a")
    b = as_labels(labels_b, what="labels_b")
    if a.shape != b.shape:
        raise ClusteringError(
            f"labels_a has {a.shape[0]} entries and labels_b {b.shape[0]}; "
            "both labellings must cover the same documents in the same order"
        )
    n_excluded = 0
    if noise == "exclude":
        keep = (a != NOISE) & (b != NOISE)
        n_excluded = int((~keep).sum())
        a, b = a[keep], b[keep]
    ari, nmi = _scores(*_for_scoring(a, b, noise))

    import pandas as pd

    ids_a, codes_a = _codes(a)
    ids_b, codes_b = _codes(b)
    table = np.zeros((ids_a.size, ids_b.size), dtype=np.int64)
    np.add.at(table, (codes_a, codes_b), 1)
    contingency = pd.DataFrame(
        table,
        index=pd.Index(_axis_labels(ids_a, names_a), name=label_a),
        columns=pd.Index(_axis_labels(ids_b, names_b), name=label_b),
    )

    size_a = table.sum(axis=1)
    size_b = table.sum(axis=0)
    matches: list[ClusterMatch] = []
    for r, cid in enumerate(ids_a):
        if cid == NOISE or ids_b.size == 0:
            continue
        overlap = table[r]
        jaccard = overlap / (size_a[r] + size_b - overlap)
        # best: highest Jaccard, then largest overlap, then first column (smaller id, noise last)
        best = max(range(ids_b.size), key=lambda c: (jaccard[c], overlap[c], -c))
        matches.append(ClusterMatch(int(cid), int(ids_b[best]), int(overlap[best]), float(jaccard[best])))
    matches.sort(key=lambda m: (-m.jaccard, -m.overlap, m.a))
    return Comparison(
        ari=ari,
        nmi=nmi,
        contingency=contingency,
        best_matches=matches,
        noise=noise,
        n_compared=int(a.size),
        n_excluded=n_excluded,
    )


def pairwise_comparisons(
    labelings: Mapping[str, Sequence[int] | np.ndarray],
    *,
    noise: NoiseMode = "separate",
) -> PairwiseComparison:
    """ARI and NMI between every pair of labellings of the same documents.

    Args:
        labelings: name (e.g. the instruction) -> ``int (n,)`` labels; all the same length.
        noise: noise mode, as in ``compare_labelings`` (``"exclude"`` drops, per pair,
            the points that are noise in either).

    Returns:
        A ``PairwiseComparison`` with symmetric ``ari`` and ``nmi`` DataFrames (diagonal 1,
        or NaN under ``"exclude"`` for a labelling that is all noise).

    Raises:
        ClusteringError: lengths differ, invalid labels, unknown noise mode.
    """
    _check_noise_mode(noise)
    import pandas as pd

    names = list(labelings)
    arrays = {name: as_labels(labelings[name], what=f"labels of {name!r}") for name in names}
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ClusteringError(f"labellings have different lengths {lengths}; they must cover the same documents")
    k = len(names)
    ari = np.full((k, k), np.nan)
    nmi = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i, k):
            a, b = arrays[names[i]], arrays[names[j]]
            if noise == "exclude":
                keep = (a != NOISE) & (b != NOISE)
                a, b = a[keep], b[keep]
            s_ari, s_nmi = _scores(*_for_scoring(a, b, noise))
            ari[i, j] = ari[j, i] = s_ari
            nmi[i, j] = nmi[j, i] = s_nmi
    return PairwiseComparison(
        ari=pd.DataFrame(ari, index=names, columns=names),
        nmi=pd.DataFrame(nmi, index=names, columns=names),
        noise=noise,
    )


def score_against_gold(labels: Sequence[int] | np.ndarray, gold: Sequence[Any]) -> dict[str, float]:
    """Score a clustering against gold classes, as the InBedder paper does (V-measure).

    Noise (``NOISE``) is treated as one more predicted cluster (one bucket): a noise
    bucket that mixes classes lowers homogeneity, and a class split between a cluster and
    the noise bucket lowers completeness. To score the labels after noise assignment,
    pass those instead. Gold values are compared as given (strings, typically); missing
    values (``None``, NaN) form one class of their own.

    Args:
        labels: ``int (n,)`` predicted cluster ids.
        gold: ``n`` gold class labels.

    Returns:
        ``{"v_measure", "homogeneity", "completeness", "ari", "nmi"}``, floats (all 1.0 for
        a perfect clustering up to renaming).

    Raises:
        EvaluationError: lengths differ, no points, or labels that are not integer ids.
    """
    try:
        pred = as_labels(labels)
    except ClusteringError as exc:
        raise EvaluationError(str(exc)) from exc
    gold_list = list(gold)
    if len(gold_list) != pred.shape[0]:
        raise EvaluationError(
            f"labels has {pred.shape[0]} entries but gold has {len(gold_list)}; "
            "they must cover the same documents in the same order"
        )
    if pred.size == 0:
        raise EvaluationError("no documents to score: labels and gold are empty")
    import pandas as pd
    from sklearn.metrics import homogeneity_completeness_v_measure

    gold_codes, _ = pd.factorize(pd.Series(gold_list, dtype=object), use_na_sentinel=False)
    homogeneity, completeness, v_measure = homogeneity_completeness_v_measure(gold_codes, pred)
    ari, nmi = _scores(gold_codes, pred)
    return {
        "v_measure": float(v_measure),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
        "ari": ari,
        "nmi": nmi,
    }


def label_columns(table: pd.DataFrame, exclude: Sequence[str] = (), max_values: int = 200) -> list[str]:
    """The columns of ``table`` that look like labels to score clusterings against, in table order.

    A label column has at least 2 distinct values (missing not counted), at most ``max_values``
    and fewer than half as many as there are rows (so ids and free text are not labels), and is
    not a column of non-integer numbers (a measurement, not a class). ``exclude``: the text column.
    A name the table repeats (a labeled CSV read back holds ``cluster_1`` of an earlier run) counts
    once, by its first column.
    """
    import pandas as pd

    out: list[str] = []
    seen: set[str] = set()
    n_rows = len(table)
    for position, column in enumerate(table.columns):
        if str(column) in exclude or str(column) in seen:
            continue
        seen.add(str(column))
        values = table.iloc[:, position]
        distinct = values.dropna().nunique()
        if distinct < 2 or distinct > max_values or distinct > n_rows / 2:
            continue
        numbers = pd.to_numeric(values.dropna(), errors="coerce")
        if numbers.notna().all() and not (numbers == numbers.round()).all():
            continue
        out.append(str(column))
    return out


def label_matrix(labelings: Mapping[str, Sequence[int] | np.ndarray],
                 label_table: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every labelling scored against every label column: the question x label-column matrix.

    Args:
        labelings: name (the instruction) -> ``int (n,)`` cluster labels, ``NOISE`` for noise.
        label_table: label column name -> ``n`` gold values.

    Returns:
        One row per (labelling, column), labellings in order, then columns in order: ``question``,
        ``column``, ``v_measure``, ``homogeneity``, ``completeness``, ``ari``, ``nmi`` (as
        ``score_against_gold``, noise as one cluster), ``noise_share`` (of the labelling) and
        ``best`` (True for the labelling with the highest V-measure for that column; ties: the
        first). The best question per column is the one whose map follows that label most.

    Raises:
        EvaluationError: lengths differ, or no documents.
    """
    rows: list[dict[str, Any]] = []
    for question, labels in labelings.items():
        labels = np.asarray(labels)
        noise_share = float(np.mean(labels == NOISE)) if labels.size else 0.0
        for column, gold in label_table.items():
            rows.append({"question": question, "column": column, **score_against_gold(labels, gold),
                         "noise_share": noise_share, "best": False})
    for column in label_table:
        best: dict[str, Any] | None = None
        for row in rows:
            if row["column"] == column and (best is None or _v(row) > _v(best)):  # ties: the first question
                best = row
        if best is not None:
            best["best"] = True
    return rows


def _v(row: Mapping[str, Any]) -> float:
    value = float(row["v_measure"])
    return -1.0 if np.isnan(value) else value


def diagonal_order(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column orders that put matching clusters on the diagonal of a contingency table.

    Rows and columns are paired by the assignment that maximises the documents on the diagonal
    (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``); pairs come largest overlap
    first, then the unpaired rows (or columns) in order of their largest cell's column (row), so
    that they sit near their best match. Returns two permutations (``int`` arrays).
    """
    from scipy.optimize import linear_sum_assignment

    values = np.asarray(table, dtype=np.float64)
    n_rows, n_cols = values.shape
    if values.size == 0:
        return np.arange(n_rows), np.arange(n_cols)
    rows, cols = linear_sum_assignment(-values)
    pairs = sorted(zip(rows.tolist(), cols.tolist(), strict=True), key=lambda p: (-values[p[0], p[1]], p[0]))
    row_order = [r for r, _ in pairs]
    col_order = [c for _, c in pairs]
    col_rank = {c: i for i, c in enumerate(col_order)}
    row_rank = {r: i for i, r in enumerate(row_order)}
    rest_rows = [r for r in range(n_rows) if r not in row_rank]
    rest_cols = [c for c in range(n_cols) if c not in col_rank]
    # an unpaired row goes after the pairs, ordered by where its best column sits
    rest_rows.sort(key=lambda r: (col_rank.get(int(np.argmax(values[r])), n_cols), r))
    rest_cols.sort(key=lambda c: (row_rank.get(int(np.argmax(values[:, c])), n_rows), c))
    return np.array(row_order + rest_rows, dtype=int), np.array(col_order + rest_cols, dtype=int)


def diagonal_contingency(contingency: pd.DataFrame) -> pd.DataFrame:
    """``contingency`` with rows and columns reordered by ``diagonal_order``, noise kept last."""
    index, columns = list(contingency.index), list(contingency.columns)
    inner_rows = [i for i, label in enumerate(index) if label != NOISE_NAME]
    inner_cols = [i for i, label in enumerate(columns) if label != NOISE_NAME]
    values = contingency.to_numpy()[np.ix_(inner_rows, inner_cols)]
    row_order, col_order = diagonal_order(values)
    rows = [inner_rows[i] for i in row_order] + [i for i, label in enumerate(index) if label == NOISE_NAME]
    cols = [inner_cols[i] for i in col_order] + [i for i, label in enumerate(columns) if label == NOISE_NAME]
    return contingency.iloc[rows, cols]
