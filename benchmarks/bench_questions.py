"""Many questions of one corpus: one question at a time against the shared document prefix (issue 15, part 5).

A causal encoder runs each document's prompt prefix (``### Input:\\n{text}\\n\\n### Instruction:\\n``) once
and only each question's tokens after it (``Encoder.encode_many``, ``inbedder_core.shared_prefix``); a
masked encoder reads the whole prompt in both directions, so it has no reuse and ``encode_many`` is
``encode`` per question. Printed: seconds for 1, 3 and 10 questions each way (medians of ``--repeats``
runs, the variants alternating), the speed-up, and the time relative to one question.

The causal model is opt-125m-shaped with random weights (built here, no hub; speed does not depend on the
weights) and the all-MiniLM-L6-v2 WordPiece tokenizer for realistic token counts, as in
``bench_encoder.py``; the masked one is the bundled ``inbedder-minilm``. Texts: the first ``--docs``
queries of ``sample_data/banking77.csv``. CPU, ``--threads`` torch threads.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 python benchmarks/bench_questions.py --docs 300 --repeats 3
"""

# ruff: noqa: B023  (each closure is called inside the loop iteration that defines it)
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

QUESTIONS = [
    "What does the customer need?",
    "How does the customer feel?",
    "Which product is this about?",
    "Is the customer asking about money?",
    "What went wrong?",
    "How urgent is this?",
    "What should the bank do next?",
    "Is a card involved?",
    "Does the customer mention a country?",
    "What is the topic?",
]


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def bench(encoder, texts: list[str], counts: list[int], repeats: int, batch_size: int) -> list[dict]:
    """Median seconds per (number of questions, variant), the variants alternating within each repeat."""
    rows = []
    for count in counts:
        asked = QUESTIONS[:count]
        times: dict[str, list[float]] = {"one at a time": [], "shared prefix": []}
        for _ in range(repeats):
            seconds, single = timed(lambda: [encoder.encode(texts, q, batch_size=batch_size) for q in asked])
            times["one at a time"].append(seconds)
            seconds, many = timed(lambda: encoder.encode_many(texts, asked, batch_size=batch_size))
            times["shared prefix"].append(seconds)
        worst = min(float(((a.embeddings * b.embeddings).sum(axis=1)).min()) for a, b in zip(single, many, strict=True))
        rows.append({"questions": count, **{k: statistics.median(v) for k, v in times.items()}, "min_cosine": worst})
    return rows


def token_counts(encoder, texts: list[str]) -> str:
    from inbedder_core.prompts import split_pattern
    from inbedder_core.shared_prefix import split_rows

    prefix, suffix = [], []
    for text in texts:
        rows = [encoder.tokenize(split_pattern(encoder.pattern, text, q)) for q in QUESTIONS]
        prefix_ids, suffixes = split_rows(rows)
        prefix.append(len(prefix_ids))
        suffix.extend(len(s) for s in suffixes)
    return f"tokens per prompt: shared prefix {np.mean(prefix):.1f}, each question's own {np.mean(suffix):.1f}"


def print_table(title: str, rows: list[dict]) -> None:
    one = rows[0]["one at a time"]
    print(f"\n{title}\n", flush=True)
    print("| questions | one at a time, s | shared prefix, s | speed-up | shared / one question | min cosine |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['questions']} | {row['one at a time']:.2f} | {row['shared prefix']:.2f} | "
              f"{row['one at a time'] / row['shared prefix']:.2f}x | {row['shared prefix'] / one:.2f}x | "
              f"{row['min_cosine']:.6f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--questions", default="1,3,10")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--join", type=int, default=1, help="queries joined into one document (longer documents)")
    parser.add_argument("--skip-masked", action="store_true")
    args = parser.parse_args()

    import pandas as pd
    import torch
    from bench_encoder import build_model

    from inbedder_core.encoder import load_encoder

    torch.set_num_threads(args.threads)
    queries = pd.read_csv(ROOT / "sample_data" / "banking77.csv")["text"].astype(str).tolist()
    texts = [" ".join(queries[i * args.join:(i + 1) * args.join]) for i in range(args.docs)]
    counts = [int(c) for c in args.questions.split(",")]
    print(f"{len(texts)} documents of {args.join} BANKING77 queries, torch {torch.__version__}, "
          f"{args.threads} threads, batch {args.batch_size}, median of {args.repeats}")
    with tempfile.TemporaryDirectory() as folder:
        causal = load_encoder(str(build_model("opt-125m", Path(folder) / "opt-125m")), device="cpu")
        causal.encode(texts[:8], QUESTIONS[0])  # warm-up
        print(f"opt-125m-shaped (causal, random weights): shares prefix: {causal.shares_prefix(QUESTIONS)}; "
              + token_counts(causal, texts))
        print_table("opt-125m-shaped, causal", bench(causal, texts, counts, args.repeats, args.batch_size))
    if not args.skip_masked:
        masked = load_encoder("inbedder-minilm", device="cpu")
        masked.encode(texts[:8], QUESTIONS[0])
        print(f"\ninbedder-minilm (masked): shares prefix: {masked.shares_prefix(QUESTIONS)}")
        print_table("inbedder-minilm, masked (no reuse possible)",
                    bench(masked, texts, counts, args.repeats, args.batch_size))


if __name__ == "__main__":
    main()
