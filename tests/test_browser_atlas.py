"""Big maps in headless Chromium (issue 15): a saved run above ``INBEDDER_ATLAS_THRESHOLD`` reopens in Explore as
Embedding Atlas's component (served from this machine, no CDN), which loads and draws every point, and a
selection made in it (a box dragged on the map) comes back as an SQL predicate that
lists exactly the selected documents below the map.

The default suite lowers the threshold so a 2,000-point run uses the component; ``-m slow`` opens a 100,000-point
run and prints the time to first render. Runs are synthetic (``atlas.synthetic_run``): nothing is embedded.

Headless Chromium here has no WebGPU adapter, so embedding-atlas 0.22 draws the points with WebGL2 (SwiftShader)
and says "WebGPU is unavailable. Falling back to WebGL." under the map: the pixels of the map's canvas are
checked, with the component's overlays (legend, colour picker) hidden for that one screenshot.
"""

from __future__ import annotations

import colorsys
import io
import re
import time

import numpy as np
import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LONG, _no_exception_shown, _settle, _streamlit, _tiny_env

from inbedder_core import atlas, runs
from inbedder_core.corpus import load_corpus

pytestmark = pytest.mark.browser


@pytest.fixture
def atlas_page():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pytest.importorskip("embedding_atlas", reason="embedding-atlas is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1800})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _drawn_points(canvas) -> tuple[float, int, np.ndarray]:
    """What the map's canvas itself shows, overlays hidden: (share of pixels that differ from the background,
    how many of 12 hue bins hold 20+ strongly coloured pixels, the background colour)."""
    canvas.evaluate(atlas.HIDE_ALL_BUT_CANVAS)
    try:
        pixels = _pixels(canvas.screenshot())
    finally:
        canvas.evaluate(atlas.SHOW_ALL)
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()]
    drawn = np.abs(pixels - background).sum(axis=2) > 30
    coloured = pixels[drawn & (pixels.max(axis=2) - pixels.min(axis=2) > 60)]
    hues = np.array([colorsys.rgb_to_hsv(*(c / 255))[0] for c in coloured[:: max(1, len(coloured) // 5000)]])
    bins = np.histogram(hues, bins=12, range=(0, 1))[0]
    return float(drawn.mean()), int((bins >= 20).sum()), background


def _empty_spot(canvas, background: np.ndarray) -> tuple[float, float, float]:
    """A place in the lower right of the map (in the canvas's CSS pixels) far from any point or overlay, where a drag
    starts without grabbing a hover card: (x, y, pixels to the nearest drawn thing)."""
    from scipy.ndimage import distance_transform_edt

    box = canvas.bounding_box()
    pixels = _pixels(canvas.screenshot(scale="css"))
    distance = distance_transform_edt(np.abs(pixels - background).sum(axis=2) <= 30)
    height, width = distance.shape
    corner = distance[height // 2:, width // 2:]
    y, x = np.unravel_index(corner.argmax(), corner.shape)
    return ((x + width // 2) * box["width"] / width, (y + height // 2) * box["height"] / height, float(corner.max()))


def _wait_or_explain(page, locator, log_path, what: str) -> None:
    """``locator.wait_for``; on a timeout, the page's screenshot, the iframes' texts and the app's log go to
    ``tests/artifacts`` and into the failure message (this wait has timed out now and then in CI)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.wait_for(timeout=LONG)
    except PlaywrightTimeout:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "atlas_timeout.png"), full_page=True)
        frames = []
        for frame in page.frames[1:]:
            try:
                frames.append(f"{frame.url[:120]}: {frame.locator('body').inner_text(timeout=5_000)[:600]!r}")
            except Exception as error:  # noqa: BLE001 - a detached or blank frame is itself the clue
                frames.append(f"{frame.url[:120]}: ({type(error).__name__})")
        log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"
        pytest.fail(f"{what} did not appear in {LONG / 1000:.0f} s (screenshot: {ARTIFACTS / 'atlas_timeout.png'})"
                    f"\npage: {page.locator('body').inner_text()[-1500:]!r}\nframes: {frames}\napp log: {log}")


def _open_big_run(page, tmp_path, tiny_roberta, n_docs: int, threshold: int) -> tuple[float, np.ndarray, list]:
    """Save a synthetic run of ``n_docs``, start the app, upload its corpus, reopen the run; returns
    (seconds from the reopen click until the map's canvas shows coloured points, labels, cluster summaries)."""
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
        _wait_or_explain(page, frame.get_by_text(re.compile(rf"^{n_docs:,} / {n_docs:,} points$")),
                         tmp_path / "streamlit.log", f"the component's '{n_docs:,} / {n_docs:,} points' counter")
        # the points are drawn (WebGL2 here: no WebGPU adapter), coloured by cluster
        canvas = frame.locator("canvas").first
        counter = frame.get_by_text(re.compile(r"^[\d,]+ / [\d,]+ points$"))
        deadline = time.monotonic() + LONG / 1000
        share, hues, background = _drawn_points(canvas)
        while (share < 0.02 or hues < 3) and time.monotonic() < deadline:
            time.sleep(0.5)
            share, hues, background = _drawn_points(canvas)
        first_render = time.monotonic() - start
        assert share >= 0.02 and hues >= 3, f"map canvas: {share:.1%} of pixels drawn, {hues} cluster hues"
        notes = frame.get_by_text("WebGPU", exact=False)  # the fallback note, never an error instead of the map
        assert all("Falling back to WebGL" in notes.nth(i).inner_text() for i in range(notes.count()))
        _settle(page)
        _no_exception_shown(page)
        assert page.locator(".js-plotly-plot").count() == 0  # the plotly map is not drawn above the threshold
        page.get_by_text(f"Map of {n_docs:,} documents drawn by Embedding Atlas").wait_for(timeout=LONG)

        result = saved.results[0]
        # a box dragged on the map (shift-drag) from an empty corner to the middle: the component counts the points
        # inside; exactly that many documents are listed below the map
        x0, y0, room = _empty_spot(canvas, background)
        assert room >= 8, f"no empty place to start a drag on the map ({room:.0f} px)"
        box = canvas.bounding_box()
        page.keyboard.down("Shift")
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3, steps=10)
        page.mouse.up()
        page.keyboard.up("Shift")
        counter.filter(has_not_text=f"{n_docs:,} / {n_docs:,}").wait_for(timeout=LONG)
        boxed = int(counter.inner_text().split("/")[0].replace(",", ""))
        assert 0 < boxed < n_docs
        page.get_by_text(f"{boxed:,} documents selected on the map", exact=False).wait_for(timeout=LONG)
        _settle(page)
        page.get_by_text(f"{boxed:,} documents", exact=True).wait_for(timeout=LONG)
        _no_exception_shown(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "atlas_map.png"), full_page=True)
        # clearing it lists every document again
        page.get_by_role("button", name=re.compile(r"^Clear selection")).click()
        page.get_by_text(f"{n_docs:,} documents", exact=True).wait_for(timeout=LONG)
        _settle(page)
        _no_exception_shown(page)
    return first_render, result.labels, result.clusters


def test_big_run_opens_in_embedding_atlas_and_its_selection_lists_documents(atlas_page, tmp_path, tiny_roberta):
    seconds, labels, _ = _open_big_run(atlas_page, tmp_path, tiny_roberta, n_docs=2_000, threshold=1_000)
    print(f"2,000 points: first render {seconds:.1f} s")


@pytest.mark.slow
def test_100k_point_run_renders_and_selects(atlas_page, tmp_path, tiny_roberta):
    seconds, _, _ = _open_big_run(atlas_page, tmp_path, tiny_roberta, n_docs=100_000, threshold=50_000)
    print(f"100,000 points: first render {seconds:.1f} s")
