"""The Streamlit app end to end with ``AppTest``: offline, CPU, a tiny random model.

The model is the ``tiny_roberta`` fixture (a random 2-layer RobertaForMaskedLM in a
local directory, loaded through the real ``load_encoder``); clusters are named by the
real ``openai`` client talking to an OpenAI-compatible server on 127.0.0.1 that this
file starts. Downloads are captured where Streamlit registers them
(``streamlit.elements.widgets.button.marshall_file``, wrapped, not replaced) so the
bytes an analyst would get can be parsed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from answer_server import AnswerServer
from streamlit.testing.v1 import AppTest

from inbedder_app.state import short_key
from inbedder_core import runs
from inbedder_core.export import read_csv_export
from inbedder_core.models import BUNDLED_MODEL
from inbedder_core.plots import LEGEND_CHARS, truncate

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SAMPLE = ROOT / "sample_data" / "banking77.csv"
API_KEY = "sk-test-0123456789abcdef-never-shown"
EVIL = "<b>bold</b> <script>alert(1)</script> [link](javascript:alert(1)) $x$ :red[boom] my card"
RUN_TIMEOUT = 300


class ChatServer:
    """A tiny OpenAI-compatible chat-completions server: every reply names a cluster."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server.lock:
                    server.requests.append({"path": self.path, "auth": self.headers.get("Authorization", ""),
                                            "body": body})
                    number = len(server.requests)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                if server.status != 200:  # an error that echoes the key, as some providers do
                    given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    data = json.dumps({"error": {"message": f"Incorrect API key provided: {given}",
                                                 "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
                    self.send_response(server.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                content = json.dumps({"name": f"LLM topic {number}", "description": f"Described by the LLM {number}."})
                reply = {
                    "id": f"chatcmpl-{number}", "object": "chat.completion", "created": 1700000000,
                    "model": body.get("model", "test-model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    with ChatServer() as server:
        yield server


@pytest.fixture
def app_env(monkeypatch, tiny_roberta):
    """The app's environment: tiny model, small sample, no background warm-up, no LLM key."""
    monkeypatch.setenv("INBEDDER_MODEL", str(tiny_roberta))
    monkeypatch.setenv("INBEDDER_SAMPLE_ROWS", "150")
    monkeypatch.setenv("INBEDDER_WARM_UP", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "INBEDDER_LLM_MODEL", "INBEDDER_MAX_BYTES", "INBEDDER_MAX_ROWS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def downloads(monkeypatch):
    """file name -> data (bytes, or the callable of a deferred download) of every download button rendered."""
    from streamlit.elements.widgets import button

    captured: dict[str, object] = {}
    original = button.marshall_file

    def recording(coordinates, data, proto, mimetype, file_name=None, **kwargs):
        captured[file_name] = data
        return original(coordinates, data, proto, mimetype, file_name, **kwargs)

    monkeypatch.setattr(button, "marshall_file", recording)
    return captured


def upload_csv(n_rows: int = 200) -> bytes:
    """``n_rows`` sample queries spread over all intents, plus one document full of markup."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame = frame.iloc[:: len(frame) // n_rows].head(n_rows).reset_index(drop=True)
    frame.loc[len(frame)] = {"id": "evil-1", "text": EVIL, "intent": "card_arrival"}
    return frame.to_csv(index=False).encode("utf-8")


def displayed(at: AppTest, *roots) -> str:
    """Every element the app sent (main area and sidebar, or under ``roots``), as protobuf text."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    for root in roots or (at.main, at.sidebar):
        walk(root)
    return "\n".join(parts)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def array(value) -> list:
    """A plotly JSON array: a list, or a typed array ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return list(value)


def selectbox_labelled(at: AppTest, prefix: str):
    return next(s for s in at.selectbox if s.label.startswith(prefix))


def frame_by_key(at: AppTest, prefix: str) -> pd.DataFrame:
    """A selectable dataframe, by the start of its key (display-only dataframes carry no key)."""
    return next(d for d in at.dataframe if (d.key or "").startswith(prefix)).value


def frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first dataframe shown with all these columns."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def shows_a_choice(box) -> bool:
    """Whether a selectbox shows an option, not its empty placeholder (a value set to None shows nothing)."""
    return not box.proto.set_value or box.proto.HasField("raw_value")


def runs_expander(at: AppTest) -> str:
    return next(e.label for e in at.expander if e.label.startswith("Earlier runs"))


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def as_bytes(data) -> bytes:
    value = data() if callable(data) else data
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class RecordingBar:
    """Stands in for the ``st.progress`` bar: records what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def progress(self, value: float, text: str) -> None:
        self.calls.append((value, text))


def apply_settings(at: AppTest, button: str = "apply_settings", **values):
    """Set sidebar clustering settings (number inputs, or the algorithm radio), press the Apply button under
    them (``apply_naming`` for the naming section's); returns the workspace."""
    for key, value in values.items():
        widget = at.radio(key=key) if key == "algorithm" else at.number_input(key=key)
        widget.set_value(value)
    at.button(key=button).click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    return at.session_state["workspace"]


def test_embedding_progress_says_documents_done_and_time_left():
    from inbedder_app import text as app  # app.py's text helpers live in inbedder_app.text
    ticks = iter([100.0, 110.0, 130.0])
    bar = RecordingBar()
    progress = app.EmbeddingProgress(bar, "Instruction 1 of 2", clock=lambda: next(ticks))
    progress(100, 1000)  # 100 came from the cache, at t=100
    progress(300, 1000)  # 200 encoded in 10 s: 700 left at 20/s
    progress(1000, 1000)
    assert bar.calls[0] == (0.1, "Instruction 1 of 2: 100 / 1,000 documents embedded")
    assert bar.calls[1] == (0.3, "Instruction 1 of 2: 300 / 1,000 documents embedded, about 35 s left")
    assert bar.calls[2] == (1.0, "Instruction 1 of 2: 1,000 / 1,000 documents embedded")
    cached = RecordingBar()
    app.EmbeddingProgress(cached, "Instruction 2 of 2", clock=lambda: 5.0)(1000, 1000)
    assert cached.calls == [(1.0, "Instruction 2 of 2: 1,000 / 1,000 documents embedded (all from the cache)")]
    assert (app.duration(0.2), app.duration(30), app.duration(180), app.duration(7200)) == ("1 s", "30 s", "3 min",
                                                                                             "2.0 h")
    assert app.md_text("[a](javascript:x) *b* $c$") == r"\[a\]\(javascript\:x\) \*b\* \$c\$"


def test_opens_on_the_sample_ready_to_run(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert_clean(at)
    assert at.title[0].value == "InBedder Explorer"
    shown = displayed(at)
    assert "An **instruction** is a question asked of every document" in shown
    for example in ("What does the customer need", "How does the customer feel",
                    "Which product or feature is the customer asking about"):
        assert example in shown  # escaped for Markdown in the caption, but all three are there
    assert at.text_area(key="instructions").value == "What does the customer need?"
    assert any(t.value.startswith("Loaded 150 of 150 rows from 'banking77.csv'") for t in at.text)
    assert selectbox_labelled(at, "Gold label column").value == "intent"
    assert selectbox_labelled(at, "Text column").value == "text"
    assert at.selectbox(key="model_choice").value == os.environ["INBEDDER_MODEL"]
    assert at.radio(key="naming").value == "Keywords only"  # no key configured
    assert "No API key" in shown
    assert at.info[-1].value.startswith("Run an instruction")  # nothing computed at start


def test_the_warm_up_loads_the_opening_model_and_run_uses_that_load(app_env):
    """With the warm-up on, the model the app opens with loads in the background while the analyst reads
    the corpus; Run takes that encoder instead of loading the model again."""
    from inbedder_app import resources

    app_env.setenv("INBEDDER_WARM_UP", "1")
    resources.shared_encoder.clear()  # a fresh server: no encoder loaded by an earlier test
    resources.start_warm_up.clear()
    key = (os.environ["INBEDDER_MODEL"], "auto", False)
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert_clean(at)
        preloaded = resources._PRELOADS[key].result(timeout=RUN_TIMEOUT)  # loaded before any Run
        at.button(key="run").click().run(timeout=RUN_TIMEOUT)
        assert_clean(at)
        assert key not in resources._PRELOADS  # taken by the run, not kept twice
        assert at.session_state["workspace"].analysis.encoder.encoder is preloaded
    finally:
        resources._PRELOADS.clear()
        assert resources.WARM_UPS[-1].done.wait(RUN_TIMEOUT)  # UMAP's compile too, before the next test


def test_api_key_from_streamlit_secrets_is_used_and_never_shown(app_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["OPENAI_API_KEY"] = API_KEY
    at.run()
    assert_clean(at)
    assert at.radio(key="naming").value == "LLM"
    shown = displayed(at)
    assert "API key: read from Streamlit secrets (never shown)." in shown and API_KEY not in shown


def test_full_flow_upload_run_explore_compare_recluster_export(app_env, chat_server, downloads, tmp_path):
    app_env.setenv("OPENAI_API_KEY", API_KEY)
    app_env.setenv("OPENAI_BASE_URL", chat_server.url)
    app_env.setenv("INBEDDER_LLM_MODEL", "test-namer")
    data = upload_csv(200)
    n_docs = 201

    at = AppTest.from_file(APP, default_timeout=60).run()
    assert_clean(at)
    assert at.radio(key="naming").value == "LLM"  # a key is configured
    assert "API key: read from the environment (never shown)." in displayed(at)

    at.file_uploader(key="upload").set_value(("bank_subset.csv", data, "text/csv"))
    at.run()
    assert_clean(at)
    assert any(t.value.startswith(f"Loaded {n_docs} of {n_docs} rows from 'bank_subset.csv'") for t in at.text)
    selectbox_labelled(at, "Gold label column").set_value("intent")
    at.text_area(key="instructions").set_value("What does the customer need?\n\nHow does the customer feel?\n")
    at.button(key="run").click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)

    ws = at.session_state["workspace"]
    assert list(ws.results) == ["What does the customer need?", "How does the customer feel?"]
    assert ws.analysis.n_embeddings_ == 2
    first = ws.results["What does the customer need?"]
    assert first.labels.shape == (n_docs,) and first.coords.shape == (n_docs, 2)

    # names came from the loopback LLM, with the key in the header only
    assert chat_server.requests and all(r["auth"] == f"Bearer {API_KEY}" for r in chat_server.requests)
    assert all(r["body"]["model"] == "test-namer" for r in chat_server.requests)
    table = frame_by_key(at, "cluster_table_")
    clustered = table[table["cluster"] >= 0]
    assert len(clustered) and clustered["named by"].eq("llm").all()
    assert clustered["name"].str.startswith("LLM topic").all()
    assert table["size"].sum() == n_docs
    assert API_KEY not in displayed(at)
    # running the same questions again with the same settings names nothing again (no new LLM request)
    sent = len(chat_server.requests)
    at.button(key="run").click()
    at.run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    assert len(chat_server.requests) == sent and frame_by_key(at, "cluster_table_")["name"].tolist() == \
        table["name"].tolist()

    # the map: WebGL, one trace per cluster, user text escaped in hovers
    (spec,) = charts(at)
    assert {trace["type"] for trace in spec["data"]} == {"scattergl"}
    assert sorted(i for trace in spec["data"] for i in array(trace["customdata"])) == list(range(n_docs))
    hovers = json.dumps([trace["text"] for trace in spec["data"]])
    assert "<script>" not in hovers and "&lt;script&gt;alert(1)&lt;/script&gt;" in hovers
    documents = frame_with(at, "id", "text", "cluster")
    assert len(documents) == n_docs and EVIL in documents["text"].tolist()  # verbatim, shown as plain text

    # pick a cluster: its documents, then a search inside them
    biggest = clustered.iloc[0]
    picker = next(s for s in at.selectbox if s.label == "Show documents of")
    picker.set_value(int(biggest["cluster"])).run()
    assert_clean(at)
    documents = frame_with(at, "id", "text", "cluster")
    assert len(documents) == biggest["size"] and documents["cluster"].eq(biggest["name"]).all()
    next(s for s in at.selectbox if s.label == "Show documents of").set_value(None)
    at.text_input(key="doc_search").input("card").run()
    documents = frame_with(at, "id", "text", "cluster")
    expected = sum(1 for i, t in enumerate(ws.analysis.corpus.texts)
                   if "card" in t.lower() or "card" in first.answers[i].lower())
    assert 0 < len(documents) == expected < n_docs

    # colour by the gold column (an id column, every value unique, is not offered)
    assert at.selectbox(key="colour_by").options == ["Cluster", "Gold label: intent"]
    at.selectbox(key="colour_by").set_value("intent").run()
    assert_clean(at)
    (spec,) = charts(at)
    intents = set(pd.read_csv(io.BytesIO(data))["intent"])
    legend = {t["name"].rsplit(" (", 1)[0] for t in spec["data"]}
    (other,) = [t["name"] for t in spec["data"] if t["name"].startswith("other (")]  # the tail, said explicitly
    tail = re.fullmatch(r"other \((\d+) values, (\d+) documents\) \((\d+)\)", other)
    assert tail and tail.group(2) == tail.group(3) and int(tail.group(1)) == len(intents) - 20
    assert legend - {other.rsplit(" (", 1)[0], "search hits"} <= {truncate(i, LEGEND_CHARS) for i in intents}
    assert "search hits" in legend  # the search ("card") is still on: its hits stand out on the map

    # compare: two maps with the same document starred, contingency, Sankey, pairwise scores, gold scores
    at.radio(key="view").set_value("Compare").run()
    assert_clean(at)
    at.selectbox(key="compare_doc").set_value(7).run()
    assert_clean(at)
    specs = charts(at)
    assert [s["data"][0]["type"] for s in specs] == ["scattergl", "scattergl", "sankey", "heatmap", "heatmap",
                                                     "heatmap", "heatmap"]  # the last: questions x label columns
    for side in specs[:2]:
        star = side["data"][-1]
        assert star["name"] == "picked document" and array(star["customdata"]) == [7]
    assert {m.label for m in at.metric} >= {"ARI (A vs B)", "NMI (A vs B)"}
    sankey = specs[2]["data"][0]
    left_out = re.search(r"\(([\d,]+) documents\)</sup>", specs[2]["layout"]["title"]["text"])
    assert sum(sankey["link"]["value"]) + (int(left_out.group(1)) if left_out else 0) == n_docs
    gold = frame_with(at, "instruction", "column", "v_measure")
    assert len(gold) == 2 and gold["v_measure"].between(0, 1).all() and "nmi" not in gold.columns
    assert set(gold["column"]) == {"intent"} and gold["best"].tolist().count("★ best") == 1
    computed = at.session_state["workspace"].derived  # computed once for this run, reused on the next click
    assert {("pairwise",), ("label_matrix", "intent")} <= set(computed)
    pairwise = computed[("pairwise",)]
    at.selectbox(key="compare_doc").set_value(8).run()
    assert at.session_state["workspace"].derived[("pairwise",)] is pairwise

    # re-cluster from the sidebar: no new embeddings, a new saved run
    saved_before = len(runs.list_runs(ws.corpus_hash))
    ws = apply_settings(at, min_cluster_size=15)
    assert ws.analysis.n_embeddings_ == 2 and ws.settings.min_cluster_size == 15
    assert ws.derived.get(("pairwise",)) is not pairwise  # new results: comparisons computed afresh
    assert len(runs.list_runs(ws.corpus_hash)) == saved_before + 1
    assert runs_expander(at) == f"Earlier runs on this corpus ({saved_before + 1})"  # listed at once
    steps = [t.value for t in at.text]
    assert any("reused the embeddings of" in s for s in steps) and not any("from cache)" in s for s in steps)
    ws = apply_settings(at, min_cluster_size=n_docs - 1)  # too large: all noise, and the app says what to do
    at.radio(key="view").set_value("Explore").run()
    assert any("No clusters: every document is noise" in w.value for w in at.warning)
    ws = apply_settings(at, algorithm="KMeans", k=4)
    assert ws.analysis.n_embeddings_ == 2 and ws.settings.k == 4
    assert all(sorted(set(r.labels.tolist())) == [0, 1, 2, 3] for r in ws.results.values())

    # export: the labeled CSV (same writer as `inbedder cluster`), the summary, the report and the map
    at.radio(key="view").set_value("Export").run()
    assert_clean(at)
    assert set(downloads) >= {"bank_subset.labeled.csv", "bank_subset.clusters.csv", "bank_subset.json",
                              "bank_subset.map_1.html"}
    labeled_path = tmp_path / "labeled.csv"
    labeled_path.write_bytes(as_bytes(downloads["bank_subset.labeled.csv"]))
    labeled = read_csv_export(labeled_path, typed=True)
    assert len(labeled) == n_docs
    assert labeled["id"].tolist() == ws.analysis.corpus.ids
    assert {"answer_1", "cluster_1", "label_1", "description_1", "cluster_2", "label_2"} <= set(labeled.columns)
    np.testing.assert_array_equal(labeled["cluster_1"].to_numpy(), ws.results["What does the customer need?"].labels)
    assert EVIL in labeled["text"].tolist()
    summary_path = tmp_path / "summary.csv"
    summary_path.write_bytes(as_bytes(downloads["bank_subset.clusters.csv"]))
    summary = read_csv_export(summary_path, typed=True)
    assert len(summary) == sum(len(r.clusters) for r in ws.results.values())
    report = json.loads(as_bytes(downloads["bank_subset.json"]))
    assert [i["instruction"] for i in report["instructions"]] == list(ws.results)
    assert report["gold_scores"] and API_KEY not in json.dumps(report)
    page = as_bytes(downloads["bank_subset.map_1.html"]).decode("utf-8")
    assert page.lstrip().lower().startswith("<!doctype html>") and "Plotly.newPlot" in page
    assert "<script>alert(1)" not in page
    assert API_KEY not in displayed(at)

    # back to the map: the choices made there before visiting other views are still in place
    at.radio(key="view").set_value("Explore").run()
    assert_clean(at)
    assert at.selectbox(key="colour_by").value == "intent"
    assert at.text_input(key="doc_search").value == "card"
    at.selectbox(key="colour_by").set_value(None).run()
    for view in ("Export", "Explore"):  # the defaults ("Cluster", "All clusters") come back shown, not blank
        at.radio(key="view").set_value(view).run()
    picker = next(s for s in at.selectbox if s.label == "Show documents of")
    assert shows_a_choice(at.selectbox(key="colour_by")) and at.selectbox(key="colour_by").value is None
    assert shows_a_choice(picker) and picker.value is None


USER_KEY = "sk-user-typed-9876543210-own-key"


def auths(server: ChatServer) -> set[str]:
    return {r["auth"] for r in server.requests}


def test_the_servers_key_goes_only_to_the_configured_endpoint(app_env):
    with ChatServer() as configured, ChatServer() as custom:
        app_env.setenv("OPENAI_API_KEY", API_KEY)
        app_env.setenv("OPENAI_BASE_URL", configured.url)
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert_clean(at)
        assert at.text_input(key="llm_base_url").value == ""  # the configured endpoint is no widget's value
        assert at.text_input(key="llm_api_key").proto.type == at.text_input(key="llm_api_key").proto.PASSWORD
        at.button(key="run").click()
        at.run(timeout=RUN_TIMEOUT)
        assert_clean(at)
        assert configured.requests and auths(configured) == {f"Bearer {API_KEY}"}
        assert at.session_state["workspace"].naming_note == f"llm (gpt-4o-mini at {configured.url})"
        sent_to_configured = len(configured.requests)

        # an analyst types another endpoint and no key: the server's key is not sent there, names are keywords
        at.text_input(key="llm_base_url").input(custom.url)
        ws = apply_settings(at, "apply_naming")
        assert custom.requests == [] and len(configured.requests) == sent_to_configured
        assert ws.naming_note == "keywords (a custom endpoint needs its own API key)"
        assert any("A custom endpoint needs its own API key" in w.value for w in at.sidebar.warning)
        table = frame_by_key(at, "cluster_table_")
        assert table.loc[table["cluster"] >= 0, "named by"].eq("keywords").all()

        # with their own key, typed in the password field, the custom endpoint names the clusters
        at.text_input(key="llm_api_key").input(USER_KEY)
        ws = apply_settings(at, "apply_naming")
        assert custom.requests and auths(custom) == {f"Bearer {USER_KEY}"}
        assert len(configured.requests) == sent_to_configured
        assert ws.naming_note == f"llm (gpt-4o-mini at {custom.url})"
        table = frame_by_key(at, "cluster_table_")
        assert table.loc[table["cluster"] >= 0, "named by"].eq("llm").all()
        assert not at.sidebar.warning

        # back to the configured endpoint (empty box): the server's key goes there, the analyst's stays theirs
        at.text_input(key="llm_base_url").input("")
        apply_settings(at, "apply_naming")
        assert len(configured.requests) > sent_to_configured
        assert auths(configured) == {f"Bearer {API_KEY}"} and auths(custom) == {f"Bearer {USER_KEY}"}
        # neither key is shown or saved with the runs
        assert API_KEY not in displayed(at)
        saved = json.dumps([info.__dict__ for info in runs.list_runs(ws.corpus_hash)])
        assert API_KEY not in saved and USER_KEY not in saved and "llm (gpt-4o-mini at" in saved
        assert USER_KEY not in repr(at.session_state["workspace"])


@pytest.mark.parametrize("where", ["environment", "secrets"])
def test_the_configured_endpoint_is_shown_only_scrubbed(app_env, chat_server, where):
    port = chat_server.httpd.server_address[1]
    configured = f"http://user:secret@127.0.0.1:{port}/v1?api-key=zzz#frag"
    app_env.setenv("OPENAI_API_KEY", API_KEY)  # (a key from secrets would put the word "secrets" on screen)
    at = AppTest.from_file(APP, default_timeout=60)
    if where == "environment":
        app_env.setenv("OPENAI_BASE_URL", configured)
    else:
        at.secrets["OPENAI_BASE_URL"] = configured
    at.run()
    assert_clean(at)
    shown = displayed(at)
    assert f"http://127.0.0.1:{port}/v1 (configured" in shown  # as the placeholder of the endpoint box
    assert "secret" not in shown and "zzz" not in shown and "frag" not in shown
    box = at.text_input(key="llm_base_url")
    assert box.value == "" and "secret" not in box.placeholder and "zzz" not in box.placeholder


def test_rejected_key_falls_back_to_keyword_names_without_showing_the_key(app_env):
    with ChatServer(status=401) as server:
        app_env.setenv("OPENAI_API_KEY", API_KEY)
        app_env.setenv("OPENAI_BASE_URL", server.url)
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.button(key="run").click()
        at.run(timeout=RUN_TIMEOUT)
        assert not at.exception and not at.error
        assert len(server.requests) == 1  # a rejected key stops at once: no retries, no other cluster sent
    warning = at.warning[0].value
    assert "could not name every cluster" in warning
    table = frame_by_key(at, "cluster_table_")
    assert table.loc[table["cluster"] >= 0, "named by"].eq("keywords").all()
    assert API_KEY not in displayed(at)
    assert "Incorrect API key" in displayed(at)  # the reason is shown, scrubbed
    (status,) = [s.label for s in at.status if s.label.startswith("Done in ")]
    assert "names by keywords where the LLM failed (1 of 1 instruction(s)" in status and "names by llm" not in status


def intent_answers(text: str) -> str:
    """A chat model that knows the sample's gold intents: 'card arrival' for a card_arrival query."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    table = {" ".join(t.split()): i.replace("_", " ") for t, i in zip(frame["text"], frame["intent"], strict=True)}
    return table.get(" ".join(text.split()), "unknown")


def test_answers_from_an_llm_show_the_cost_first_then_map_the_answers(app_env):
    with AnswerServer(intent_answers, key=API_KEY) as server:
        app_env.setenv("OPENAI_API_KEY", API_KEY)
        app_env.setenv("OPENAI_BASE_URL", server.url)
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.selectbox(key="model_choice").set_value("Answers from an LLM…").run()
        at.text_input(key="answer_llm_model").set_value("test-model")
        at.number_input(key="llm_batch").set_value(10)
        at.radio(key="naming").set_value("Keywords only")
        at.button(key="apply_naming").click().run()  # the naming form's own Apply (issue 19)
        assert_clean(at)
        at.button(key="run").click().run(timeout=RUN_TIMEOUT)
        assert_clean(at)
        notice = at.info[0].value
        assert "150 documents" in notice and "15 request" in notice and "prompt tokens" in notice
        assert not server.requests  # nothing is sent before the analyst confirms
        at.button(key="confirm_llm_answers").click().run(timeout=RUN_TIMEOUT)
        assert_clean(at)
        assert len(server.requests) == 15 and server.fence_problems == []
    ws = at.session_state["workspace"]
    assert ws.model == "llm:test-model"
    (result,) = ws.results.values()
    texts = frame_with(at, "text", "answer")
    assert all(intent_answers(t) == a for t, a in zip(texts["text"], texts["answer"], strict=True))
    common = frame_with(at, "answer", "count", "share")
    assert common["count"].sum() <= 150 and common["count"].is_monotonic_decreasing
    assert common["answer"].iloc[0] in set(result.answers)
    clusters = frame_by_key(at, "cluster_table_")
    assert clusters["top answers"].str.len().gt(0).all()
    assert API_KEY not in displayed(at) and API_KEY not in json.dumps(ws.fingerprint)
    # run again: every answer is cached, so it runs at once and sends nothing
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    assert len(server.requests) == 15 and not any("request(s) and run" in b.label for b in at.button)


def test_malformed_uploads_show_a_clear_error_and_no_exception(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), "text/csv"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "PNG" in at.error[0].value
    at.file_uploader(key="upload").set_value(("[x](javascript:alert(1)).csv", b"id,text\n", "text/csv"))
    at.run()
    assert not at.exception
    message = at.error[0].value
    assert "header" in message.lower()
    assert "](javascript" not in message and r"\]\(javascript" in message  # Markdown escaped
    at.file_uploader(key="upload").set_value(None)
    at.run()
    assert_clean(at)  # back on the sample


def test_other_formats_and_another_text_column(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("notes.txt", b"first note\n\nsecond note\n  \nthird\n",
                                                "text/plain"))
    at.run()
    assert_clean(at)
    assert any(t.value.startswith("Loaded 3 of 5 rows from 'notes.txt'") and "skipped" in t.value for t in at.text)
    shown = displayed(at)
    assert "What is the main topic" in shown and "What does the customer need" not in shown  # generic examples
    assert selectbox_labelled(at, "Gold label column").options == ["(none)"]
    jsonl = b'{"id": 1, "body": "a long enough body text", "tag": "x"}\n{"id": 2, "body": "another one", "tag": "y"}\n'
    at.file_uploader(key="upload").set_value(("rows.jsonl", jsonl, "application/json"))
    at.run()
    assert_clean(at)
    assert selectbox_labelled(at, "Text column").value == "body"
    selectbox_labelled(at, "Text column").set_value("tag").run()
    # one-letter tags do not look like documents: the app asks first, and says what it saw
    assert not at.exception and len(at.error) == 1
    assert "does not look like documents" in at.error[0].value and "median text is 1 characters" in at.error[0].value
    assert "body" in at.error[0].value  # the columns seen
    assert not [b for b in at.button if b.key == "run"]  # nothing can run on it yet
    confirm = next(c for c in at.checkbox if c.label.startswith("Use 'tag' as the text column anyway"))
    confirm.check().run()
    assert_clean(at)
    assert any(t.value.startswith("Loaded 2 of 2 rows from 'rows.jsonl' (column 'tag', given)") for t in at.text)


def _reviews(fmt: str, n: int = 12) -> bytes:
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [""] * n,
                          "review_body": [f"review number {i}: the order was late" for i in range(n)]})
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    if fmt == "utf16.csv":  # the columns come from the library's reader, which decodes UTF-16 too
        return frame.to_csv(index=False).encode("utf-16")
    if fmt == "jsonl":
        return frame.to_json(orient="records", lines=True).encode("utf-8")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "utf16.csv", "jsonl", "parquet"])
def test_an_empty_guessed_text_column_can_be_replaced_in_the_app(app_env, fmt):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value((f"reviews.{fmt}", _reviews(fmt), "application/octet-stream"))
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "no documents left" in error.value and "'text'" in error.value
    assert "choose another text column in the box above" in error.value and "text\\-column" not in error.value
    picker = selectbox_labelled(at, "Text column")
    assert picker.options == ["id", "text", "review_body"] and picker.value is None
    assert not any(b.key == "run" for b in at.button)  # nothing to run on until a column is chosen

    picker.set_value("review_body").run()
    assert_clean(at)
    assert any(t.value.startswith(f"Loaded 12 of 12 rows from 'reviews.{fmt}' (column 'review_body', given)")
               for t in at.text)
    assert at.button(key="run") is not None
    # choosing the empty column again says so, in the app's words, and keeps the picker
    selectbox_labelled(at, "Text column").set_value("text").run()
    assert not at.exception
    assert "choose another text column in the box above" in at.error[0].value and selectbox_labelled(at, "Text column")


def test_a_single_column_without_documents_is_refused_without_cli_hints(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("blank.csv", b"text\n\n \n\n", "text/csv"))
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "no documents left" in error.value and "text\\-column" not in error.value
    assert "the file holds no text to embed" in error.value  # one column: no other column to choose
    assert not any(s.label == "Text column" for s in at.selectbox)


def test_duplicate_texts_are_kept_and_can_be_skipped_from_the_app(app_env):
    rows = ["text"] + [f"my card {i % 4} was declined" for i in range(12)]  # 4 distinct, 8 repeats
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("dupes.txt", "\n".join(rows[1:]).encode(), "text/plain")).run()
    assert_clean(at)
    assert any(t.value.startswith("Loaded 12 of 12 rows") for t in at.text)
    details = "\n".join(t.value for t in at.text)
    assert "8 duplicate texts kept" in details and "tick 'Skip duplicate texts' to skip them" in details
    assert "drop_duplicates" not in details and "--drop-duplicates" not in details
    at.checkbox(key=next(c.key for c in at.checkbox if c.label == "Skip duplicate texts")).check().run()
    assert_clean(at)
    assert any(t.value.startswith("Loaded 4 of 12 rows") for t in at.text)
    assert "skipped 8 duplicate texts ('Skip duplicate texts' is ticked)" in "\n".join(t.value for t in at.text)


def test_bad_setting_is_reported_not_raised(app_env):
    app_env.setenv("INBEDDER_SAMPLE_ROWS", "lots")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "INBEDDER\\_SAMPLE\\_ROWS" in at.error[0].value and "positive whole number" in at.error[0].value


def test_unavailable_default_model_falls_back_to_the_bundled_inbedder_with_a_note(app_env):
    app_env.setenv("INBEDDER_MODEL", "BrandonZYW/roberta-large-InBedder")  # not in the (offline) hub cache
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert_clean(at)
    assert at.selectbox(key="model_choice").value == BUNDLED_MODEL
    assert any("is not available offline" in i.value and "bundled InBedder" in i.value for i in at.sidebar.info)
    at.selectbox(key="model_choice").set_value("BrandonZYW/roberta-large-InBedder").run()
    warning = at.sidebar.warning[0].value
    assert "cannot be loaded offline" in warning and "local\\-dir" in warning
    # running with it anyway: the loading error is shown, with the way out, and nothing is raised
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)
    assert not at.exception
    assert "could not load model" in at.error[0].value and BUNDLED_MODEL.replace("-", "\\-") in at.error[0].value
    assert "\\-\\-model" not in at.error[0].value and "in the sidebar" in at.error[0].value
    at.button(key="use_bundled").click().run()
    assert_clean(at)
    assert at.selectbox(key="model_choice").value == BUNDLED_MODEL
    assert not at.sidebar.warning
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)  # the bundled model really runs offline
    assert_clean(at)
    assert not at.error
    # another model in the sidebar shows no maps, says where they went; choosing the model again restores them
    computed = at.session_state["workspace"]
    at.selectbox(key="model_choice").set_value("BrandonZYW/roberta-large-InBedder").run()
    assert not at.session_state["workspace"].results
    assert any(BUNDLED_MODEL.replace("-", "\\-") + " are kept" in i.value for i in at.info)
    at.selectbox(key="model_choice").set_value(BUNDLED_MODEL).run()
    assert_clean(at)
    assert at.session_state["workspace"] is computed and computed.results and len(charts(at)) == 1


def test_sessions_are_isolated_and_saved_runs_follow_the_corpus_content(app_env):
    data = upload_csv(120)
    first = AppTest.from_file(APP, default_timeout=60).run()
    first.file_uploader(key="upload").set_value(("mine.csv", data, "text/csv"))
    first.run()
    first.text_area(key="instructions").set_value("How does the customer feel?")
    first.button(key="run").click()
    first.run(timeout=RUN_TIMEOUT)
    assert_clean(first)
    mine = first.session_state["workspace"]
    assert list(mine.results) == ["How does the customer feel?"]
    assert runs_expander(first) == "Earlier runs on this corpus (1)"  # listed in the run that saved it
    assert any(t.value.startswith("Shown below: ") and "How does the customer feel?" in t.value for t in first.text)
    # running the same instruction with the same settings again replaces the saved run, it does not add one
    earlier = mine.run_id
    first.button(key="run").click()
    first.run(timeout=RUN_TIMEOUT)
    assert_clean(first)
    mine = first.session_state["workspace"]
    assert mine.run_id != earlier and [i.run_id for i in runs.list_runs(mine.corpus_hash)] == [mine.run_id]

    # another session: nothing of the first in memory; the sample (other content) lists no runs
    second = AppTest.from_file(APP, default_timeout=60).run()
    assert_clean(second)
    assert not second.session_state["workspace"].results
    assert "mine.csv" in {corpus.source for corpus, _ in first.session_state["corpora"].values()}
    assert "mine.csv" not in {corpus.source for corpus, _ in second.session_state["corpora"].values()}
    assert runs_expander(second) == "Earlier runs on this corpus (0)"
    # the same documents under another file name: the saved run is listed and reopens without computing
    second.file_uploader(key="upload").set_value(("same_documents.csv", data, "text/csv"))
    second.run()
    assert runs_expander(second) == "Earlier runs on this corpus (1)"
    second.button(key="reopen_run").click().run()
    assert_clean(second)
    reopened = second.session_state["workspace"]
    assert reopened.analysis is None  # nothing recomputed, no model touched
    result = reopened.results["How does the customer feel?"]
    np.testing.assert_array_equal(result.labels, mine.results["How does the customer feel?"].labels)
    np.testing.assert_array_equal(result.coords, mine.results["How does the customer feel?"].coords)
    assert len(charts(second)) == 1 and second.text_area(key="instructions").value == "How does the customer feel?"
    # and the first session still has only its own state
    first.run()
    assert first.session_state["workspace"] is not reopened


# --------------------------------------------------------------------------- state rules (issue 19)


def map_traces(at: AppTest) -> dict[str, list[int]]:
    """The explore map's traces: legend name (without the count) -> document indices."""
    (spec,) = charts(at)
    return {t["name"].rsplit(" (", 1)[0]: array(t["customdata"]) for t in spec["data"]}


def test_explore_filters_are_shown_on_the_map_said_and_undone_one_by_one(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    ws = at.session_state["workspace"]
    result = next(iter(ws.results.values()))
    n_docs = len(result.labels)
    (spec,) = charts(at)
    names = [a["text"] for a in spec["layout"]["annotations"]]  # the map names its clusters
    assert names and spec["layout"]["meta"]["names_drawn"] == len(names)
    table = frame_by_key(at, "cluster_table_")
    assert "representative documents" in table.columns
    assert table.loc[table["cluster"] >= 0, "representative documents"].str.len().gt(0).all()

    # a cluster: its documents are listed, brought forward on the map, and one button undoes it
    biggest = int(table.loc[table["cluster"] >= 0].iloc[0]["cluster"])
    members = np.flatnonzero(result.labels == biggest).tolist()
    next(s for s in at.selectbox if s.label == "Show documents of").set_value(biggest).run()
    assert_clean(at)
    focused = [docs for name, docs in map_traces(at).items() if name.startswith("cluster ")]
    assert focused == [members] and len(frame_with(at, "id", "text", "cluster")) == len(members)

    # a search inside the cluster that finds nothing there says why, and how to undo it
    word = next(w for w in ("card", "money", "account", "transfer")
                if any(w in t.lower() for t in ws.analysis.corpus.texts))
    outside = [i for i, t in enumerate(ws.analysis.corpus.texts) if word in t.lower() and i not in members]
    inside = [i for i in members if word in ws.analysis.corpus.texts[i].lower()
              or word in (result.answers[i] or "").lower()]
    at.text_input(key="doc_search").input("zzqx-nothing").run()
    assert any("No document in cluster" in i.value and "zzqx" in i.value for i in at.info)
    at.text_input(key="doc_search").input(word).run()
    assert len(frame_with(at, "id", "text", "cluster")) == len(inside)
    if not inside and outside:
        assert any("in the whole corpus" in i.value for i in at.info)
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("clear_search_"))).click().run()
    assert at.text_input(key="doc_search").value == ""
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("clear_pick_"))).click().run()
    assert_clean(at)
    picker = next(s for s in at.selectbox if s.label == "Show documents of")
    assert picker.value is None and shows_a_choice(picker)  # "All clusters" shown, not an empty box
    assert len(frame_with(at, "id", "text", "cluster")) == n_docs
    assert not [name for name in map_traces(at) if name.startswith(("cluster ", "search hits"))]  # nothing faded

    # a map selection (kept in the session, not in the chart) survives a change of colouring and hover columns
    chosen = members[:7]
    lasso_key = f"lasso_{short_key(ws.run_id, result.instruction)}"  # the view's keys (explore.render)
    at.session_state[lasso_key] = chosen  # what the map's selection callback stores
    at.run()
    assert map_traces(at)["selection"] == chosen and len(frame_with(at, "id", "text", "cluster")) == 7
    at.selectbox(key="colour_by").set_value("intent").run()
    at.multiselect(key="hover_columns").select("id").run()
    assert_clean(at)
    traces = map_traces(at)
    assert traces["selection"] == chosen and len(frame_with(at, "id", "text", "cluster")) == 7
    assert "<i>id:</i>" in json.dumps(charts(at)[0]["data"][0]["text"])  # the picked column is on the hover card
    assert next(s for s in at.selectbox if s.label == "Show documents of").disabled
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("clear_lasso_"))).click().run()
    assert_clean(at)
    assert "selection" not in map_traces(at) and len(frame_with(at, "id", "text", "cluster")) == n_docs


def test_apply_sits_with_its_knobs_and_a_reclustering_shows_its_progress_there(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert {b.key for b in at.sidebar.button} >= {"apply_settings", "apply_naming"}
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)
    before = displayed(at, at.sidebar)
    assert "Re-clustering" not in before
    apply_settings(at, min_cluster_size=6)
    shown = displayed(at, at.sidebar)
    assert "reused the embeddings of" in shown and "Done in " in shown  # under the Apply buttons
    assert not any("reused the embeddings of" in t.value for t in at.main.text)


def test_the_questions_box_keeps_what_was_typed_on_every_upload_and_examples_add_a_line(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert at.text_area(key="instructions").value == "What does the customer need?"
    at.button(key="example_1").click().run()
    assert at.text_area(key="instructions").value == "What does the customer need?\nHow does the customer feel?"
    at.button(key="example_1").click().run()  # once only
    assert at.text_area(key="instructions").value.count("How does the customer feel?") == 1
    kept_text = at.text_area(key="instructions").value
    for name, data in (("one.csv", upload_csv(40)), ("broken.csv", b"\x89PNG\r\n\x1a\n" + bytes(64)),
                       ("two.txt", b"first note\nsecond note\n")):
        at.file_uploader(key="upload").set_value((name, data, "text/csv"))
        at.run()
        if name != "broken.csv":  # (an unreadable file shows its error and no questions box)
            assert at.text_area(key="instructions").value == kept_text, name  # not the new corpus's examples
    at.button(key="example_0").click().run()  # a new upload offers its own examples; a click adds one
    assert at.text_area(key="instructions").value == kept_text + "\nWhat is the main topic?"


def test_a_reopened_run_restores_its_gold_colour_and_hover_columns(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)
    at.selectbox(key="colour_by").set_value("intent").run()
    at.multiselect(key="hover_columns").select("id").run()
    at.button(key="run").click().run(timeout=RUN_TIMEOUT)  # the run records the columns in view
    assert_clean(at)
    ws = at.session_state["workspace"]
    (info,) = runs.list_runs(ws.corpus_hash)
    assert info.settings["view"] == {"gold": "intent", "colour_by": "intent", "hover_columns": ["id"]}
    selectbox_labelled(at, "Gold label column").set_value("(none)").run()
    at.selectbox(key="colour_by").set_value(None).run()
    at.multiselect(key="hover_columns").unselect("id").run()
    assert selectbox_labelled(at, "Gold label column").value == "(none)"
    at.button(key="reopen_run").click().run()
    assert_clean(at)
    assert selectbox_labelled(at, "Gold label column").value == "intent"
    assert at.selectbox(key="colour_by").value == "intent"
    assert at.multiselect(key="hover_columns").value == ["id"]
