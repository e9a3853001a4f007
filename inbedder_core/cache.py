"""A persistent, content-addressed embedding cache in SQLite.

The key of one vector is a hash of the encoder's fingerprint (model id, resolved
revision, kind, pattern, pooling, dtype), the instruction and the text's hash, so
any change to any of them misses and nothing is keyed by a folder name. Raw
(un-normalized) vectors are stored; normalization happens on the way out.

One file, ``embeddings.sqlite3`` in the user cache directory (``INBEDDER_CACHE_DIR``
overrides the directory). WAL journaling and one transaction per written chunk: two
app sessions can write at once, and a process killed mid-write leaves the file as
it was after the last committed chunk. ``CachedEncoder`` encodes only the misses,
chunk by chunk, committing each, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .encoder import Encoding, Fingerprint, Progress, char_cap, l2_normalize, truncation_note
from .errors import CacheError
from .settings import default_cache_dir

CACHE_FILE = "embeddings.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    answer TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fingerprints (
    digest TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
"""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def entry_key(fingerprint: Fingerprint, instruction: str, text: str) -> str:
    """The content key of one (encoder, instruction, text) vector."""
    digest = hashlib.sha256()
    for part in (fingerprint.digest(), instruction, text_hash(text)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheStats:
    path: str
    n_vectors: int
    n_fingerprints: int
    size_bytes: int


_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (extended codes keep them in the low byte)


def _is_busy(error: sqlite3.Error) -> bool:
    """Whether ``error`` is SQLite's busy/locked answer (worth retrying), not a real failure."""
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    text = str(error).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


class EmbeddingCache:
    """SQLite store of raw vectors and answers keyed by content.

    Args:
        path: the database file; default ``default_cache_dir() / "embeddings.sqlite3"``.
        timeout: seconds to wait for another writer's lock.

    Raises:
        CacheError: the file cannot be created or is not a cache database.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_cache_dir() / CACHE_FILE
        self.timeout = timeout
        self._local = threading.local()
        self.notes: list[str] = []
        """Lines for the user: a damaged cache file moved aside (``heal``)."""

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (sqlite3.Error, OSError) as error:
            raise self._open_error(error) from error
        try:
            self._prepare(connection)
        except sqlite3.Error as error:
            connection.close()
            if _is_busy(error) or not _is_damage(error):
                raise self._open_error(error) from error
            self.heal(error)
            return self._connection()
        self._local.connection = connection
        return connection

    def heal(self, error: BaseException) -> Path:
        """Move a damaged cache file (and its ``-wal``/``-shm``) aside as ``<name>.corrupt-<UTC time>``
        so the next use starts a fresh one; the one-line note saying where is added to ``notes``.

        Raises:
            CacheError: the file cannot be moved.
        """
        self.close()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, aside.with_name(aside.name + suffix))
        except OSError as move_error:
            raise CacheError(f"the embedding cache at '{self.path}' is damaged ({_short(error)}) and cannot be "
                             f"moved aside: {move_error.strerror or move_error}; delete it (it only holds "
                             "recomputable vectors) or set INBEDDER_CACHE_DIR") from error
        self.notes.append(f"embedding cache was damaged ({_short(error)}): moved to '{aside}', "
                          "a fresh cache was started")
        return aside

    def _open_error(self, error: BaseException) -> CacheError:
        return CacheError(f"cannot open the embedding cache at '{self.path}': {error}; "
                          "set INBEDDER_CACHE_DIR to a writable directory, or delete the file "
                          "if it is corrupt (it only holds recomputable vectors)")

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Switch a new connection to WAL and create the tables, retrying while another process does the same.

        SQLite answers "database is locked" at once, without waiting for the busy
        timeout, when two processes switch a fresh file to WAL or upgrade a read
        to a write at the same moment; so the whole set-up is retried, each try
        waiting at most for what is left of ``timeout``, and the tables are created
        inside ``BEGIN IMMEDIATE``. Errors other than busy/locked are raised at once.

        Raises:
            sqlite3.Error: not a cache database, or still locked after ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            left_ms = max(1, int((deadline - time.monotonic()) * 1000))
            connection.execute(f"PRAGMA busy_timeout={left_ms}")
            try:
                if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute("COMMIT")
                break
            except sqlite3.Error as error:
                if connection.in_transaction:
                    with suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        connection.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def get_many(self, keys: Sequence[str],
                 damaged: list[str] | None = None) -> dict[str, tuple[np.ndarray, str | None]]:
        """The stored ``(float32 vector, answer)`` for each key present and intact; the keys of damaged
        rows (torn, wrong length, not finite) are left out and appended to ``damaged`` when given."""
        found: dict[str, tuple[np.ndarray, str | None]] = {}
        connection = self._connection()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            try:
                rows = connection.execute(
                    f"SELECT key, dim, vector, answer FROM vectors WHERE key IN ({marks})", chunk).fetchall()
            except sqlite3.Error as error:
                if not _is_damage(error):
                    raise CacheError(f"cannot read the embedding cache at '{self.path}': {error}") from error
                self.heal(error)
                return {}
            for key, dim, blob, answer in rows:
                vector = _vector(dim, blob)
                if vector is not None:  # a torn or damaged value is treated as a miss
                    found[key] = (vector, answer if isinstance(answer, str) or answer is None else None)
                elif damaged is not None:
                    damaged.append(key)
        return found

    def put_many(self, fingerprint: Fingerprint, items: Sequence[tuple[str, np.ndarray, str | None]]) -> None:
        """Store ``(key, vector, answer)`` items in one transaction (all or nothing)."""
        if not items:
            return
        rows = [(key, fingerprint.digest(), int(vec.shape[0]), np.asarray(vec, np.float32).tobytes(), answer)
                for key, vec, answer in items]
        try:
            with self._transaction() as connection:
                connection.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)",
                                   (fingerprint.digest(), repr(fingerprint)))
                connection.executemany(
                    "INSERT INTO vectors VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "answer = COALESCE(excluded.answer, vectors.answer)", rows)
        except sqlite3.Error as error:
            raise CacheError(f"cannot write the embedding cache at '{self.path}': {error}; "
                             "check free disk space and permissions, or set INBEDDER_CACHE_DIR") from error

    def stats(self) -> CacheStats:
        connection = self._connection()
        n_vectors = connection.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        n_prints = connection.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0]
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return CacheStats(str(self.path), int(n_vectors), int(n_prints), size)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _vector(dim: object, blob: object) -> np.ndarray | None:
    """The stored vector, or ``None`` when the row is damaged (wrong type, length or non-finite)."""
    if not isinstance(blob, bytes) or not isinstance(dim, int) or dim < 1 or len(blob) != 4 * dim:
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    return vector if bool(np.isfinite(vector).all()) else None


def _is_damage(error: sqlite3.Error) -> bool:
    """Whether ``error`` says the file is not (or no longer) a usable database, as opposed to busy or denied."""
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed"
    text = str(error).lower()
    return "malformed" in text or "not a database" in text or "no such column" in text


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:120]


class SupportsEncode(Protocol):
    """What ``CachedEncoder`` needs of an encoder."""

    @property
    def fingerprint(self) -> Fingerprint: ...

    @property
    def gives_answers(self) -> bool: ...

    def encode(self, texts: Sequence[str], instruction: str, *, batch_size: int | None = ...,
               normalize: bool = ..., answers: bool | None = ..., progress: Progress | None = ...) -> Encoding: ...


class CachedEncoder:
    """An encoder in front of a cache: hits come from SQLite, misses are encoded and stored.

    Duplicate texts are encoded once. Misses are encoded ``chunk_size`` documents at a
    time and each chunk is committed before the next starts, so an interrupted run
    keeps what it finished. ``encode`` has the encoder's signature and return type;
    ``Encoding.n_cached`` / ``n_encoded`` say how many came from where.
    """

    def __init__(self, encoder: SupportsEncode, cache: EmbeddingCache | None = None, chunk_size: int = 256) -> None:
        self.encoder = encoder
        self.cache = cache if cache is not None else EmbeddingCache()
        self.chunk_size = chunk_size

    @property
    def fingerprint(self) -> Fingerprint:
        return self.encoder.fingerprint

    @property
    def gives_answers(self) -> bool:
        return self.encoder.gives_answers

    def closeness_encoder(self) -> Any:
        """The encoder's ``closeness_encoder()`` behind the same cache (this one when it has none)."""
        other = getattr(self.encoder, "closeness_encoder", None)
        inner = other() if other is not None else self.encoder
        return self if inner is self.encoder else CachedEncoder(inner, self.cache, self.chunk_size)

    def shares_prefix(self, instructions: Sequence[str]) -> bool:
        """The encoder's ``shares_prefix`` (``False`` when it has none): misses are then encoded together."""
        share = getattr(self.encoder, "shares_prefix", None)
        return bool(share is not None and share(instructions))

    def encode(
        self,
        texts: Sequence[str],
        instruction: str,
        *,
        batch_size: int | None = None,
        normalize: bool = True,
        answers: bool | None = None,
        progress: Progress | None = None,
    ) -> Encoding:
        """Same contract as ``Encoder.encode``; see the class docstring for caching."""
        return self.encode_many(texts, [instruction], batch_size=batch_size, normalize=normalize, answers=answers,
                                progress=progress)[0]

    def encode_many(
        self,
        texts: Sequence[str],
        instructions: Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = True,
        answers: bool | None = None,
        progress: Progress | None = None,
    ) -> list[Encoding]:
        """``encode`` under each instruction, one ``Encoding`` each, only the misses computed.

        Texts missing under the same two or more instructions go to the encoder's ``encode_many`` when
        it ``shares_prefix`` for them (a causal encoder then runs each document's prefix once); the rest
        are encoded per instruction. ``progress(done, total)`` counts (document, instruction) pairs.
        """
        texts = [str(t) for t in texts]
        instructions = list(instructions)
        if not texts:
            return [self.encoder.encode([], instruction, answers=answers) for instruction in instructions]
        want_answers = self.encoder.gives_answers if answers is None else bool(answers)
        looks = [self._lookup(texts, instruction, want_answers) for instruction in instructions]
        missing: dict[int, list[int]] = {}  # first index of a missing text -> the instructions it misses under
        for q, look in enumerate(looks):
            first_index: dict[str, int] = {}
            for i, key in enumerate(look.keys):
                if key not in look.stored:
                    first_index.setdefault(key, i)
            for i in first_index.values():
                missing.setdefault(i, []).append(q)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, questions in sorted(missing.items()):
            groups.setdefault(tuple(questions), []).append(i)
        total = len(texts) * len(instructions)
        done = sum(look.n_hits for look in looks)
        if progress is not None:
            progress(done, total)
        for questions, documents in groups.items():
            together = len(questions) > 1 and self.shares_prefix([instructions[q] for q in questions])
            # longest first, as the encoder orders a batch: each chunk then holds texts of like length, so its
            # batches pad little (chunks in corpus order took 9% longer on the sample with inbedder-e5)
            documents = sorted(documents, key=lambda i: -len(texts[i]))
            for start in range(0, len(documents), self.chunk_size):
                report = None if progress is None else (lambda covered, base=done: progress(base + covered, total))
                done += self._fill(texts, instructions, looks, questions, documents[start:start + self.chunk_size],
                                   together=together, batch_size=batch_size, want_answers=want_answers, report=report)
        cap = char_cap(getattr(self.encoder, "max_length", 512))
        n_truncated = sum(len(t) > cap for t in texts)  # all of them, cached or not: the same answer every run
        return [look.encoding(want_answers, normalize, n_truncated, cap) for look in looks]

    def _lookup(self, texts: list[str], instruction: str, want_answers: bool) -> _Lookup:
        """The keys of ``texts`` under ``instruction`` and the intact vectors the cache holds for them."""
        keys = [entry_key(self.encoder.fingerprint, instruction, t) for t in texts]
        n_notes = len(self.cache.notes)
        torn: list[str] = []
        stored = self.cache.get_many(sorted(set(keys)), torn)
        notes: list[str] = list(self.cache.notes[n_notes:])
        stored, damaged = _consistent(stored, getattr(self.encoder, "dimension", None))
        damaged += len(torn)
        if damaged:
            notes.append(f"{damaged:,} cached vector(s) were damaged (wrong length or not finite) and were "
                         "encoded again")
        if want_answers:
            stored = {k: v for k, v in stored.items() if v[1] is not None}
        return _Lookup(keys, stored, notes, damaged, Counter(keys), sum(1 for k in keys if k in stored))

    def _fill(self, texts: list[str], instructions: list[str], looks: list[_Lookup], questions: tuple[int, ...],
              chunk: list[int], *, together: bool, batch_size: int | None, want_answers: bool,
              report: Callable[[int], None] | None) -> int:
        """Encode the texts at ``chunk`` under ``questions`` and commit them in one transaction; returns the
        (document, instruction) positions they cover. ``report(covered)`` as batches finish."""
        weights = [[looks[q].counts[looks[q].keys[i]] for i in chunk] for q in questions]
        chunk_texts = [texts[i] for i in chunk]
        asked = [instructions[q] for q in questions]
        options = dict(batch_size=batch_size, normalize=False, answers=want_answers)
        if together:
            share = len(questions)
            results = self.encoder.encode_many(  # type: ignore[attr-defined]
                chunk_texts, asked, **options,
                progress=None if report is None else (lambda d, _t: report(sum(sum(w[:d // share]) for w in weights))))
        else:
            results = []
            for n, (instruction, w) in enumerate(zip(asked, weights, strict=True)):
                base = sum(sum(x) for x in weights[:n])
                inner = None if report is None else (lambda d, _t, b=base, w=w: report(b + sum(w[:d])))
                results.append(self.encoder.encode(chunk_texts, instruction, **options, progress=inner))
        cap = char_cap(getattr(self.encoder, "max_length", 512))
        items = []
        for q, result in zip(questions, results, strict=True):
            look = looks[q]
            said = truncation_note(result.n_truncated, cap) if result.n_truncated else None
            look.notes.extend(n for n in result.notes if n not in look.notes and n != said)
            look.n_encoded += len(chunk)
            for row, i in enumerate(chunk):
                answer = result.answers[row] if result.answers is not None else None
                items.append((look.keys[i], result.embeddings[row], answer))
                look.stored[look.keys[i]] = (result.embeddings[row], answer)
        self.cache.put_many(self.encoder.fingerprint, items)
        return sum(sum(w) for w in weights)


@dataclass
class _Lookup:
    """One instruction's keys, the vectors found (and then encoded) for them, and what to tell the user."""

    keys: list[str]
    stored: dict[str, tuple[np.ndarray, str | None]]
    notes: list[str]
    n_damaged: int
    counts: Counter[str]
    n_hits: int
    n_encoded: int = 0

    def encoding(self, want_answers: bool, normalize: bool, n_truncated: int, cap: int) -> Encoding:
        embeddings = np.stack([self.stored[k][0] for k in self.keys]).astype(np.float32)
        if normalize:
            embeddings = l2_normalize(embeddings)
        found = [self.stored[k][1] or "" for k in self.keys] if want_answers else None
        notes = list(self.notes)
        if n_truncated:
            notes.append(truncation_note(n_truncated, cap))
        return Encoding(embeddings, found, n_encoded=self.n_encoded, n_cached=self.n_hits, notes=notes,
                        n_truncated=n_truncated, n_damaged=self.n_damaged)


def _consistent(stored: dict[str, tuple[np.ndarray, str | None]],
                dimension: object) -> tuple[dict[str, tuple[np.ndarray, str | None]], int]:
    """``(hits, n_damaged)``: hits whose length is the encoder's dimension (when it tells one, else the
    most common length among the hits); the others are damaged rows, treated as misses."""
    if not stored:
        return stored, 0
    if isinstance(dimension, int) and dimension > 0:
        want = dimension
    else:
        want = Counter(len(v) for v, _ in stored.values()).most_common(1)[0][0]
    kept = {k: v for k, v in stored.items() if len(v[0]) == want}
    return kept, len(stored) - len(kept)
