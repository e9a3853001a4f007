"""Reading and writing embeddings with their answers (``inbedder embed``'s output).

Parquet, one row per (document, instruction): ``doc_id``, ``instruction_index``
(1-based, in the order given), ``instruction``, ``answer`` (null when the encoder gives
none) and ``embedding`` (fixed-size list of float32). The encoder fingerprint is in
the schema metadata under ``inbedder``. ``.npy`` holds one instruction's
``float32 (n_docs, dim)`` array; its answers and ids go to ``<name>.answers.json``.
A sharded run (``inbedder embed ... --out FOLDER``) writes the same Parquet layout, one file per input shard
(``long_table`` and ``embeddings_metadata`` build it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .encoder import Encoding, Fingerprint
from .errors import ExportError
from .export import atomic_path


class EmbeddingsWriter:
    """``inbedder embed``'s one-file output, written block by block so that the vectors held in memory
    stay bounded whatever the corpus size: Parquet row groups, or the rows of a ``.npy`` opened as a
    memory map. Use it through ``open_embeddings``, which moves the finished file into place.
    """

    def __init__(self, tmp: Path, out: Path, n_docs: int, instructions: Sequence[str], fingerprint: Fingerprint,
                 source: str) -> None:
        self.tmp, self.out, self.n_docs = tmp, out, n_docs
        self.instructions = list(instructions)
        self.meta = {"fingerprint": fingerprint.__dict__, "instructions": self.instructions, "source": source}
        self.npy = out.suffix.lower() == ".npy"
        self.ids: list[str] = []
        self.answers: list[str | None] | None = []
        self._writer: Any = None
        self._array: Any = None
        self.rows = 0
        self.written: list[Path] = []

    def write(self, ids: Sequence[str], results: Sequence[Encoding]) -> None:
        """The next block: its documents' ids and one ``Encoding`` per instruction (in order)."""
        if self.npy:
            vectors = results[0].embeddings
            if self._array is None:
                self._array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32,
                                                        shape=(self.n_docs, vectors.shape[1]))
            self._array[self.rows:self.rows + len(vectors)] = vectors
            self.ids.extend(ids)
            if results[0].answers is None:
                self.answers = None
            elif self.answers is not None:
                self.answers.extend(results[0].answers)
            self.rows += len(vectors)
            return
        import pyarrow.parquet as pq

        for number, (instruction, result) in enumerate(zip(self.instructions, results, strict=True), start=1):
            n = len(result.embeddings)
            table = long_table(list(ids), [number] * n, [instruction] * n, result.answers,
                               result.embeddings).replace_schema_metadata(embeddings_metadata(self.meta))
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.tmp, table.schema)
            self._writer.write_table(table)
        self.rows += len(ids)

    def close(self) -> list[Path]:
        """Finish the file (and the ``.npy``'s sidecar); returns the files written."""
        if self.npy:
            if self._array is None:  # an empty corpus still gets its (0, 0) array
                with open(self.tmp, "wb") as handle:
                    np.save(handle, np.zeros((0, 0), dtype=np.float32))
            else:
                self._array.flush()
                del self._array
            sidecar = self.out.with_suffix(".answers.json")
            with atomic_path(sidecar) as tmp:
                tmp.write_text(json.dumps({**self.meta, "ids": self.ids, "answers": self.answers},
                                          ensure_ascii=False, indent=1), encoding="utf-8")
            return [self.out, sidecar]
        if self._writer is None:  # no documents: an empty table of the layout
            import pyarrow.parquet as pq

            empty = long_table([], [], [], None, np.zeros((0, 1), dtype=np.float32))
            pq.write_table(empty.replace_schema_metadata(embeddings_metadata(self.meta)), self.tmp)
        else:
            self._writer.close()
        return [self.out]


@contextmanager
def open_embeddings(out: str | Path, n_docs: int, instructions: Sequence[str], fingerprint: Fingerprint,
                    source: str) -> Iterator[EmbeddingsWriter]:
    """An ``EmbeddingsWriter`` for ``out`` (``.parquet``: any number of instructions; ``.npy``: one); the
    file appears only when the block completes without error.

    Raises:
        ExportError: unknown suffix, ``.npy`` with several instructions, or a folder that cannot be made.
    """
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".npy"):
        raise ExportError(f"output '{out}' must end in .parquet or .npy")
    if out.suffix.lower() == ".npy" and len(instructions) != 1:
        raise ExportError(f".npy holds one instruction, got {len(instructions)}; write .parquet instead")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create the folder of '{out}': {error.strerror or error}") from error
    with atomic_path(out) as tmp:
        writer = EmbeddingsWriter(tmp, out, n_docs, instructions, fingerprint, source)
        yield writer
        writer.written = writer.close()


