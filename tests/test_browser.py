"""The running app in headless Chromium: run, explore, pick a cluster, lasso, compare, download.

Starts ``streamlit run app.py`` on a free loopback port with a tiny random model and a
200-document sample, drives it with Playwright (Debian's /usr/bin/chromium; Playwright
never downloads a browser here), and saves screenshots of the explore and compare
views under ``tests/artifacts/``. Marked ``browser``; skipped only when Chromium or the
``playwright`` package is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from answer_server import AnswerServer

from inbedder_core.export import read_csv_export

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
N_DOCS = 200
LONG = 240_000  # ms: first run loads the model and compiles UMAP on two shared cores


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _streamlit(env: dict, log_path: Path, start_s: int = 120, **extra_env: str):
    """``streamlit run app.py`` on a free 127.0.0.1 port with ``env`` (no LLM key from the outside; ``extra_env``
    added last); yields its URL; stopped (then killed)."""
    port = _free_port()
    env = dict(env)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)
    env.update(extra_env)
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"streamlit did not start in {start_s} s"
            time.sleep(0.5)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _tiny_env(model: Path, tmp_path: Path) -> dict:
    """The app's environment: ``model``, a cache in ``tmp_path``, the ``N_DOCS``-row sample, one thread, offline."""
    return dict(os.environ, INBEDDER_MODEL=str(model), INBEDDER_CACHE_DIR=str(tmp_path / "cache"),
                INBEDDER_SAMPLE_ROWS=str(N_DOCS), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")


@pytest.fixture
def server(tiny_roberta, tmp_path):
    """The app with a tiny random model and a 200-document sample; yields (URL, log path)."""
    with _streamlit(_tiny_env(tiny_roberta, tmp_path), tmp_path / "streamlit.log") as url:
        yield url, tmp_path / "streamlit.log"


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1500, "height": 2400})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _no_exception_shown(page) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, shown.first.inner_text()


