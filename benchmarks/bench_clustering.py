"""Time the reduce/cluster stages on synthetic embeddings. Prints figures; not a test.

Usage (from the repository root):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_clustering.py --sizes 1000,10000
    .venv/bin/python benchmarks/bench_clustering.py --sizes 50000 --hdbscan-variants
    .venv/bin/python benchmarks/bench_clustering.py --compile-only

Threads: unless already set, this script pins OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS and NUMBA_NUM_THREADS to ``--threads`` (default 1) before numpy is
imported, so figures do not depend on what else runs on the machine's cores. UMAP with a
``random_state`` runs its layout on one thread whatever these say.

Data: ``--centers`` (40) Gaussian clusters on the unit sphere in ``--dim`` (1024)
dimensions, float32, rows re-normalised, as sentence embeddings are.

Stages timed per size (one ``ClusteringSession``, as the app uses it):
  knn      the approximate neighbour graph, computed once and shared by both UMAPs (n >= 4096)
  umap5    UMAP to 5-D (clustering space), min_dist=0.0
  umap2    UMAP to 2-D (the map), min_dist=0.1
  hdbscan  first HDBSCAN (min_cluster_size=15), plus quality figures
  recluster  session.cluster() with a new min_cluster_size, embeddings and UMAP reused, as the product does it
           (min_samples fixed at 10, HDBSCAN's spanning tree reused from a joblib memory):
           median (and min/max) of --repeats runs, each with a different min_cluster_size
``--baseline`` also times a plain UMAP 5-D fit that computes its own neighbour graph.
``--compile`` (on by default) times UMAP's first call in fresh processes, with a cold
(empty) and then warm numba cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _pin_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


_COMPILE_PROBE = """
import time, sys
t0 = time.perf_counter()
import numpy as np
from inbedder_core.cluster.runtime import _import_umap
umap = _import_umap()  # our on-disk numba cache for umap's kernels, unless INBEDDER_NUMBA_CACHE=0
t1 = time.perf_counter()
X = np.random.default_rng(0).normal(size=(60, 16)).astype(np.float32)
umap.UMAP(n_components=5, n_neighbors=5, metric="cosine", random_state=0, n_jobs=1).fit_transform(X)
t2 = time.perf_counter()
umap.UMAP(n_components=5, n_neighbors=5, metric="cosine", random_state=0, n_jobs=1,
          force_approximation_algorithm=True).fit_transform(X)
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def time_compile() -> list[tuple[str, float, float, float]]:
    """UMAP's first call in fresh processes: (cache state, import s, exact-path fit s, NN-descent fit s),
    with umap-learn's own caching (``INBEDDER_NUMBA_CACHE=0``) and with ours (``enable_numba_caching``)."""
    rows = []
    root = str(Path(__file__).resolve().parents[1])
    for caching in ("0", "1"):
        who = "umap's own" if caching == "0" else "ours"
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache, "INBEDDER_NUMBA_CACHE": caching,
                   "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
            for state in ("cold", "warm", "warm"):
                out = subprocess.run(
                    [sys.executable, "-c", _COMPILE_PROBE], env=env, capture_output=True, text=True, check=True
                ).stdout.split()
                rows.append((f"{who}, {state}", float(out[0]), float(out[1]), float(out[2])))
    return rows


