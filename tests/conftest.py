"""Shared fixtures: tiny random transformers models, an isolated cache, no network.

Tiny models are built from a word-level tokenizer made with the ``tokenizers``
library and saved to disk, so the tests go through the real loading code
(``load_encoder`` on a local directory). They test code paths and invariants,
never golden values.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No hub, no telemetry, two cores shared: set before anything imports huggingface_hub or torch.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite compares vectors at 1e-5 (batching, caching, sharding): it runs models in fp32 even on CPUs
# with native bf16, where `auto` picks bf16; test_encoder checks that choice and bf16's closeness.
os.environ.setdefault("INBEDDER_CPU_BF16", "0")

WORDS = (
    "### Input Instruction Response : ? . , ! ' the a an my i you is are was it to of and in on for with "
    "card cash money account transfer payment refund fee pin phone app top up exchange rate atm "
    "lost stolen arrived arrive still waiting not working declined why how what when where who does do can "
    "customer feel need want happy angry sad frustrated worried confused grateful tell me please help "
    "order shoes coffee pizza weather rain sun movie book song football game news doctor hospital"
).split()

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build_tokenizer(template: str):
    """A fast word-level tokenizer: ``template`` is the single-sequence post-processor, e.g. '<s> $A </s>'."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for word in WORDS:
        vocab.setdefault(word.lower(), len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = [(s, vocab[s]) for s in SPECIALS if s in template]
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        mask_token="<mask>",
    )


def _save(model, tokenizer, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    """A random 2-layer RobertaForMaskedLM with a word-level tokenizer, saved to a directory."""
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer("<s> $A </s>")
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=48, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1)
    return _save(RobertaForMaskedLM(config).eval(), tokenizer, tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A random 2-layer LlamaForCausalLM with a word-level tokenizer (bos only), saved to a directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer("<s> $A")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return _save(LlamaForCausalLM(config).eval(), tokenizer, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_opt(tmp_path_factory) -> Path:
    """A random 2-layer OPTForCausalLM (OPT prepends '</s>' as its bos), saved to a directory."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer("</s> $A")
    # word_embed_proj_dim != hidden_size, as in OPT-350m: the output is projected to 16 dimensions
    config = OPTConfig(vocab_size=len(tokenizer), hidden_size=32, ffn_dim=48, num_hidden_layers=2,
                       num_attention_heads=2, max_position_embeddings=256, word_embed_proj_dim=16,
                       pad_token_id=1, bos_token_id=2, eos_token_id=2)
    return _save(OPTForCausalLM(config).eval(), tokenizer, tmp_path_factory.mktemp("tiny-opt"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 2-layer BertForMaskedLM (absolute positions, no pad-derived positions)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer("<s> $A </s>")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=256, pad_token_id=1)
    return _save(BertForMaskedLM(config).eval(), tokenizer, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bpe_roberta(tmp_path_factory) -> Path:
    """A random RobertaForMaskedLM with a byte-level BPE tokenizer (the real checkpoints' kind), trained here."""
    import torch
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    corpus = [" ".join(WORDS), "### Input:\nmy card\n\n### Instruction:\nwhy?\n\n### Response:"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=SPECIALS)
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    directory = tmp_path_factory.mktemp("tiny-bpe-roberta")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=48, max_position_embeddings=260, pad_token_id=tokenizer.pad_token_id,
                           type_vocab_size=1)
    return _save(RobertaForMaskedLM(config).eval(), tokenizer, directory)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own embedding cache directory."""
    monkeypatch.setenv("INBEDDER_CACHE_DIR", str(tmp_path / "inbedder-cache"))


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    """Two cores, shared: one torch thread keeps tests predictable."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
