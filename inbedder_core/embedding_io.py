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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .encoder import Encoding, Fingerprint
from .errors import ExportError
from .export import atomic_path
from .io.corpus import Corpus


def write_embeddings(out: str | Path, corpus: Corpus, instructions: Sequence[str], results: Sequence[Encoding],
                     fingerprint: Fingerprint) -> list[Path]:
    """Write ``results`` (one per instruction) to ``out``; returns the files written.

    Raises:
        ExportError: unknown suffix, or ``.npy`` with several instructions.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create the folder of '{out}': {error.strerror or error}") from error
    meta = {"fingerprint": fingerprint.__dict__, "instructions": list(instructions), "source": corpus.source}
    if out.suffix.lower() == ".npy":
        if len(results) != 1:
            raise ExportError(f".npy holds one instruction, got {len(results)}; write .parquet instead")
        with atomic_path(out) as tmp, open(tmp, "wb") as handle:
            np.save(handle, results[0].embeddings.astype(np.float32))
        sidecar = out.with_suffix(".answers.json")
        with atomic_path(sidecar) as tmp:
            tmp.write_text(json.dumps({**meta, "ids": corpus.ids, "answers": results[0].answers},
                                      ensure_ascii=False, indent=1), encoding="utf-8")
        return [out, sidecar]
    if out.suffix.lower() != ".parquet":
        raise ExportError(f"output '{out}' must end in .parquet or .npy")
    tables = []
    for number, (instruction, result) in enumerate(zip(instructions, results, strict=True), start=1):
        n = len(result.embeddings)
        tables.append(long_table(corpus.ids, [number] * n, [instruction] * n, result.answers,
                                 result.embeddings))
    table = pa.concat_tables(tables).replace_schema_metadata(embeddings_metadata(meta))
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    return [out]


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
