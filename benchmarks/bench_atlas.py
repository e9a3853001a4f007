"""Big maps: how many points reach Embedding Atlas's Streamlit component, and how fast (issue 15).

For each size: a synthetic map (blobs, 40 clusters, 5% noise, an answer and a 160-character text per point)
made with ``inbedder_core.atlas.map_frame``, handed to the component exactly as Explore hands it, in a tiny
Streamlit app started with this repository's ``.streamlit/config.toml``; headless Chromium opens it. Printed per
size: the Arrow payload sent (the frame as an Arrow IPC stream), seconds from page
load until the component shows every point ("N / N points"), and whether it got there (or the error).

    PYTHONPATH=$PWD python benchmarks/bench_atlas.py --sizes 100000 300000 600000 1000000

Printed too: seconds until the map's canvas shows the points (2% or more of its pixels drawn, overlays hidden
for the check). Headless Chromium here has no WebGPU adapter, so embedding-atlas 0.22 draws them with WebGL2
(SwiftShader, on the CPU).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = textwrap.dedent('''
    import os
    import numpy as np
    import streamlit as st
    import streamlit.components.v1 as components
    from embedding_atlas.options import make_embedding_atlas_props
    from inbedder_core import atlas

    n = int(os.environ["BENCH_POINTS"])

    @st.cache_data
    def table(n):
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 40, n)
        labels[rng.random(n) < 0.05] = -1
        coords = rng.uniform(-30, 30, size=(41, 2))[labels] + rng.normal(scale=1.5, size=(n, 2))
        names = {c: f"Topic {c:02d}" for c in range(40)}
        texts = [f"doc {i}: a note about topic {c}, " + "lorem ipsum dolor sit amet " * 6 for i, c in enumerate(labels)]
        answers = [f"topic {c}" for c in labels]
        rows = atlas.sample_rows(labels, atlas.atlas_max_points())
        frame = atlas.map_frame(coords, labels, names, texts, answers, rows=rows)
        return frame, atlas.label_points(coords[rows], labels[rows], names)

    frame, labels = table(n)
    props = make_embedding_atlas_props(x="x", y="y", text="text", labels=labels)
    props["defaultChartsConfig"] = {"embedding": {"data": {"x": "x", "y": "y", "text": "text", "category": "cluster"}}}
    component = components.declare_component("embedding_atlas_map", path=str(atlas.component_folder()))
    component(data_frame=frame, props=props, key="map", default={})
    st.text(f"sent {len(frame)} rows")
''')


def _payload_bytes(n: int) -> tuple[int, int]:
    """(rows sent, bytes of the frame as an Arrow IPC stream: what Streamlit sends the component, give or take
    the pandas metadata)."""
    import numpy as np
    import pyarrow as pa

    from inbedder_core import atlas

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 40, n)
    coords = rng.normal(size=(n, 2))
    texts = [f"doc {i}: a note about topic {c}, " + "lorem ipsum dolor sit amet " * 6 for i, c in enumerate(labels)]
    rows = atlas.sample_rows(labels, atlas.atlas_max_points())
    frame = atlas.map_frame(coords, labels, {c: f"Topic {c:02d}" for c in range(40)}, texts,
                            [f"topic {c}" for c in labels], rows=rows)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return len(frame), sink.getvalue().size


def _wait_drawn(canvas, deadline: float) -> float | None:
    """``time.monotonic()`` when 2% or more of the map canvas's own pixels (overlays hidden) are not white."""
    import io

    import numpy as np
    from PIL import Image

    from inbedder_core import atlas

    while time.monotonic() < deadline:
        canvas.evaluate(atlas.HIDE_ALL_BUT_CANVAS)
        try:
            png = canvas.screenshot()
        finally:
            canvas.evaluate(atlas.SHOW_ALL)
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
        if (np.abs(pixels - 255).sum(axis=2) > 30).mean() >= 0.02:
            return time.monotonic()
        time.sleep(0.5)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(n: int, timeout_s: float, workdir: Path) -> tuple[float | None, str]:
    app = workdir / "app.py"
    app.write_text(APP)
    (workdir / ".streamlit").mkdir(exist_ok=True)
    (workdir / ".streamlit" / "config.toml").write_text((ROOT / ".streamlit" / "config.toml").read_text())
    port = _free_port()
    env = dict(os.environ, BENCH_POINTS=str(n), INBEDDER_CACHE_DIR=str(workdir / "cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(workdir / f"streamlit-{n}.log", "w")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
                               "--server.port", str(port), "--server.address", "127.0.0.1"],
                              cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--js-flags=--max-old-space-size=8192"])
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)[:200]))
            start = time.monotonic()
            page.goto(f"http://127.0.0.1:{port}")
            frame = page.frame_locator('iframe[title*="embedding_atlas_map"]')
            try:
                frame.get_by_text(re.compile(r"^[\d,]+ / [\d,]+ points$")).wait_for(timeout=timeout_s * 1000)
                seconds: float | None = time.monotonic() - start
                shown = frame.get_by_text(re.compile(r"^[\d,]+ / [\d,]+ points$")).inner_text()
                drawn = _wait_drawn(frame.locator("canvas").first, start + timeout_s)
                note = f"component shows {shown!r}; " + (f"points drawn at {drawn - start:.1f} s" if drawn else
                                                         "points NOT drawn")
            except Exception as error:  # noqa: BLE001 - a failed size is a result, reported
                seconds = None
                shot = page.locator('[data-testid="stException"], [data-testid="stAlert"]')
                note = (shot.first.inner_text()[:200] if shot.count() else str(error).splitlines()[0][:120])
                note += (" | page errors: " + "; ".join(errors[:2])) if errors else ""
                log.flush()
                tail = (workdir / f"streamlit-{n}.log").read_text()[-400:]
                note += " | server: " + " ".join(tail.split())[-200:]
            browser.close()
        return seconds, note
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 600_000, 1_000_000])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the first render")
    args = parser.parse_args()
    print(f"{'points':>10} {'sent':>10} {'payload MB':>11} {'first render s':>15}  result")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            sent, size = _payload_bytes(n)
            seconds, note = measure(n, args.timeout, Path(tmp))
            print(f"{n:>10,} {sent:>10,} {size / 1e6:>11.1f} {'-' if seconds is None else f'{seconds:.1f}':>15}  "
                  f"{note}", flush=True)


if __name__ == "__main__":
    main()
