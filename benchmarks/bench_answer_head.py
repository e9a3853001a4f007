"""How the answers of a masked InBedder change with the head that scores its slots. Not a test.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_answer_head.py [--rows 1500] [--validation DIR]

Three heads over the same slot states: the whole vocabulary in the model's dtype (bf16 on CPUs with native
bf16: how answers were scored before the model shipped its trained tokens), the whole vocabulary in float32
(the reference), and the tokens answers are made of in float32 (``MaskedLMEncoder._slot_logits``, the
default). Prints, per question, how many argmax answers (before mending) differ from the reference, with
examples, and the seconds each head took. Corpora: the bundled sample under "What does the customer
want?", and every ``NAME.csv`` (a ``text`` column) of ``--validation`` under each question of its
``NAME.json`` (``{aspect: question}``; ``benchmarks/train_e5.py validation`` writes them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def heads(encoder, texts: list[str], question: str, batch_size: int = 32) -> tuple[dict[str, list[str]], dict]:
    """Answers of ``texts`` under each head, and the seconds each took."""
    import torch

    from inbedder_core.prompts import split_pattern

    found: dict[str, list[str]] = {"model dtype, all tokens": [], "float32, all tokens": [],
                                   "float32, answer tokens": []}
    seconds = dict.fromkeys(found, 0.0)
    every = torch.arange(encoder._head_parts[3].out_features)

    def decode(tokens: torch.Tensor) -> list[str]:
        return [encoder.tokenizer.decode(row, skip_special_tokens=True).strip() for row in tokens.tolist()]

    for start in range(0, len(texts), batch_size):
        rows = [encoder.tokenize(split_pattern(encoder.pattern, t, question)) for t in texts[start:start + batch_size]]
        ids, mask = encoder.pad(rows)
        positions = torch.tensor([encoder._mask_positions(r) for r in rows])  # right padding: no shift
        with torch.inference_mode():
            states = encoder.states_at(ids, mask, positions)
            for name in found:
                begin = time.perf_counter()
                if name == "model dtype, all tokens":
                    tokens = encoder._head(states).max(dim=-1).indices
                elif name == "float32, all tokens":
                    tokens = encoder._split_head(states, every).max(dim=-1).indices
                else:
                    logits, columns = encoder._slot_logits(states, ids, mask)
                    tokens = columns[logits.max(dim=-1).indices]
                seconds[name] += time.perf_counter() - begin
                found[name] += decode(tokens)
    return found, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="inbedder-e5")
    parser.add_argument("--rows", type=int, default=1500, help="texts per corpus (first N)")
    parser.add_argument("--validation", type=Path, default=None, help="folder of NAME.csv + NAME.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import pandas as pd
    import torch

    from inbedder_core.encoder import load_encoder

    torch.set_num_threads(args.threads)
    encoder = load_encoder(args.model, device="cpu", padding_side="right")
    if encoder._answer_tokens is None:
        raise SystemExit(f"{args.model} scores the whole vocabulary (no trained tokens in its answers.json)")
    sample = pd.read_csv(ROOT / "sample_data" / "banking77.csv", dtype=str)["text"].tolist()[: args.rows]
    corpora = [("sample", sample, {"intent": "What does the customer want?"})]
    if args.validation is not None:
        for table in sorted(args.validation.glob("*.csv")):
            questions = json.loads(table.with_suffix(".json").read_text(encoding="utf-8"))
            texts = pd.read_csv(table, dtype=str, keep_default_na=False)["text"].tolist()[: args.rows]
            corpora.append((table.stem, texts, questions))
    print(f"{args.model} ({encoder.dtype}), {len(encoder._answer_tokens):,} trained answer tokens; "
          "answers (argmax, before mending) that differ from the float32 head over all tokens")
    print("| corpus / question | texts | model dtype, all tokens | float32, answer tokens | examples "
          "(reference -> answer tokens) |")
    print("|---|---|---|---|---|")
    for name, texts, questions in corpora:
        for aspect, question in questions.items():
            found, seconds = heads(encoder, texts, question)
            reference = found["float32, all tokens"]
            differ = {k: [(a, b) for a, b in zip(reference, v, strict=True) if a != b] for k, v in found.items()}
            examples = ", ".join(f"{a} -> {b}" for a, b in differ["float32, answer tokens"][:4])
            print(f"| {name} / {aspect} | {len(texts):,} | {len(differ['model dtype, all tokens'])} | "
                  f"{len(differ['float32, answer tokens'])} | {examples} |", flush=True)
            print("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
