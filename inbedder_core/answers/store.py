"""The answers cache of the LLM-answers engine: SQLite (WAL), keyed by (endpoint, model, instruction,
text hash), one transaction per received reply, so a re-run or a crash sends only the misses.

A sibling of the embedding cache, ``answers.sqlite3`` in the same directory (``INBEDDER_CACHE_DIR``).
It holds answers and the scrubbed endpoint URL, never a key.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..cache import text_hash
from ..errors import CacheError
from ..settings import default_cache_dir

ANSWERS_FILE = "answers.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now'))
) WITHOUT ROWID
"""


def answer_key(endpoint: str, model: str, instruction: str, text: str) -> str:
    """The content key of one answer: endpoint, model, instruction and the text's hash."""
    digest = hashlib.sha256()
    for part in (endpoint, model, instruction, text_hash(text)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


class AnswerStore:
    """SQLite store of LLM answers; one connection per thread, writes serialised in the process.

    Args:
        path: the database file; default ``default_cache_dir() / "answers.sqlite3"``.
        timeout: seconds to wait for another process's write lock.

    Raises:
        CacheError: the file cannot be created, or is not an answers database.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_cache_dir() / ANSWERS_FILE
        self.timeout = timeout
        self._local = threading.local()
        self._write_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                             check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(_SCHEMA)
            except (sqlite3.Error, OSError) as error:
                raise CacheError(f"cannot open the answers cache at '{self.path}': {error}; set "
                                 "INBEDDER_CACHE_DIR to a writable directory, or delete the file if it is "
                                 "corrupt (its answers are asked again)") from error
            self._local.connection = connection
        return connection

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored answer of each key present."""
        found: dict[str, str] = {}
        connection = self._connection()
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            try:
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk).fetchall()
            except sqlite3.Error as error:
                raise CacheError(f"cannot read the answers cache at '{self.path}': {error}") from error
            found.update(rows)
        return found

    def put_many(self, endpoint: str, model: str, items: Iterable[tuple[str, str]]) -> None:
        """Store ``(key, answer)`` items in one transaction (all or nothing); safe from any thread."""
        rows = [(key, endpoint, model, answer) for key, answer in items]
        if not rows:
            return
        with self._write_lock:
            connection = self._connection()
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("INSERT OR REPLACE INTO answers (key, endpoint, model, answer) "
                                       "VALUES (?, ?, ?, ?)", rows)
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise CacheError(f"cannot write the answers cache at '{self.path}': {error}; check free disk "
                                 "space and permissions, or set INBEDDER_CACHE_DIR") from error

    def count(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
