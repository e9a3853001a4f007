"""Big maps in headless Chromium (issue 15): a saved run above ``INBEDDER_ATLAS_THRESHOLD`` reopens in Explore as
Embedding Atlas's component (served from this machine, no CDN), which loads every point, and a selection made in
it comes back as an SQL predicate that lists exactly the selected documents below the map.

The default suite lowers the threshold so a 2,000-point run uses the component; ``-m slow`` opens a 100,000-point
run and prints the time to first render. Runs are synthetic (``atlas.synthetic_run``): nothing is embedded.

Headless Chromium here has WebGPU only through SwiftShader, which lacks ``shader-f16``; Embedding Atlas 0.26
needs it to draw the points, so the point canvas says "WebGPU is unavailable" in this test while the rest of the
component (point count, colour legend, cross-filter charts, search, SQL predicate) works. On a browser with a
GPU the points are drawn (see README, "Maps of a million points").
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, LONG, _no_exception_shown, _settle, _streamlit, _tiny_env

from inbedder_core import atlas, runs
from inbedder_core.corpus import load_corpus

pytestmark = pytest.mark.browser


@pytest.fixture
def webgpu_page():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pytest.importorskip("embedding_atlas", reason="embedding-atlas is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=[*CHROMIUM_ARGS, "--enable-unsafe-webgpu"])
        context = browser.new_context(viewport={"width": 1500, "height": 1800})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _open_big_run(page, tmp_path, tiny_roberta, n_docs: int, threshold: int) -> tuple[float, np.ndarray, list]:
    """Save a synthetic run of ``n_docs``, start the app, upload its corpus, reopen the run; returns
    (seconds from the reopen click until the component shows every point, labels, cluster summaries)."""
    cache = tmp_path / "cache"
    data, run_id = atlas.synthetic_run(n_docs, root=cache / "runs")
    path = tmp_path / "synthetic.csv"
    path.write_bytes(data)
    corpus = load_corpus(data, name="synthetic.csv")
    saved = runs.load_run(runs.corpus_hash(corpus), run_id, root=cache / "runs")
    env = _tiny_env(tiny_roberta, tmp_path)
    with _streamlit(env, tmp_path / "streamlit.log", INBEDDER_ATLAS_THRESHOLD=str(threshold),
                    INBEDDER_WARM_UP="0") as url:
        page.goto(url)
        page.locator('input[type="file"]').first.set_input_files(str(path))
        page.get_by_text(f"Loaded {n_docs:,} of {n_docs:,} rows").wait_for(timeout=LONG)
        page.get_by_text(re.compile(r"^Earlier runs on this corpus \(1\)")).click()
        page.get_by_role("button", name="Reopen this run").click()
        start = time.monotonic()
        frame = page.frame_locator('iframe[title*="embedding_atlas_map"]')
        frame.get_by_text(re.compile(rf"^{n_docs:,} / {n_docs:,} points$")).wait_for(timeout=LONG)
        first_render = time.monotonic() - start
        _settle(page)
        _no_exception_shown(page)
        assert page.locator(".js-plotly-plot").count() == 0  # the plotly map is not drawn above the threshold
        page.get_by_text(f"Map of {n_docs:,} documents drawn by Embedding Atlas").wait_for(timeout=LONG)

        # a selection made in the map: click one cluster's bar in the component's "cluster" chart
        result = saved.results[0]
        biggest = max((c for c in result.clusters if c.cluster_id != -1), key=lambda c: c.size)
        frame.get_by_text(biggest.name, exact=True).last.click()
        page.get_by_text(f"{biggest.size:,} documents selected on the map", exact=False).wait_for(timeout=LONG)
        _settle(page)
        page.get_by_text(f"{biggest.size:,} documents", exact=True).wait_for(timeout=LONG)
        _no_exception_shown(page)
        page.screenshot(path=str(tmp_path / "atlas.png"), full_page=True)
        # clearing it lists every document again
        page.get_by_role("button", name=re.compile(r"^Clear selection")).click()
        page.get_by_text(f"{n_docs:,} documents", exact=True).wait_for(timeout=LONG)
        _settle(page)
        _no_exception_shown(page)
    return first_render, result.labels, result.clusters


def test_big_run_opens_in_embedding_atlas_and_its_selection_lists_documents(webgpu_page, tmp_path, tiny_roberta):
    seconds, labels, _ = _open_big_run(webgpu_page, tmp_path, tiny_roberta, n_docs=2_000, threshold=1_000)
    print(f"2,000 points: first render {seconds:.1f} s")


@pytest.mark.slow
def test_100k_point_run_renders_and_selects(webgpu_page, tmp_path, tiny_roberta):
    seconds, _, _ = _open_big_run(webgpu_page, tmp_path, tiny_roberta, n_docs=100_000, threshold=50_000)
    print(f"100,000 points: first render {seconds:.1f} s")
