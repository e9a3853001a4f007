"""Eight analysts at once on one server (issue 15, part 4): wall time and the server's peak memory.

Starts one ``streamlit run app.py`` (``--model``, default the bundled ``inbedder-minilm``; a fresh cache
folder) and drives it with headless Chromium through ``tests/test_sessions.py``'s driver: each session
uploads its own CSV (60 documents), runs its own question and downloads its labeled CSV, which is
checked to hold only its own documents. After a warm-up session (model load, UMAP compiled), the
variants alternate ``--repeats`` times: one session alone, then ``--sessions`` sessions started together;
every round uses new texts, so nothing comes from the cache. Printed: the median wall time of each variant
(first page load to last download), the ratio, and the server's peak RSS (``VmHWM``, children included).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python benchmarks/bench_sessions.py --repeats 2
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _driver():
    spec = importlib.util.spec_from_file_location("test_sessions", ROOT / "tests" / "test_sessions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inbedder-minilm")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    driver = _driver()
    if not 1 <= args.sessions <= len(driver.MARKERS):
        parser.error(f"--sessions must be 1 to {len(driver.MARKERS)}")
    from test_browser import _streamlit

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = dict(os.environ, INBEDDER_MODEL=args.model, INBEDDER_CACHE_DIR=str(folder / "cache"),
                   HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        with _streamlit(env, folder / "streamlit.log", start_s=180) as url:
            pid = driver.server_pid(url)
            asyncio.run(driver.run_sessions(url, [0], folder, round_=0))  # warm-up: model load, UMAP compiled
            after_warm_up = driver.peak_rss_mib(pid)
            alone, together = [], []
            round_ = 1
            for _ in range(args.repeats):
                results, wall = asyncio.run(driver.run_sessions(url, [0], folder, round_=round_))
                driver.check_tables(results, [0], round_=round_)
                alone.append(wall)
                round_ += 1
                sessions = list(range(args.sessions))
                results, wall = asyncio.run(driver.run_sessions(url, sessions, folder, round_=round_))
                driver.check_tables(results, sessions, round_=round_)
                together.append(wall)
                round_ += 1
            peak = driver.peak_rss_mib(pid)
        loads = driver.model_loads((folder / "streamlit.log").read_text())
    one, many = statistics.median(alone), statistics.median(together)
    print(f"model {args.model}, {driver.N_ROWS} documents per session, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
          f"{os.cpu_count()} CPUs, {args.repeats} repeats")
    print(f"| sessions | wall s (median) | runs |\n| --- | --- | --- |\n| 1 | {one:.1f} | "
          f"{', '.join(f'{w:.1f}' for w in alone)} |\n| {args.sessions} at once | {many:.1f} | "
          f"{', '.join(f'{w:.1f}' for w in together)} |")
    print(f"{args.sessions} at once / 1 alone: {many / one:.2f}x wall for {args.sessions}x the work")
    print(f"server peak RSS: {after_warm_up:.0f} MiB after the warm-up session, {peak:.0f} MiB at the end; "
          f"model loads logged: {len(loads)}")


if __name__ == "__main__":
    main()