def long_table(doc_ids: Any, instruction_index: Any, instruction: Sequence[str],
               answers: Sequence[str | None] | None, embeddings: np.ndarray):
    """The long layout as a ``pyarrow.Table``: one row per (document, instruction); ``doc_ids`` and
    ``instruction_index`` are sequences or arrays (pyarrow, numpy), ``embeddings``
    ``float32 (n_rows, dim)``, ``answers`` ``None`` when the encoder gives none."""
    import pyarrow as pa

    n, dim = embeddings.shape
    flat = pa.array(np.asarray(embeddings, dtype=np.float32).ravel(), type=pa.float32())
    return pa.table({
        "doc_id": pa.array(doc_ids, type=pa.string()),
        "instruction_index": pa.array(instruction_index, type=pa.int32()),
        "instruction": pa.array(instruction, type=pa.string()),
        "answer": pa.array(answers if answers is not None else [None] * n, type=pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
    })


def embeddings_metadata(meta: dict) -> dict[str, str]:
    """The Parquet schema metadata of an embeddings file: ``meta`` (fingerprint, instructions, source)
    as JSON under ``inbedder``."""
    return {"inbedder": json.dumps(meta, ensure_ascii=False)}


def read_embeddings(path: str | Path, instruction_index: int = 1) -> tuple[list[str], np.ndarray, list[str | None]]:
    """``(doc_ids, float32 (n, dim) embeddings, answers)`` of one instruction from a Parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = table.filter(table["instruction_index"].to_numpy() == instruction_index)
    if rows.num_rows == 0:
        raise ExportError(f"'{path}' has no rows for instruction_index={instruction_index}")
    vectors = np.asarray(rows["embedding"].combine_chunks().flatten(), dtype=np.float32)
    return rows["doc_id"].to_pylist(), vectors.reshape(rows.num_rows, -1), rows["answer"].to_pylist()


def embedding_files(path: str | Path) -> list[Path]:
    """The Parquet files of ``path``: the file itself, or every ``*.parquet`` of a folder (``inbedder embed``'s
    shards), sorted.

    Raises:
        ExportError: nothing of that name, or a folder without Parquet files.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise ExportError(f"folder '{path}' holds no .parquet files; pass the --out FOLDER or --out FILE.parquet "
                              "of `inbedder embed`")
        return files
    if not path.is_file():
        raise ExportError(f"embeddings '{path}' not found; pass the --out FOLDER or --out FILE.parquet of "
                          "`inbedder embed`")
    return [path]


READ_BATCH = 16_384
"""Rows of an embeddings file read at a time by ``read_for_corpus``."""


def read_for_corpus(path: str | Path, instruction: str, ids: Sequence[str],
                    batch_rows: int = READ_BATCH) -> tuple[Encoding, dict[str, Any]]:
    """The vectors and answers of ``instruction`` for the documents ``ids`` (in that order), from
    ``inbedder embed``'s output at ``path`` (one Parquet file or a folder of shards), and its metadata
    (``fingerprint``, ``instructions``, ``source``). Rows of other documents are counted in the
    ``Encoding``'s notes, not used. Files are read ``batch_rows`` rows at a time.

    Raises:
        ExportError: no rows for ``instruction`` (naming those there are), or documents of ``ids`` without
            a vector (naming the first few and how to embed them).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = embedding_files(path)
    raw = (pq.read_schema(files[0]).metadata or {}).get(b"inbedder")
    meta = json.loads(raw) if raw else {}
    position = {doc_id: i for i, doc_id in enumerate(ids)}
    n = len(ids)
    vectors: np.ndarray | None = None
    answers: list[str | None] = [None] * n
    seen = np.zeros(n, dtype=bool)
    other = 0
    instructions: set[str] = set()
    # One batch of rows at a time (not whole files), so memory holds the result and one batch, not the file.
    batches = (batch for file in files for batch in pq.ParquetFile(file).iter_batches(
        batch_size=batch_rows, columns=["doc_id", "instruction", "answer", "embedding"]))
    for table in batches:
        instructions.update(table["instruction"].unique().to_pylist())
        table = table.filter(pc.equal(table["instruction"], instruction))
        if table.num_rows == 0:
            continue
        flat = table["embedding"]
        block = np.asarray(flat.flatten(), dtype=np.float32).reshape(table.num_rows, flat.type.list_size)
        if vectors is None:
            vectors = np.zeros((n, block.shape[1]), dtype=np.float32)
        rows = np.fromiter((position.get(d, -1) for d in table["doc_id"].to_pylist()), dtype=np.int64,
                           count=table.num_rows)
        known = rows >= 0
        other += int((~known).sum())
        vectors[rows[known]] = block[known]
        seen[rows[known]] = True
        for row, answer in zip(rows[known].tolist(), table["answer"].filter(known).to_pylist(), strict=True):
            answers[row] = answer
    if vectors is None:
        raise ExportError(f"'{path}' has no embeddings under {instruction!r}; it holds {sorted(instructions)}. "
                          "Ask one of those, or embed this question with `inbedder embed ... -i QUESTION`")
    if not seen.all():
        missing = [ids[i] for i in np.flatnonzero(~seen)[:5]]
        raise ExportError(f"'{path}' has no vector under {instruction!r} for {int((~seen).sum()):,} of the corpus's "
                          f"{n:,} documents (first ids: {missing}); embed them with `inbedder embed FILE -i "
                          f"QUESTION --out FOLDER` (a rerun resumes), or leave --embeddings out to embed here")
    notes = [f"{other:,} embedded row(s) of documents not in this corpus were not used"] if other else []
    encoding = Encoding(vectors, None if all(a is None for a in answers) else answers, n_cached=n, notes=notes)
    return encoding, meta

