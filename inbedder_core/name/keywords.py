"""Keyword names: class-based TF-IDF over each cluster's answers (or texts), the most common
answers, and ``KeywordLabeler``, the offline labeller that never fails.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LabelingError
from ..results import NOISE, NOISE_NAME, ClusterName
from .base import _check_inputs, _positive_int
from .cleaning import _cap

if TYPE_CHECKING:
    pass



# Negations carry meaning in short answers ("not satisfied" vs "satisfied"), so they are kept
# even though scikit-learn's English list contains them.
NEGATIONS = frozenset(
    {"cannot", "neither", "never", "no", "nobody", "none", "nor", "not", "nothing", "nowhere", "without"}
)


# --------------------------------------------------------------------------------------------
# Keywords: class-based TF-IDF
# --------------------------------------------------------------------------------------------


def _resolve_stop_words(stop_words: str | Sequence[str] | None) -> list[str] | None:
    if stop_words is None:
        return None
    if isinstance(stop_words, str):
        if stop_words != "english":
            raise LabelingError(f"stop_words must be 'english', a list of words or None; got {stop_words!r}")
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return sorted(set(ENGLISH_STOP_WORDS) - NEGATIONS)
    return sorted({str(word).lower() for word in stop_words})


_TERMS_MEMO: OrderedDict[tuple[Any, ...], tuple[Any, np.ndarray] | None] = OrderedDict()
_TERMS_MEMO_SIZE = 4
_TERMS_LOCK = threading.Lock()


def _document_terms(docs: Sequence[str | None], ngram_range: tuple[int, ...],
                    stop_words: str | Sequence[str] | None) -> tuple[Any, np.ndarray] | None:
    """``(document-term counts, terms)`` of ``docs``, or ``None`` for an empty vocabulary.

    Memoised on the documents' content (a digest) and the options for the last few corpora, so
    re-clustering the same documents (a knob change) re-counts nothing: at 50,000 documents the
    counting is most of the naming time.
    """
    texts = ["" if d is None else str(d) for d in docs]
    digest = hashlib.blake2b(digest_size=16)
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    words = stop_words if stop_words is None or isinstance(stop_words, str) else tuple(stop_words)
    key = (digest.hexdigest(), len(texts), ngram_range, words)
    with _TERMS_LOCK:
        if key in _TERMS_MEMO:
            _TERMS_MEMO.move_to_end(key)
            return _TERMS_MEMO[key]
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(ngram_range=ngram_range, stop_words=_resolve_stop_words(stop_words), lowercase=True)
    try:
        counted: tuple[Any, np.ndarray] | None = (vectorizer.fit_transform(texts),
                                                   vectorizer.get_feature_names_out())
    except ValueError:  # empty vocabulary
        counted = None
    with _TERMS_LOCK:
        _TERMS_MEMO[key] = counted
        while len(_TERMS_MEMO) > _TERMS_MEMO_SIZE:
            _TERMS_MEMO.popitem(last=False)
    return counted


def class_tfidf(
    docs: Sequence[str | None],
    labels: Sequence[int] | np.ndarray,
    *,
    top_n: int = 8,
    ngram_range: tuple[int, int] = (1, 2),
    stop_words: str | Sequence[str] | None = "english",
) -> dict[int, list[tuple[str, float]]]:
    """Top terms per cluster by class-based TF-IDF (c-TF-IDF, as in BERTopic).

    Each cluster's documents form one class document. For term ``t`` and class ``c``:
    ``tf(t, c) = count(t, c) / total terms in c`` and
    ``idf(t) = log(1 + A / f(t))``, where ``A`` is the mean number of terms per class and ``f(t)``
    the frequency of ``t`` over all classes. The score is ``tf * idf``. Terms are counted per
    document and summed per class, so no bigram spans two documents. The noise bucket is a class
    like any other (as in BERTopic), so words common in the noise rank lower everywhere.

    Args:
        docs: one string per document (``None`` counts as empty).
        labels: ``int (n_docs,)`` cluster id per document, ``NOISE`` for noise.
        top_n: terms kept per cluster.
        ngram_range: word n-gram sizes (stop words are removed before n-grams are formed).
        stop_words: ``"english"`` (scikit-learn's list minus negations such as "not", which
            survive inside n-grams like "not happy" but never score alone), a list, or ``None``.

    Returns:
        cluster id -> ``[(term, score), ...]`` best first (ties broken alphabetically), for every
        cluster id in ``labels``; empty when a cluster has no countable term.

    Raises:
        LabelingError: mismatched lengths or invalid parameters.
    """
    label_array = _check_inputs(docs, labels, None)
    top_n = _positive_int(top_n, "top_n")
    ids = [int(c) for c in np.unique(label_array)]
    result: dict[int, list[tuple[str, float]]] = {c: [] for c in ids}
    if not ids:
        return result
    from scipy import sparse

    counted = _document_terms(docs, tuple(ngram_range), stop_words)
    if counted is None:  # empty vocabulary: every document is empty or only stop words
        return result
    doc_counts, terms = counted
    row_of = {c: i for i, c in enumerate(ids)}
    rows = np.array([row_of[int(c)] for c in label_array], dtype=np.int64)
    membership = sparse.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(ids), len(rows)))
    counts = sparse.csr_matrix(membership @ doc_counts, dtype=np.float64)
    class_totals = np.asarray(counts.sum(axis=1)).ravel()
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    mean_terms = counts.sum() / len(ids)
    idf = np.log(1.0 + mean_terms / np.maximum(term_freq, 1e-12))
    if isinstance(stop_words, str):  # negations are kept for bigrams ("not happy"), never alone
        idf[[i for i, term in enumerate(terms) if set(term.split()) <= NEGATIONS]] = 0.0
    for i, c in enumerate(ids):
        start, end = counts.indptr[i], counts.indptr[i + 1]
        if class_totals[i] <= 0 or start == end:
            continue
        cols = counts.indices[start:end]
        scores = counts.data[start:end] / class_totals[i] * idf[cols]
        cols, scores = cols[scores > 0], scores[scores > 0]
        order = np.lexsort((terms[cols], -scores))[:top_n]
        result[c] = [(str(terms[cols[j]]), float(scores[j])) for j in order]
    return result


def normalize_answer(answer: str | None) -> str:
    """Lower-case, collapse whitespace, drop surrounding quotes and trailing punctuation."""
    if answer is None:
        return ""
    text = " ".join(str(answer).split()).lower()
    return text.strip(" \"'`“”‘’«».,;:!?")


def top_answers(
    answers: Sequence[str | None], labels: Sequence[int] | np.ndarray, n: int = 5
) -> dict[int, list[tuple[str, int]]]:
    """Most frequent normalised answers per cluster.

    Returns:
        cluster id -> ``[(answer, count), ...]``, at most ``n``, most frequent first (ties in order
        of first appearance), for every cluster id in ``labels``; empty answers are not counted.

    Raises:
        LabelingError: ``answers`` and ``labels`` differ in length, or ``n`` is not positive.
    """
    label_array = _check_inputs(answers, labels, None)
    n = _positive_int(n, "n")
    counters: dict[int, Counter[str]] = {int(c): Counter() for c in np.unique(label_array)}
    for answer, cluster in zip(answers, label_array, strict=True):
        key = normalize_answer(answer)
        if key:
            counters[int(cluster)][key] += 1
    return {c: counter.most_common(n) for c, counter in counters.items()}


def name_from_keywords(terms: Sequence[str], *, max_terms: int = 3, max_chars: int = 60) -> str:
    """A short readable name from ranked keywords, e.g. ``"lost card / stolen"``.

    Terms whose words are all contained in an already chosen term are skipped; a longer term that
    contains a chosen one replaces it (``"card"`` then ``"lost card"`` gives ``"lost card"``).
    Returns ``""`` when ``terms`` is empty.
    """
    chosen: list[str] = []
    for term in terms:
        words = set(term.split())
        if not words or any(words <= set(c.split()) for c in chosen):
            continue  # nothing new
        covered = [i for i, c in enumerate(chosen) if set(c.split()) < words]
        if covered:  # the longer term takes the place of the first one it contains
            candidate = [term if i == covered[0] else c for i, c in enumerate(chosen) if i not in covered[1:]]
        elif len(chosen) < max_terms:
            candidate = [*chosen, term]
        else:
            continue
        if chosen and len(" / ".join(candidate)) > max_chars:
            continue
        chosen = candidate
    return _cap(" / ".join(chosen), max_chars)


class KeywordLabeler:
    """Names clusters from c-TF-IDF keywords; offline, deterministic, always available.

    Args:
        top_n: keywords kept per cluster (for answers and for texts separately).
        ngram_range: word n-gram sizes.
        stop_words: ``"english"`` (scikit-learn's list minus negations), a list, or ``None``.
        name_terms: at most this many keywords make up the name.
        max_name_chars: the name is capped to this many characters.
        n_top_answers: how many of the most frequent answers the description lists.

    Attributes (after ``label``):
        errors_: always empty; present so every labeller can be inspected the same way.
    """

    def __init__(
        self,
        top_n: int = 8,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        stop_words: str | Sequence[str] | None = "english",
        name_terms: int = 3,
        max_name_chars: int = 60,
        n_top_answers: int = 5,
    ) -> None:
        self.top_n = top_n
        self.ngram_range = ngram_range
        self.stop_words = stop_words
        self.name_terms = name_terms
        self.max_name_chars = max_name_chars
        self.n_top_answers = n_top_answers

    def label(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        answers: Sequence[str] | None = None,
        instruction: str | None = None,
        *,
        vectors: np.ndarray | None = None,
    ) -> list[ClusterName]:
        """One ``ClusterName`` per cluster id in sorted order (noise first when present).

        Args:
            texts: ``n_docs`` documents.
            labels: ``int (n_docs,)``, ``NOISE`` for noise.
            answers: the model's answer per document, or ``None``. When given, the name comes from
                the answers' keywords (``answer_keywords``); ``keywords`` are always the texts'.
            instruction: unused (kept so labellers are interchangeable).
            vectors: unused (kept so labellers are interchangeable).

        Raises:
            LabelingError: mismatched lengths or invalid parameters.
        """
        label_array = _check_inputs(texts, labels, answers)
        _positive_int(self.name_terms, "name_terms")
        max_chars = _positive_int(self.max_name_chars, "max_name_chars")
        self.errors_: list[str] = []
        options = {"top_n": self.top_n, "ngram_range": self.ngram_range, "stop_words": self.stop_words}
        text_terms = class_tfidf(texts, label_array, **options)  # type: ignore[arg-type]
        answer_terms = class_tfidf(answers, label_array, **options) if answers is not None else {}  # type: ignore[arg-type]
        common = (
            top_answers(answers, label_array, n=_positive_int(self.n_top_answers, "n_top_answers"))
            if answers is not None
            else {}
        )
        names: list[ClusterName] = []
        for cluster in text_terms:
            size = int(np.sum(label_array == cluster))
            keywords = [t for t, _ in text_terms[cluster]]
            answer_keywords = [t for t, _ in answer_terms.get(cluster, [])]
            if cluster == NOISE:
                names.append(
                    ClusterName(
                        cluster_id=cluster,
                        name=NOISE_NAME,
                        description=_keyword_description(
                            f"{_documents(size)} not assigned to any cluster (noise)", common.get(cluster, []), keywords
                        ),
                        keywords=keywords,
                        answer_keywords=answer_keywords,
                        source="noise",
                    )
                )
                continue
            description = _keyword_description(_documents(size), common.get(cluster, []), keywords)
            name = name_from_keywords(answer_keywords or keywords, max_terms=self.name_terms, max_chars=max_chars)
            names.append(
                ClusterName(
                    cluster_id=cluster,
                    name=name or f"Cluster {cluster}",
                    description=description,
                    keywords=keywords,
                    answer_keywords=answer_keywords,
                    source="keywords",
                )
            )
        return names


def _documents(size: int) -> str:
    return f"{size} document" + ("" if size == 1 else "s")


def _keyword_description(head: str, common: list[tuple[str, int]], keywords: list[str]) -> str:
    parts = [head]
    if common:
        parts.append("Top answers: " + ", ".join(f"{answer} ({count})" for answer, count in common))
    if keywords:
        parts.append("Keywords: " + ", ".join(keywords))
    return _cap(". ".join(parts) + ".", 240)
