"""Stability under rewording (``inbedder_core.stability``) on hand-computed cases."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from inbedder_core.errors import InBedderError
from inbedder_core.name.client import make_client
from inbedder_core.results import NOISE, ClusterSummary, InstructionResult
from inbedder_core.stability import (
    TEMPLATES,
    UNSTABLE_FLAG,
    badge,
    best_match_jaccard,
    compare_rewordings,
    document_columns,
    nearest_neighbours,
    neighbour_keeping,
    propose_rewordings,
    template_rewordings,
)


def result(labels, instruction="q") -> InstructionResult:
    labels = np.asarray(labels, dtype=np.int64)
    ids, counts = np.unique(labels, return_counts=True)
    clusters = [ClusterSummary(int(i), int(n), n / len(labels), f"c{i}", "", [], [], "keywords")
                for i, n in zip(ids, counts, strict=True)]
    return InstructionResult(instruction, None, labels, labels, np.zeros((len(labels), 2), np.float32), clusters)


def test_best_match_jaccard_by_hand():
    a = [0, 0, 0, 0, 1, 1, -1]
    b = [5, 5, 5, 6, 6, 6, 6]
    # cluster 0 = {0,1,2,3}; b's 5 = {0,1,2}: 3/4; b's 6 = {3,4,5,6}: 1/7 -> 5 at 0.75
    # cluster 1 = {4,5}; b's 6: 2/4 = 0.5
    assert best_match_jaccard(np.array(a), np.array(b)) == {0: (5, 0.75), 1: (6, 0.5)}


def test_noise_is_never_a_match():
    assert best_match_jaccard(np.array([0, 0, 1]), np.array([-1, -1, -1])) == {0: (NOISE, 0.0), 1: (NOISE, 0.0)}
    with pytest.raises(InBedderError, match="cannot be compared"):
        best_match_jaccard(np.array([0, 1]), np.array([0]))


def test_identical_rewordings_give_one_everywhere():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 8)).astype(np.float32)
    labels = np.repeat([0, 1, 2, -1], 10)
    report = compare_rewordings([result(labels), result(labels, "q2"), result(labels, "q3")], [emb, emb, emb], k=5)
    assert [c.jaccard for c in report.clusters] == [1.0, 1.0, 1.0]
    assert {c.badge for c in report.clusters} == {"stable"}
    assert np.allclose(report.ari.values, 1.0) and np.allclose(report.nmi.values, 1.0)
    assert np.allclose(report.document_share, 1.0)
    assert report.mean_pairwise() == {"ari": 1.0, "nmi": 1.0}
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["document_share_mean"] == 1.0 and len(payload["document_share"]) == 40


def test_a_split_cluster_is_flagged_and_averaged():
    emb = np.eye(8, dtype=np.float32).repeat(2, axis=0)
    base = np.array([0] * 8 + [1] * 8)
    split = np.array([0] * 4 + [2] * 4 + [1] * 8)  # cluster 0 split in two halves: Jaccard 4/8
    shuffled = np.array([3, 4] * 8)  # every cluster mixed: 0 vs 3 -> 4/(8+8-4)= 1/3
    report = compare_rewordings([result(base), result(split), result(shuffled)], [emb, emb, emb], k=1)
    by_id = {c.cluster_id: c for c in report.clusters}
    assert by_id[0].matches == [(0, 0.5), (3, pytest.approx(1 / 3))]
    assert by_id[0].jaccard == pytest.approx((0.5 + 1 / 3) / 2) and by_id[0].badge == "shaky"
    assert by_id[1].jaccard == pytest.approx((1 + 1 / 3) / 2)
    assert badge(0.39) == "unstable" and badge(0.4) == "shaky" and badge(0.7) == "stable"
    unstable = compare_rewordings([result(base), result(shuffled)], [emb, emb], k=1)
    assert {c.flag for c in unstable.clusters} == {UNSTABLE_FLAG}
    columns = document_columns(unstable)
    assert list(columns["cluster_stability"]) == ["unstable"] * 16


def test_neighbour_keeping_counts_rewordings_that_keep_neighbours():
    # four points on a line: neighbours of 0 are 1, of 3 are 2; a rewording swapping ends breaks some
    base = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32)
    same = base.copy()
    swapped = base[[2, 1, 0, 3]]  # doc 0 now sits by doc 3, doc 2 by doc 1
    assert nearest_neighbours(base, k=1)[:, 0].tolist() == [1, 0, 3, 2]
    share = neighbour_keeping(base, [same, swapped], k=1)
    assert share.tolist() == [0.5, 0.5, 0.5, 0.5]
    assert neighbour_keeping(base, [], k=1).tolist() == [1.0] * 4


def test_template_rewordings_follow_the_paper_style():
    out = template_rewordings("What does the customer need?")
    assert out == ["I'm curious, what does the customer need?", "Could you tell me, what does the customer need?",
                   "Can you inform me: what does the customer need?"]
    assert len(template_rewordings("Q?", n=len(TEMPLATES))) == len(TEMPLATES)
    with pytest.raises(InBedderError, match="empty"):
        template_rewordings("  ")


class _Chat(BaseHTTPRequestHandler):
    reply = ("1. Could you say what the customer wants?\n- What is it the customer needs?\n\n"
             "What does the customer need?")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = 200 if "/v1/" in self.path else 500
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.reply}}]})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_propose_rewordings_through_a_real_client():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        client = make_client(api_key="sk-test", base_url=url + "/v1")
        assert propose_rewordings(client, "m", "What does the customer need?") == [
            "Could you say what the customer wants?", "What is it the customer needs?"]
        broken = make_client(api_key="sk-test", base_url=url + "/broken")
        with pytest.raises(InBedderError, match="could not propose"):
            propose_rewordings(broken, "m", "What does the customer need?")
    finally:
        server.shutdown()