def make_embeddings(n: int, dim: int, centers: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    truth = rng.integers(0, centers, size=n)
    X = c[truth] + rng.normal(scale=0.02, size=(n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), truth


def bench_size(n: int, args: argparse.Namespace) -> dict[str, object]:
    from sklearn.metrics import adjusted_rand_score

    from inbedder_core.clustering import ClusteringSession, HDBSCANClusterer, UMAPReducer

    X, truth = make_embeddings(n, args.dim, args.centers, args.seed)
    row: dict[str, object] = {"n": n}
    if args.baseline:
        t = time.perf_counter()
        UMAPReducer(n_components=5, random_state=args.seed).fit_transform(X)
        row["umap5_plain"] = time.perf_counter() - t
    session = ClusteringSession(
        X,
        reducer=UMAPReducer(n_components=5, min_dist=0.0, random_state=args.seed),
        map_reducer=UMAPReducer(n_components=2, min_dist=0.1, random_state=args.seed),
    )
    session.reduced()
    session.coords()
    row["knn"] = session.timings_.get("knn", 0.0)
    row["umap5"] = session.timings_["reduce"] - row["knn"]  # type: ignore[operator]
    row["umap2"] = session.timings_["map"]
    # The product's path (AnalysisSettings): min_samples stays fixed while only min_cluster_size changes and
    # HDBSCAN's spanning tree is cached in a joblib memory, so a new min_cluster_size reuses the tree.
    tree_cache = tempfile.mkdtemp(prefix="bench-hdbscan-")
    first = session.cluster(HDBSCANClusterer(min_cluster_size=15, min_samples=10, memory=tree_cache))
    row["hdbscan"] = first.timings["cluster"]
    row["quality"] = first.timings["quality"]
    row["clusters"] = first.quality["n_clusters"]
    row["noise"] = first.quality["noise_share"]
    row["ari"] = adjusted_rand_score(truth, first.labels)
    runs = []
    for i in range(args.repeats):
        t = time.perf_counter()
        outcome = session.cluster(HDBSCANClusterer(min_cluster_size=20 + 5 * i, min_samples=10, memory=tree_cache))
        runs.append(time.perf_counter() - t)
        assert outcome.timings["reduce"] == 0.0
    row["recluster_median"] = statistics.median(runs)
    row["recluster_min"] = min(runs)
    row["recluster_max"] = max(runs)
    plain = []  # HDBSCAN's own default for comparison: min_samples = min_cluster_size, nothing reused
    for i in range(args.repeats):
        t = time.perf_counter()
        session.cluster(HDBSCANClusterer(min_cluster_size=20 + 5 * i))
        plain.append(time.perf_counter() - t)
    row["recluster_plain"] = statistics.median(plain)
    shutil.rmtree(tree_cache, ignore_errors=True)
    row["n_reductions"] = session.n_reductions_
    if args.hdbscan_variants:
        row["variants"] = hdbscan_variants(session.reduced(), truth, args.repeats)
    return row


def hdbscan_variants(Z, truth, repeats: int) -> list[tuple[str, float, float, int]]:
    """Median seconds, ARI and cluster count of HDBSCAN settings on the same 5-D vectors.

    All approximate-MST (HDBSCAN's default) unless said; min_samples defaults to min_cluster_size.
    """
    import hdbscan
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    Z64 = Z.astype(np.float64)
    variants = {
        "best (=boruvka_kdtree), leaf 40, jobs=1": dict(algorithm="best"),
        "best, leaf 100, jobs=1 (HDBSCANClusterer)": dict(algorithm="best", leaf_size=100),
        "best, leaf 100, exact MST, jobs=1": dict(algorithm="best", leaf_size=100, approx_min_span_tree=False),
        "best, leaf 100, jobs=2": dict(algorithm="best", leaf_size=100, core_dist_n_jobs=2),
        "prims_kdtree, leaf 40, jobs=1": dict(algorithm="prims_kdtree"),
        "boruvka_balltree, leaf 40, jobs=1": dict(algorithm="boruvka_balltree"),
        "best, leaf 100, min_samples=5, jobs=1": dict(algorithm="best", leaf_size=100, min_samples=5),
    }
    out = []
    for name, kw in variants.items():
        kw = {"core_dist_n_jobs": 1, **kw}
        times, labels = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            labels = hdbscan.HDBSCAN(min_cluster_size=20, **kw).fit_predict(Z64)
            times.append(time.perf_counter() - t)
        n_clusters = int(len(set(labels.tolist()) - {-1}))
        out.append((name, statistics.median(times), adjusted_rand_score(truth, labels), n_clusters))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated corpus sizes")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--centers", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each re-cluster timing (median shown)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="default for the *_NUM_THREADS variables")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compile timing")
    parser.add_argument("--compile-only", action="store_true")
    parser.add_argument("--baseline", action="store_true", help="also time UMAP 5-D without the shared kNN")
    parser.add_argument("--hdbscan-variants", action="store_true", help="also time other HDBSCAN settings")
    args = parser.parse_args(argv)
    _pin_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(
        "threads: "
        + ", ".join(f"{v}={os.environ.get(v)}" for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"))
        + f"; cpus={os.cpu_count()}; python {sys.version.split()[0]}"
    )
    if args.compile or args.compile_only:
        print("\nUMAP first call in a fresh process (seconds)")
        print(f"{'numba cache':<20}{'import umap':>12}{'fit (exact)':>13}{'fit (NN-descent)':>18}{'total':>8}")
        for state, imp, exact, approx in time_compile():
            print(f"{state:<20}{imp:>12.1f}{exact:>13.1f}{approx:>18.1f}{imp + exact + approx:>8.1f}")
    if args.compile_only:
        return

    from inbedder_core.clustering import warm_up

    warm_up()  # compilation is timed above, not in the stages below
    rows = []
    for n in sizes:
        print(f"\n... n={n}", flush=True)
        rows.append(bench_size(n, args))
        r = rows[-1]
        print(
            f"    knn {r['knn']:.1f}s  umap5 {r['umap5']:.1f}s  umap2 {r['umap2']:.1f}s  "
            f"hdbscan {r['hdbscan']:.2f}s  recluster {r['recluster_median']:.2f}s "
            f"(min_samples=min_cluster_size, no reuse: {r['recluster_plain']:.2f}s)",
            flush=True,
        )

    print(f"\nStage seconds, dim={args.dim}, {args.centers} clusters; recluster = median of {args.repeats}")
    header = (
        f"{'n':>7}{'knn':>8}{'umap5':>8}{'umap2':>8}{'hdbscan':>9}{'quality':>9}"
        f"{'recluster':>11}{'(min-max)':>14}{'clusters':>10}{'noise':>7}{'ARI':>6}"
    )
    if args.baseline:
        header += f"{'umap5 no-share':>16}"
    print(header)
    for r in rows:
        spread = f"({r['recluster_min']:.2f}-{r['recluster_max']:.2f})"
        line = (
            f"{r['n']:>7}{r['knn']:>8.1f}{r['umap5']:>8.1f}{r['umap2']:>8.1f}{r['hdbscan']:>9.2f}"
            f"{r['quality']:>9.2f}{r['recluster_median']:>11.2f}{spread:>14}"
            f"{r['clusters']:>10}{r['noise']:>7.1%}{r['ari']:>6.2f}"
        )
        if args.baseline:
            line += f"{r['umap5_plain']:>16.1f}"
        print(line)
    for r in rows:
        if "variants" in r:
            print(f"\nHDBSCAN settings at n={r['n']} (min_cluster_size=20, median of {args.repeats})")
            print(f"{'setting':<48}{'seconds':>9}{'ARI':>7}{'clusters':>10}")
            for name, seconds, ari, k in r["variants"]:  # type: ignore[union-attr]
                print(f"{name:<48}{seconds:>9.2f}{ari:>7.2f}{k:>10}")


if __name__ == "__main__":
    main()