def _settle(page) -> None:
    """Wait until the script run is over: no running indicator, no stale (faded) element left."""
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"],'
                 + '[data-testid="stStatusWidgetRunningManIcon"]')
             && document.querySelectorAll('[data-stale="true"]').length === 0""", timeout=LONG)


def _choose(page, label: str, option_index: int) -> str:
    """Open the selectbox with this label and click its option at ``option_index``; returns the option text."""
    combobox = page.get_by_role("combobox", name=label, exact=True)
    combobox.click()
    combobox.press("ArrowDown")  # opens the list
    option = page.get_by_role("listbox").get_by_role("option").nth(option_index)
    text = option.inner_text()
    option.click()
    return text


def _documents_listed(page) -> int:
    """The number in the "N documents" caption above the document list."""
    texts = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
    (count,) = [int(m.group(1).replace(",", "")) for t in texts if (m := re.fullmatch(r"([\d,]+) documents", t))]
    return count


def test_run_explore_pick_lasso_compare_and_download(server, page, tmp_path):
    url, server_log = server
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(url)
    page.get_by_text(f"Loaded {N_DOCS} of {N_DOCS} rows").wait_for(timeout=LONG)
    page.get_by_label("Instructions, one per line").fill("What does the customer need?\nHow does the customer feel?")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text(re.compile(r"^Done in ")).wait_for(timeout=LONG)
    page.locator(".js-plotly-plot").first.wait_for(timeout=LONG)
    page.get_by_text(f"{N_DOCS:,} documents", exact=True).wait_for(timeout=LONG)
    _settle(page)
    _no_exception_shown(page)

    # click the second row of the cluster table: the picker follows and the list shrinks to that cluster
    grid = page.locator('[data-testid="stDataFrame"]').nth(1)  # after the most common answers beside the map
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 35 * 1 + 17)  # header row, then the second row's checkbox
    page.wait_for_function("""() => [...document.querySelectorAll('input[aria-label="Show documents of"]')]
                              .some(e => e.value !== 'All clusters')""", timeout=60_000)
    _settle(page)
    second = page.get_by_role("combobox", name="Show documents of", exact=True).input_value()
    second_size = int(re.search(r"\(([\d,]+)\)$", second).group(1).replace(",", ""))
    assert _documents_listed(page) == second_size
    # unticking the row shows all clusters again (the picker follows); the table moved: a button appeared above
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 35 * 1 + 17)
    page.wait_for_function("""() => [...document.querySelectorAll('input[aria-label="Show documents of"]')]
                              .some(e => e.value === 'All clusters')""", timeout=60_000)
    _settle(page)
    assert _documents_listed(page) == N_DOCS

    # pick the largest cluster in the picker instead
    picked = _choose(page, "Show documents of", 1)
    size = int(re.search(r"\(([\d,]+)\)$", picked).group(1).replace(",", ""))
    assert second_size <= size < N_DOCS and picked != second
    page.get_by_text(f"{size:,} documents", exact=True).wait_for(timeout=60_000)
    _settle(page)
    assert page.get_by_text(f"{N_DOCS:,} documents", exact=True).count() == 0
    _no_exception_shown(page)
    page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)

    # lasso the whole map: every document is listed as selected
    plot = page.locator(".js-plotly-plot").first.locator(".nsewdrag").first
    box = plot.bounding_box()
    left, top = box["x"] + 3, box["y"] + 3
    right, bottom = box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
    corners = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top + 3)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in corners[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text(f"{N_DOCS:,} documents selected on the map", exact=False).wait_for(timeout=60_000)
    _settle(page)
    page.get_by_text(f"{N_DOCS:,} documents", exact=True).wait_for(timeout=60_000)
    _no_exception_shown(page)
    # the selection is kept when the colouring changes
    _choose(page, "Colour by", 1)
    _settle(page)
    page.get_by_text(f"{N_DOCS:,} documents selected on the map", exact=False).wait_for(timeout=60_000)
    assert _documents_listed(page) == N_DOCS
    page.get_by_role("button", name=f"Clear selection ({N_DOCS:,})").click()
    # the rerun replaces the note; wait for it to go rather than for a quiet moment (the map redraws)
    page.get_by_text("documents selected on the map", exact=False).wait_for(state="detached", timeout=60_000)
    _settle(page)
    _no_exception_shown(page)

    # compare view
    page.get_by_text("Compare", exact=True).click()
    page.get_by_text("All instructions: pairwise agreement").wait_for(timeout=LONG)
    page.get_by_text("ARI (A vs B)").wait_for(timeout=LONG)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5", timeout=LONG)
    _settle(page)
    _no_exception_shown(page)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # export: the labeled CSV downloads and parses, one row per document
    page.get_by_text("Export", exact=True).click()
    button = page.get_by_role("button", name="Labeled CSV")
    button.wait_for(timeout=LONG)
    with page.expect_download(timeout=LONG) as download_info:
        button.click()
    download = download_info.value
    assert download.suggested_filename == "banking77.labeled.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    table = read_csv_export(target, typed=True)
    assert len(table) == N_DOCS
    assert {"id", "text", "intent", "answer_1", "cluster_1", "label_1", "answer_2", "cluster_2"} <= set(table.columns)
    assert table["id"].is_unique
    _no_exception_shown(page)
    assert "Traceback" not in server_log.read_text(), server_log.read_text()[-3000:]


# --------------------------------------------------------------------------- screenshots (issue 19)

SCREENS = Path("/work/screens/issue19")
SHOT_TIMEOUT = 900_000  # ms: 1,000 documents embedded twice and UMAP compiled, on shared CPU cores


def _reviews_corpus(directory: Path) -> Path:
    """The two-label corpus (sentiment x domain, 1,000 rows) built from ../shared/data/aspects."""
    import csv
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_two_label_corpus",
                                                  ROOT / "benchmarks" / "build_two_label_corpus.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    if not (builder.SOURCE_DIR / "uci_sentiment_sentences.jsonl.gz").exists():
        pytest.skip(f"{builder.SOURCE_DIR} is missing (the shared aspects data)")
    path = directory / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "sentiment", "domain"])
        writer.writeheader()
        writer.writerows(builder.build(1000))
    return path


def _corpus_model(directory: Path, texts: list[str]) -> Path:
    """A random 2-layer RobertaForMaskedLM whose word-level vocabulary covers ``texts`` (so that documents
    with different words get different vectors): the maps show the app's mechanics at a fraction of a real
    model's cost. ``INBEDDER_SHOT_MODEL`` names a real model to use instead (e.g. ``inbedder-minilm``)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForMaskedLM

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    words = re.findall(r"\w+|[^\w\s]", " ".join(texts + ["### Input Instruction Response : ?"]).lower())
    vocab = {tok: i for i, tok in enumerate(specials)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", mask_token="<mask>")
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=96, max_position_embeddings=260, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1)
    model = RobertaForMaskedLM(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def shot_server(tmp_path):
    """``streamlit run app.py`` on a 1,000-row sample with ``_corpus_model`` (or ``INBEDDER_SHOT_MODEL``)."""
    import pandas as pd

    reviews = _reviews_corpus(tmp_path)
    sample = pd.read_csv(ROOT / "sample_data" / "banking77.csv", dtype=str, keep_default_na=False)
    texts = sample["text"].tolist() + pd.read_csv(reviews, dtype=str, keep_default_na=False)["text"].tolist()
    model = os.environ.get("INBEDDER_SHOT_MODEL") or str(_corpus_model(tmp_path / "model", texts))
    env = dict(os.environ, INBEDDER_MODEL=model, INBEDDER_CACHE_DIR=str(tmp_path / "cache"),
               INBEDDER_SAMPLE_ROWS="1000", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2", NUMBA_NUM_THREADS="2")
    with _streamlit(env, tmp_path / "streamlit.log", start_s=180) as url:
        yield url, tmp_path / "streamlit.log", reviews


def _hover_a_point(page, chart) -> None:
    """Move the mouse onto the first point of the map's largest cluster trace (read from plotly's own layout)."""
    where = chart.evaluate("""(gd) => {
        const layout = gd._fullLayout, xa = layout.xaxis, ya = layout.yaxis;
        const traces = gd._fullData.filter(t => t.x && t.x.length && !String(t.name).startsWith('Noise'));
        const t = traces.sort((a, b) => b.x.length - a.x.length)[0];
        return [xa._offset + xa.d2p(t.x[0]), ya._offset + ya.d2p(t.y[0])];
    }""")
    box = chart.bounding_box()
    page.mouse.move(box["x"] + where[0], box["y"] + where[1])
    page.locator(".hoverlayer .hovertext").first.wait_for(timeout=30_000)


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["sample", "reviews"])
def test_screenshots_of_named_maps_hover_card_label_matrix_and_reduced_sankey(shot_server, page, corpus):
    url, server_log, reviews = shot_server
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1500, "height": 1400})
    page.goto(url)
    page.get_by_text("Loaded 1,000 of 1,000 rows").wait_for(timeout=LONG)
    if corpus == "reviews":
        page.locator('input[type="file"]').set_input_files(str(reviews))
        page.get_by_text("Loaded 1,000 of 1,000 rows from 'reviews.csv'").wait_for(timeout=LONG)
        questions = "How does the reviewer feel?\nWhat kind of thing is being reviewed?"
    else:
        questions = "What does the customer need?\nHow does the customer feel?"
    _settle(page)
    page.get_by_label("Instructions, one per line").fill(questions)
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text(re.compile(r"^Done in ")).wait_for(timeout=SHOT_TIMEOUT)
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=LONG)
    _settle(page)
    _no_exception_shown(page)
    chart.scroll_into_view_if_needed()
    assert chart.locator(".annotation").count() > 0  # cluster names drawn on the map
    chart.screenshot(path=str(ARTIFACTS / f"map_names_{corpus}.png"))
    _hover_a_point(page, chart)
    page.wait_for_timeout(300)
    chart.screenshot(path=str(ARTIFACTS / f"hover_card_{corpus}.png"))

    page.get_by_text("Compare", exact=True).click()
    page.get_by_text("Questions against the label columns").wait_for(timeout=LONG)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=LONG)
    _settle(page)
    _no_exception_shown(page)
    charts = page.locator(".js-plotly-plot")
    sankey = charts.nth(2)
    sankey.scroll_into_view_if_needed()
    sankey.screenshot(path=str(ARTIFACTS / f"sankey_{corpus}.png"))
    matrix = charts.last
    matrix.scroll_into_view_if_needed()
    assert "best" in matrix.inner_text()
    matrix.screenshot(path=str(ARTIFACTS / f"label_matrix_{corpus}.png"))
    page.get_by_role("tab", name="Contingency heatmap").click()
    page.wait_for_timeout(800)
    heatmap = charts.nth(3)
    heatmap.scroll_into_view_if_needed()
    heatmap.screenshot(path=str(ARTIFACTS / f"heatmap_{corpus}.png"))
    page.screenshot(path=str(ARTIFACTS / f"compare_{corpus}.png"), full_page=True)
    assert "Traceback" not in server_log.read_text(), server_log.read_text()[-3000:]
    if SCREENS.parent.exists():
        SCREENS.mkdir(exist_ok=True)
        for shot in ARTIFACTS.glob(f"*_{corpus}.png"):
            (SCREENS / shot.name).write_bytes(shot.read_bytes())


