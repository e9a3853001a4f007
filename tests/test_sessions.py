"""Many analysts at once (issue 15, part 4): one server, eight sessions, each with its own upload and question.

Each session uploads its own CSV (named ``corpus.csv`` in every session; its documents carry a marker
word of their own and ids of their own) and runs its own question, all at the same time. Checked: no
exception, each session sees only its own documents (map data, page text and the labeled CSV it
downloads), the model is loaded once per process (the ``inbedder: loaded model`` log line of
``inbedder_app.resources.shared_encoder``), and the SQLite embedding cache written by the concurrent
runs passes ``PRAGMA integrity_check`` and holds every session's vectors, equal to the model's own.

- ``test_eight_browser_sessions_at_once`` (slow, browser): a real ``streamlit run app.py`` driven by
  eight Chromium contexts of one browser (Playwright's async API); prints the server's peak RSS
  (``VmHWM``) and the wall time.
- ``test_eight_sessions_in_threads_share_one_model_and_one_cache`` (the default suite's lighter variant):
  eight threads of this process take the model and the cache from the app's ``st.cache_resource``
  functions at the same moment and run their own corpus and question (``AppTest`` cannot run two
  sessions at once: it swaps one process-wide ``Runtime`` in and out around each run).

``benchmarks/bench_sessions.py`` reuses the browser driver here to time one session against eight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import random
import re
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, _streamlit, _tiny_env

from inbedder_core.cache import CACHE_FILE, EmbeddingCache, entry_key
from inbedder_core.export import read_csv_export

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
N_SESSIONS = 8
N_ROWS = 60
MARKERS = ("aardvark", "bison", "cheetah", "dingo", "emu", "ferret", "gazelle", "hyena")
QUESTIONS = ("What does the customer need?", "How does the customer feel?", "Why is the customer writing?",
             "What went wrong?", "Which product is it about?", "Is the customer angry?",
             "What should the bank do?", "Where is the money?")
VOCAB = ("card cash money account transfer payment refund fee pin phone app top up exchange rate atm lost stolen "
         "arrived still waiting not working declined happy angry sad frustrated worried confused grateful "
         "order shoes coffee pizza weather rain movie book song football game news doctor hospital").split()
LOADED = re.compile(r"inbedder: loaded model '([^']*)' on (\S+)")
SESSION_MS = 900_000  # a session's whole run, eight at once on two shared cores


def session_rows(k: int, n_rows: int = N_ROWS, round_: int = 0) -> pd.DataFrame:
    """Session ``k``'s corpus: ids ``s{k}-{i}``, each text holding the session's marker word (``round_``:
    other texts, for a benchmark's repeats that must miss the cache)."""
    rng = random.Random(k + 1000 * round_)
    texts = [f"{MARKERS[k]} " + " ".join(rng.choice(VOCAB) for _ in range(rng.randint(4, 10))) + f" {round_} {i}"
             for i in range(n_rows)]
    return pd.DataFrame({"id": [f"s{k}-{i}" for i in range(n_rows)], "text": texts})


def session_csv(k: int, n_rows: int = N_ROWS, round_: int = 0) -> bytes:
    return session_rows(k, n_rows, round_).to_csv(index=False).encode("utf-8")


def assert_only_own(text: str, k: int, where: str) -> None:
    """``text`` shows session ``k``'s marker and no other session's."""
    assert MARKERS[k] in text, f"session {k}: its own documents are missing from {where}"
    others = [m for j, m in enumerate(MARKERS) if j != k and m in text]
    assert not others, f"session {k}: documents of other sessions ({others}) in {where}"


def assert_cache_holds_every_session(cache_path: Path, model: Path, n_sessions: int = N_SESSIONS,
                                     n_rows: int = N_ROWS) -> None:
    """The cache file is intact, and for every session it holds a vector per document under its question,
    equal (cosine >= 0.9999) to what the model gives for that text alone."""
    from inbedder_core.encoder import load_encoder

    with sqlite3.connect(cache_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    encoder = load_encoder(str(model), device="cpu")
    cache = EmbeddingCache(cache_path)
    try:
        for k in range(n_sessions):
            texts = session_rows(k, n_rows)["text"].tolist()
            keys = [entry_key(encoder.fingerprint, QUESTIONS[k], t) for t in texts]
            damaged: list[str] = []
            stored = cache.get_many(keys, damaged)
            assert not damaged and len(stored) == len(texts), f"session {k}: {len(stored)} of {len(texts)} cached"
            cached = np.stack([stored[key][0] for key in keys])
            fresh = encoder.encode(texts, QUESTIONS[k], normalize=False).embeddings
            cosine = (cached * fresh).sum(1) / np.linalg.norm(cached, axis=1) / np.linalg.norm(fresh, axis=1)
            assert cosine.min() >= 0.9999, f"session {k}: a cached vector is not its text's ({cosine.min():.4f})"
    finally:
        cache.close()


def model_loads(log: str) -> list[str]:
    return [m.group(1) for m in LOADED.finditer(log)]


# --------------------------------------------------------------------------- the browser driver


def server_pid(url: str) -> int:
    """The pid of the ``streamlit run`` serving ``url`` (found by its ``--server.port`` in /proc)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in args and b"--server.port" in args and port.encode() in args:
            return int(entry.name)
    raise AssertionError(f"no streamlit process serving {url}")


def peak_rss_mib(pid: int) -> float:
    """``VmHWM`` (peak resident set) of ``pid`` and of its child processes, in MiB."""
    def hwm(p: int) -> int:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return int(match.group(1)) if match else 0

    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return (hwm(pid) + sum(hwm(c) for c in children)) / 1024


async def run_session(browser, url: str, k: int, folder: Path, round_: int = 0) -> dict:
    """Session ``k`` in a fresh browser context: upload its CSV, run its question, check what it sees,
    download its labeled CSV. Returns ``{"seconds", "table"}``."""
    context = await browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 2000})
    try:
        page = await context.new_page()
        await page.goto(url)
        source = folder / f"session{k}-{round_}" / "corpus.csv"  # the same file name in every session
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(session_csv(k, round_=round_))
        await page.locator('input[type="file"]').wait_for(state="attached", timeout=SESSION_MS)
        await page.locator('input[type="file"]').set_input_files(str(source))
        await page.get_by_text(f"Loaded {N_ROWS} of {N_ROWS} rows from 'corpus.csv'").wait_for(timeout=SESSION_MS)
        await settle(page)
        await page.get_by_label("Instructions, one per line").fill(QUESTIONS[k])
        started = time.monotonic()
        await page.get_by_role("button", name="Run", exact=True).click()
        done = page.get_by_text(re.compile(r"^Done in "))
        await done.or_(page.locator('[data-testid="stException"]')).first.wait_for(timeout=SESSION_MS)
        await no_exception_shown(page, k)  # a failed run fails the test now, not after SESSION_MS
        await page.locator(".js-plotly-plot").first.wait_for(timeout=SESSION_MS)
        await settle(page)
        seconds = time.monotonic() - started
        await no_exception_shown(page, k)
        map_data = await page.evaluate("""() => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')]
                                              .map(gd => (gd.data || []).map(t => t.text)))""")
        assert_only_own(map_data, k, "the map's points")
        body = await page.inner_text("body")
        assert QUESTIONS[k] in body
        assert not [m for j, m in enumerate(MARKERS) if j != k and m in body], f"session {k}: others' words shown"
        await page.get_by_text("Export", exact=True).click()
        button = page.get_by_role("button", name="Labeled CSV")
        await button.wait_for(timeout=SESSION_MS)
        async with page.expect_download(timeout=SESSION_MS) as download_info:
            await button.click()
        download = await download_info.value
        target = source.parent / download.suggested_filename
        await download.save_as(target)
        await no_exception_shown(page, k)
        return {"seconds": seconds, "table": read_csv_export(target, typed=True)}
    finally:
        await context.close()


async def settle(page) -> None:
    await page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"],'
                 + '[data-testid="stStatusWidgetRunningManIcon"]')
             && document.querySelectorAll('[data-stale="true"]').length === 0""", timeout=SESSION_MS)


