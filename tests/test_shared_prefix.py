"""Shared document prefixes (issue 15, part 5): several questions for the price of a few.

``encode_many`` must give what ``encode`` gives per question (cosine >= 0.9999, equal answers) on
tiny random causal models of three architectures, with documents of different lengths in a batch,
texts whose tokens merge across the document/question boundary, and documents cut differently under
questions of different lengths; the cache computes only the misses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inbedder_core.analysis import Analysis, AnalysisSettings
from inbedder_core.cache import CachedEncoder, EmbeddingCache
from inbedder_core.cli import main
from inbedder_core.embedding_io import read_embeddings
from inbedder_core.encoder import load_encoder
from inbedder_core.io.load import load_corpus
from inbedder_core.prompts import split_pattern
from inbedder_core.shared_prefix import split_rows

QUESTIONS = ["what does the customer need ?", "how does the customer feel ?", "why ?",
             "what does the customer want to do with the card and the money ?"]
TEXTS = ["pin", "my card was declined at the atm why", "", "refund", "still waiting for my card to arrive please help",
         "i lost my phone and my card and i am worried", "top up", "exchange rate fee on my transfer is not working"]
# A document ending in whitespace: byte-level BPE joins it with the "\n\n" after the document.
BPE_TEXTS = ["my card\n", "pin ", "refund\n\n", "the atm  ", "why was my card declined\n\n\n", "top up", "card\t", ""]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A random 2-layer GPT2LMHeadModel with a byte-level BPE tokenizer trained here (the GPT-2/OPT kind)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    prompts = [f"### Input:\n{t}\n\n### Instruction:\n{q}\n\n### Response:"
               for t in TEXTS + BPE_TEXTS for q in QUESTIONS]
    bpe = ByteLevelBPETokenizer()  # learns "\n\n" and " \n" from documents ending in whitespace, as GPT-2 has them
    bpe.train_from_iterator([" ".join(TEXTS), *prompts] * 5, vocab_size=400, min_frequency=1,
                            special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                                        eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                        bos_token_id=0, eos_token_id=0)
    path = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2LMHeadModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def assert_same_as_one_question(encoder, texts, questions, **options):
    many = encoder.encode_many(texts, questions, **options)
    assert len(many) == len(questions)
    for question, got in zip(questions, many, strict=True):
        one = encoder.encode(texts, question, **options)
        assert got.embeddings.shape == one.embeddings.shape and got.embeddings.dtype == np.float32
        assert cosines(got.embeddings, one.embeddings).min() >= 0.9999
        assert got.answers == one.answers
        assert (got.n_encoded, got.n_truncated) == (one.n_encoded, one.n_truncated)
    return many


def test_split_rows_is_the_common_prefix_and_leaves_each_question_a_token():
    assert split_rows([[1, 2, 3, 9], [1, 2, 4], [1, 2, 3, 5, 6]]) == ([1, 2], [[3, 9], [4], [3, 5, 6]])
    assert split_rows([[1, 2, 3], [1, 2, 3]]) == ([1, 2], [[3], [3]])  # the last token is always a question's own
    assert split_rows([[7, 1], [8, 1]]) == ([], [[7, 1], [8, 1]])


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_opt", "tiny_gpt2"])
def test_many_questions_equal_one_question_at_a_time(model, request):
    encoder = load_encoder(str(request.getfixturevalue(model)), answer_tokens=3, kind="causal")
    assert encoder.shares_prefix(QUESTIONS)
    texts = TEXTS + (BPE_TEXTS if model == "tiny_gpt2" else [])
    many = assert_same_as_one_question(encoder, texts, QUESTIONS, batch_size=5, answers=True)
    assert np.abs(many[0].embeddings - many[1].embeddings).max() > 1e-3  # the questions do change the vectors
    assert_same_as_one_question(encoder, texts, QUESTIONS[:2], batch_size=len(texts), normalize=False)


def test_tokens_merging_across_the_boundary_and_per_question_truncation(tiny_gpt2):
    encoder = load_encoder(str(tiny_gpt2), max_length=64, kind="causal")
    merged = 0
    for text in BPE_TEXTS:  # the hazard is real here: the document part tokenized alone is not the prompt's start
        full = encoder.tokenize(split_pattern(encoder.pattern, text, QUESTIONS[0]))
        alone = encoder.tokenizer(f"### Input:\n{text}")["input_ids"]
        merged += full[:len(alone)] != alone
    assert merged >= 2
    long_text = " ".join(["my card was declined at the atm"] * 12)  # cut to fit, differently per question
    rows = [encoder.tokenize(split_pattern(encoder.pattern, long_text, q)) for q in (QUESTIONS[2], QUESTIONS[3])]
    assert rows[0][:len(rows[1])] != rows[1] and max(map(len, rows)) == 64
    many = assert_same_as_one_question(encoder, [long_text, *BPE_TEXTS], QUESTIONS, batch_size=3)
    assert many[0].n_truncated == 0  # cut on tokens, under the character cap


def test_masked_and_question_first_encoders_fall_back_to_one_question_at_a_time(tiny_roberta, tiny_llama):
    masked = load_encoder(str(tiny_roberta))
    question_first = load_encoder(str(tiny_llama), pattern="{instruction}\n{input}")
    causal = load_encoder(str(tiny_llama))
    assert not masked.shares_prefix(QUESTIONS) and not question_first.shares_prefix(QUESTIONS)
    assert not causal.shares_prefix(QUESTIONS[:1])
    for encoder in (masked, question_first):
        assert_same_as_one_question(encoder, TEXTS, QUESTIONS[:2], batch_size=3)
    assert [e.embeddings.shape for e in causal.encode_many([], QUESTIONS[:2])] == [(0, causal.dimension)] * 2
    seen = []
    masked.encode_many(TEXTS, QUESTIONS[:2], batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (2 * len(TEXTS), 2 * len(TEXTS)) and seen == sorted(seen)


def test_the_cache_computes_only_the_misses(tiny_opt, tmp_path):
    encoder = load_encoder(str(tiny_opt))
    forwards = []
    encoder.model.get_input_embeddings().register_forward_hook(lambda module, args, out: forwards.append(1))
    cache = EmbeddingCache(tmp_path / "c.db")
    cached = CachedEncoder(encoder, cache, chunk_size=3)
    questions = QUESTIONS[:3]
    for question in questions:
        cached.encode(TEXTS[:2], question)  # two documents cached under every question
    cached.encode(TEXTS[2:3], questions[0])  # one more under the first
    texts = TEXTS + TEXTS[4:6]  # duplicates are encoded once
    seen = []
    got = cached.encode_many(texts, questions, progress=lambda d, t: seen.append((d, t)))
    assert [(e.n_encoded, e.n_cached) for e in got] == [(5, 3), (6, 2), (6, 2)]
    assert seen[0] == (3 + 2 + 2, 30) and seen[-1] == (30, 30) and seen == sorted(seen)
    assert cache.stats().n_vectors == 3 * len(TEXTS)
    for question, encoding in zip(questions, got, strict=True):
        assert cosines(encoding.embeddings, encoder.encode(texts, question).embeddings).min() >= 0.9999
    forwards.clear()
    again = cached.encode_many(texts, questions)
    assert forwards == [] and [e.n_cached for e in again] == [len(texts)] * 3
    np.testing.assert_array_equal(again[1].embeddings, got[1].embeddings)


def test_analysis_and_cli_embed_the_questions_together(tiny_llama, tmp_path):
    texts = [t for t in TEXTS if t]
    data = tmp_path / "docs.csv"
    pd.DataFrame({"id": [f"d{i}" for i in range(len(texts))], "text": texts}).to_csv(data, index=False)
    corpus = load_corpus(data.read_bytes(), name="docs.csv")
    encoder = CachedEncoder(load_encoder(str(tiny_llama)), EmbeddingCache(tmp_path / "c.db"))
    analysis = Analysis(corpus, encoder, AnalysisSettings(k=2, n_neighbors=3))
    assert analysis.shares_prefix(QUESTIONS[:2])
    encodings = analysis.embed_all(QUESTIONS[:2])
    assert analysis.n_embeddings_ == 2 and [e.n_encoded for e in encodings] == [len(texts)] * 2
    assert analysis.embed_all(QUESTIONS[1::-1])[0] is analysis.embedding(QUESTIONS[1]) is encodings[1]
    assert analysis.n_embeddings_ == 2  # memoised, not embedded again
    alone = load_encoder(str(tiny_llama)).encode(texts, QUESTIONS[1]).embeddings
    assert cosines(analysis.embedding(QUESTIONS[1]).embeddings, alone).min() >= 0.9999

    out = tmp_path / "e.parquet"
    assert main(["embed", str(data), "-i", QUESTIONS[0], "-i", QUESTIONS[3], "--model", str(tiny_llama),
                 "--out", str(out), "--no-cache", "--yes", "-q"]) == 0
    ids, vectors, _ = read_embeddings(out, instruction_index=2)
    assert ids == corpus.ids
    assert cosines(vectors, load_encoder(str(tiny_llama)).encode(texts, QUESTIONS[3]).embeddings).min() >= 0.9999