def test_answers_from_an_llm_cost_first_then_the_map_and_its_most_common_answers(tiny_roberta, page, tmp_path):
    """The llm:NAME engine against a chat server on 127.0.0.1 that answers with each document's first words."""
    key = "sk-browser-test-5c0ffee5c0ffee"
    screens = Path("/work/screens/issue16")

    def answer(text: str) -> str:
        return " ".join(text.lower().split()[:2]) or "nothing"

    with AnswerServer(answer, key=key) as chat, \
            _streamlit(_tiny_env(tiny_roberta, tmp_path), tmp_path / "streamlit.log", OPENAI_API_KEY=key,
                       OPENAI_BASE_URL=chat.url) as url:
        ARTIFACTS.mkdir(exist_ok=True)
        page.goto(url)
        page.get_by_text(f"Loaded {N_DOCS} of {N_DOCS} rows").wait_for(timeout=LONG)
        combobox = page.get_by_role("combobox", name="Embedding model", exact=True)
        combobox.click()
        combobox.press("ArrowDown")
        page.get_by_role("listbox").get_by_role("option", name="Answers from an LLM…").click()
        page.get_by_label("Chat model for answers").wait_for(timeout=LONG)
        _settle(page)
        page.get_by_label("Chat model for answers").fill("test-model")
        page.get_by_label("Chat model for answers").press("Enter")
        page.get_by_text("Keywords only", exact=True).click()
        page.get_by_role("button", name="Apply naming to the current maps").click()
        _settle(page)
        page.get_by_label("Instructions, one per line").fill("What does the customer need?")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Before anything is sent").wait_for(timeout=LONG)
        _settle(page)
        page.screenshot(path=str(ARTIFACTS / "llm_answers_confirm.png"), full_page=True)
        page.get_by_text(re.compile(r"200 to ask in 20 request\(s\) of up to 10 document")).wait_for(timeout=60_000)
        assert not chat.requests  # the cost is shown first; nothing sent yet
        page.get_by_role("button", name=re.compile(r"^Send 20 request")).click()
        page.get_by_text(re.compile(r"^Done in ")).wait_for(timeout=LONG)
        page.locator(".js-plotly-plot").first.wait_for(timeout=LONG)
        page.get_by_text("Most common answers").wait_for(timeout=LONG)
        _settle(page)
        _no_exception_shown(page)
        assert len(chat.requests) == 20 and chat.fence_problems == []
        assert key not in page.content()
        page.screenshot(path=str(ARTIFACTS / "llm_answers.png"), full_page=True)
    with contextlib.suppress(OSError):
        screens.mkdir(parents=True, exist_ok=True)
        for name in ("llm_answers_confirm.png", "llm_answers.png"):
            (screens / name).write_bytes((ARTIFACTS / name).read_bytes())