async def no_exception_shown(page, k: int) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert await shown.count() == 0, f"session {k}: " + await shown.first.inner_text()


async def run_sessions(url: str, sessions: list[int], folder: Path, round_: int = 0) -> tuple[list[dict], float]:
    """``sessions`` started together in one headless Chromium, one context each; (their results, wall seconds)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            started = time.monotonic()
            results = await asyncio.gather(*(run_session(browser, url, k, folder, round_) for k in sessions))
            return list(results), time.monotonic() - started
        finally:
            await browser.close()


def check_tables(results: list[dict], sessions: list[int], round_: int = 0) -> None:
    """Each session's labeled CSV lists exactly its own documents, each under its own marker."""
    for k, result in zip(sessions, results, strict=True):
        table = result["table"]
        own = session_rows(k, round_=round_)
        assert sorted(table["id"]) == sorted(own["id"]), f"session {k}: other ids in its export"
        assert sorted(table["text"]) == sorted(own["text"]), f"session {k}: other texts in its export"
        assert_only_own(" ".join(table["text"]), k, "its labeled CSV")
        assert table["text"].str.startswith(MARKERS[k] + " ").all()
        assert table["cluster_1"].notna().all()


@pytest.mark.slow
@pytest.mark.browser
def test_eight_browser_sessions_at_once(tiny_roberta, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium")
    pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    log_path = tmp_path / "streamlit.log"
    env = _tiny_env(tiny_roberta, tmp_path)
    with _streamlit(env, log_path, INBEDDER_WARM_UP="0") as url:
        pid = server_pid(url)
        sessions = list(range(N_SESSIONS))
        results, wall = asyncio.run(run_sessions(url, sessions, tmp_path))
        peak = peak_rss_mib(pid)
    log = log_path.read_text()
    print(f"\n{N_SESSIONS} browser sessions at once: {wall:.1f} s wall; each run "
          f"{min(r['seconds'] for r in results):.1f}-{max(r['seconds'] for r in results):.1f} s; "
          f"server peak RSS {peak:.0f} MiB")
    check_tables(results, sessions)
    assert "Traceback" not in log, log[-3000:]
    assert model_loads(log) == [str(tiny_roberta)], log[-3000:]  # once for the whole process
    assert 0 < peak < 4096  # a sanity bound: the figure itself is printed (benchmarks/README.md)
    assert_cache_holds_every_session(tmp_path / "cache" / CACHE_FILE, tiny_roberta)


# --------------------------------------------------------------------------- sessions in threads of this process


def test_eight_sessions_in_threads_share_one_model_and_one_cache(tiny_roberta, tmp_path):
    """What eight script runs of one server do at once, in eight threads of this process: take the encoder and
    the cache handle from the app's ``st.cache_resource`` functions (``inbedder_app.resources``), load their
    own corpus and run their own question through ``CachedEncoder`` and ``Analysis``, as the app's ``compute``
    does. (``AppTest`` cannot stand in: it swaps one process-wide ``Runtime`` in and out around each run, so
    two ``AppTest`` runs at once break each other.)"""
    from streamlit.logger import get_logger

    from inbedder_app import resources
    from inbedder_core.analysis import Analysis, settings_record
    from inbedder_core.cache import CachedEncoder
    from inbedder_core.io.load import load_corpus
    from inbedder_core.living import save_living_run

    cache_dir = str(tmp_path / "cache")
    resources.shared_encoder.clear()  # the loads counted below are this test's
    resources.shared_embedding_cache.clear()
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logger = get_logger(resources.__name__)  # the app's logger, as the server sets it up (level: info)
    logger.addHandler(handler)
    barrier = threading.Barrier(N_SESSIONS)
    results: dict[int, object] = {}
    saved: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def analyst(k: int) -> None:
        try:
            corpus = load_corpus(session_csv(k), name="corpus.csv")
            barrier.wait(timeout=120)  # all eight ask for the model at the same moment
            encoder = CachedEncoder(resources.shared_encoder(str(tiny_roberta), "cpu"),
                                    resources.shared_embedding_cache(cache_dir))
            analysis = Analysis(corpus, encoder)
            results[k] = analysis.run(QUESTIONS[k])
            barrier.wait(timeout=600)  # and save their runs together (fitted UMAPs pickled at once)
            saved[k] = save_living_run(corpus, [results[k]], analysis, model=str(tiny_roberta),
                                       settings=settings_record(analysis.settings, len(corpus)),
                                       fingerprint=dataclasses.asdict(encoder.fingerprint))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=analyst, args=(k,)) for k in range(N_SESSIONS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        logger.removeHandler(handler)
        resources.shared_embedding_cache.clear()
    assert not errors, errors
    for k in range(N_SESSIONS):
        result = results[k]
        assert result.instruction == QUESTIONS[k] and len(result.labels) == N_ROWS
        own_words = set(" ".join(session_rows(k)["text"]).split())
        keywords = {w for c in result.clusters for keyword in c.keywords for w in keyword.split()}
        assert keywords and keywords <= own_words, f"session {k}: keywords not from its documents"
        info, folder, note = saved[k]
        assert note is None and (folder / "placement" / "reducer_0.pkl").is_file(), note
    assert model_loads(log.getvalue()) == [str(tiny_roberta)]  # one load for the eight sessions
    assert_cache_holds_every_session(Path(cache_dir) / CACHE_FILE, tiny_roberta)
