"""A loopback OpenAI-compatible chat-completions server that answers questions about fenced documents.

Shared by the LLM-answers tests, the app tests and ``benchmarks/bench_llm_answers.py``. It reads the
documents the way a model would: only between the ``<<<BEGIN DATA>>>`` / ``<<<END DATA>>>`` lines of
the user message (one JSON object per line when batched, the whole block otherwise), answers each
with ``answer(text)``, and obeys an instruction found *outside* the fence ("... answer X"), as a
gullible model would, so a broken fence shows as a wrong answer. It can be scripted to fail
(``failures``: request number -> (status, headers, body); ``raw``: request number -> the raw text of a 200
reply, e.g. garbage), to die after a number of replies, or to
ignore the batched format (``plain``: a small local model). Prompt tokens are counted as characters / 4.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BEGIN, END = "<<<BEGIN DATA>>>", "<<<END DATA>>>"
_OBEY = re.compile(r"(?i)answer\s+([A-Z])\b")


def first_word(text: str) -> str:
    words = text.split()
    return words[0].lower() if words else "nothing"


class AnswerServer:
    """``POST /v1/chat/completions`` on 127.0.0.1; ``requests`` records each (auth header, payload, status)."""

    def __init__(self, answer: Callable[[str], str] = first_word, *, failures: dict[int, tuple] | None = None,
                 die_after: int | None = None, plain: bool = False, key: str | None = None,
                 port: int = 0, raw: dict[int, str] | None = None) -> None:
        self.answer, self.failures, self.die_after, self.plain, self.key = answer, failures or {}, die_after, plain, key
        self.raw = raw or {}
        self.requests: list[dict[str, Any]] = []
        self.answered: list[str] = []  # every document text answered in a 200 reply, in order
        self.replies = 0
        self.dead = False
        self.fence_problems: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with server.lock:
                    number = len(server.requests)
                    server.requests.append({"auth": self.headers.get("Authorization", ""), "json": body})
                    dead = server.dead
                if dead:  # died: the connection drops without a reply
                    self.close_connection = True
                    return
                status, headers, reply = server.respond(number, body, self.headers.get("Authorization", ""))
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # port 0: a free one
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def respond(self, number: int, body: dict[str, Any], auth: str) -> tuple[int, dict[str, str], Any]:
        if self.key is not None and auth != f"Bearer {self.key}":
            given = auth.removeprefix("Bearer ")  # echoes the key, as some providers do
            return 401, {}, {"error": {"message": f"Incorrect API key provided: {given}",
                                       "type": "invalid_request_error", "code": "invalid_api_key"}}
        if number in self.failures:
            status, headers, error = self.failures[number]
            return status, headers, {"error": error}
        if number in self.raw:
            return 200, {}, self.raw[number]
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if user.count(BEGIN) != 1 or user.count(END) != 1 or "DATA" not in system:
            self.fence_problems.append(user)
        block, outside = user, user
        if BEGIN in user and END in user:
            block = user.split(BEGIN + "\n", 1)[1].split("\n" + END, 1)[0]
            outside = user.replace(block, "")
        obey = _OBEY.search(outside)
        batched = "response_format" in body or '"answers"' in system
        if batched:
            documents = [json.loads(line) for line in block.splitlines() if line.strip()]
            texts = [d["text"] for d in documents]
            answers = [obey.group(1) if obey else self.answer(t) for t in texts]
            content = (" / ".join(answers) if self.plain else json.dumps(
                       {"answers": [{"id": d["id"], "answer": a} for d, a in zip(documents, answers, strict=True)]}))
        else:
            texts = [block]
            content = obey.group(1) if obey else self.answer(block)
        with self.lock:
            self.answered.extend([] if self.plain and batched else texts)
            self.replies += 1
            if self.die_after is not None and self.replies >= self.die_after:
                self.dead = True
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        return 200, {}, {
            "id": f"chatcmpl-{number}", "object": "chat.completion", "created": 1_700_000_000,
            "model": body.get("model", "test-model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(content) // 4,
                      "total_tokens": prompt + len(content) // 4},
        }

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]

    def __enter__(self) -> AnswerServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
