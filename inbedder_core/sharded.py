"""Embedding a corpus of many rows into Parquet shards, resumably, in this process or on a Ray cluster.

``embed_shards(inputs, out, instructions, ...)`` reads CSV or Parquet files (a file, a folder or a glob
of shards), embeds every row under every instruction and writes one output file per input file in
``embedding_io``'s long layout (``doc_id, instruction_index, instruction, answer, embedding``), with
``manifest.json`` beside them. What Ray gives and what is ours:

- With ``ray=RayOptions(...)``, Ray Data reads the inputs and runs ``BatchEmbedder`` (``map_batches``
  with a callable class) in a pool of actors, one model load per actor; a dead actor is restarted and
  its batch retried (Ray Data's actor defaults, ``max_restarts=-1``, ``max_task_retries=-1``), and
  results keep the input order.
  Without it the same ``BatchEmbedder`` runs here on pyarrow batches.
- This process streams the results to one temporary file per input file, renamed into place when the
  file's last row has arrived and then recorded in the manifest; a rerun skips the files the manifest
  records (same input size and mtime, same job, same encoder fingerprint), so a run stopped by SIGINT resumes with the
  unfinished shards only, and the embedding cache (filled by every worker as it goes) spares even
  their finished rows. Memory holds the ids and a bounded write buffer, never all the vectors.
- The ids of every input row are read first (pyarrow, apart from Ray) and must be unique; at the end
  every shard is read back and every id must appear exactly once per instruction.

Over the ~600-line guide: inputs, the batch encoder, the manifest and the writer are one run's parts and
are tested as one; split it by those headings when it grows.
"""

from __future__ import annotations

import glob as globbing
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CacheError, CorpusError, ExportError, InBedderError
from .io.load import TEXT_COLUMN_NAMES

MANIFEST = "manifest.json"
FORMATS = {".csv": "csv", ".parquet": "parquet"}
DEFAULT_ROWS_PER_CALL = 2048
"""Rows handed to one encoder call (Ray Data's ``map_batches`` batch) by default. The encoder sorts a call's
texts by length before batching them, so short calls pad more: at 64 rows per call the in-process path
ran 2-3x slower than the one-file path on BANKING77 (``benchmarks/bench_scale.py``)."""
_WRITE_ROWS = 16_384  # output rows buffered per open shard before a Parquet row group is written
_SHOWN = 10  # ids named in an error


@dataclass(frozen=True)
class EncoderSpec:
    """How every worker loads its encoder (``load_encoder``'s arguments) and whether it uses the cache.

    ``cache_dir``: the folder of the embedding cache each worker opens (default: the worker's own
    ``INBEDDER_CACHE_DIR`` or user cache folder); ``use_cache=False`` reads and writes none.
    """

    model: str | None = None
    kind: str | None = None
    device: str | None = None
    dtype: str | None = None
    pattern: str | None = None
    max_length: int = 512
    use_cache: bool = True
    cache_dir: str | None = None
    pool_prompt: bool = False  # kept out of ``identity``: the workers' fingerprint carries the pooling

    def identity(self) -> dict[str, Any]:
        """The encoder as asked for (``auto`` as unset), kept in the manifest: a rerun asking for another is
        refused before any work. The workers' fingerprint is checked too, once the first batch is in."""
        return {"model": self.model, "kind": self.kind, "pattern": self.pattern, "max_length": self.max_length,
                "dtype": None if self.dtype in (None, "auto") else self.dtype}

    def load(self) -> tuple[Any, str | None]:
        """``(encoder, note)``: the encoder behind the cache; when the cache cannot be opened on this
        worker, the bare encoder and a note saying so (the run goes on without it).

        Raises:
            ModelError: as ``load_encoder``.
        """
        from .cache import CACHE_FILE, CachedEncoder, EmbeddingCache
        from .encoder import load_encoder

        encoder = load_encoder(self.model, kind=self.kind, device=self.device, dtype=self.dtype,  # type: ignore[arg-type]
                               pattern=self.pattern, max_length=self.max_length, pool_prompt=self.pool_prompt)
        if not self.use_cache:
            return encoder, None
        cache = EmbeddingCache(Path(self.cache_dir) / CACHE_FILE if self.cache_dir else None)
        try:
            cache.stats()
        except CacheError as error:
            return encoder, f"a worker could not reach the embedding cache ({error}); it embeds without it"
        return CachedEncoder(encoder, cache), None


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run is.

    Attributes:
        address: the cluster (``ray start --head`` prints it; ``auto`` finds a local one); ``None``
            starts Ray in this process unless it is already started (or ``RAY_ADDRESS`` is set).
        actors: encoder actors (default: one per ``num_gpus_per_actor`` share of the cluster's GPUs, or
            one per ``num_cpus_per_actor`` CPUs but one).
        num_gpus_per_actor: GPUs each actor holds; 0.5 puts two actors on one GPU.
        num_cpus_per_actor: CPUs each actor holds.
    """

    address: str | None = None
    actors: int | None = None
    num_gpus_per_actor: float = 0.0
    num_cpus_per_actor: float = 1.0


@dataclass
class ShardReport:
    """What ``embed_shards`` did. ``seconds`` and ``docs_per_second`` cover this run's embedding
    (reading, embedding and writing the unfinished shards), not the id check before it."""

    out: Path
    files: list[Path]
    n_documents: int = 0
    n_rows: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    n_embedded: int = 0
    n_encoded: int = 0
    n_cached: int = 0
    n_no_text: int = 0
    seconds: float = 0.0
    actors: int | None = None
    fingerprint: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def docs_per_second(self) -> float:
        return self.n_embedded / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line for the user."""
        where = f"on Ray with {self.actors} actor(s)" if self.actors else "in this process"
        return (f"{self.n_embedded:,} document(s) embedded {where} in {self.seconds:.1f} s "
                f"({self.docs_per_second:,.1f} docs/s; {self.n_encoded:,} encoded, {self.n_cached:,} from cache); "
                f"{self.shards_written} shard(s) written, {self.shards_skipped} already finished and skipped; "
                f"{self.n_documents:,} documents in '{self.out}'")


# --- inputs -------------------------------------------------------------------------------------------


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The input files, sorted and absolute: files as given, a folder's ``.csv``/``.parquet`` files at any
    depth (hidden ones and ``_``-prefixed ones left out), a glob's matches.

    Raises:
        CorpusError: a path that does not exist, nothing found, an unsupported suffix, or CSV and Parquet mixed.
    """
    found: set[Path] = set()
    for item in map(str, inputs):
        path = Path(item)
        if any(ch in item for ch in "*?["):
            matches = [Path(p) for p in globbing.glob(item, recursive=True) if Path(p).is_file()]
            if not matches:
                raise CorpusError(f"no file matches {item!r}; check the pattern (quote it so the shell leaves it)")
            found.update(matches)
        elif path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                         and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
        elif path.is_file():
            found.add(path)
        else:
            raise CorpusError(f"input '{item}' does not exist; pass a file, a folder or a quoted glob of shards")
    if not found:
        raise CorpusError(f"no .csv or .parquet file found in {list(map(str, inputs))}")
    files = sorted(p.resolve() for p in found)
    kinds = {p.suffix.lower() for p in files}
    if not kinds <= set(FORMATS):
        bad = next(p for p in files if p.suffix.lower() not in FORMATS)
        raise CorpusError(f"'{bad}' is not .csv or .parquet; a sharded run reads CSV or Parquet shards "
                          "(convert it, or embed it alone with --out FILE.parquet)")
    if len(kinds) > 1:
        raise CorpusError("the inputs mix .csv and .parquet files; embed each kind into its own --out folder")
    return files


def _format(files: Sequence[Path]) -> str:
    return FORMATS[files[0].suffix.lower()]


def _column_names(path: Path, fmt: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            return list(pq.read_schema(path).names)
        return list(pacsv.open_csv(path, parse_options=_csv_parsing(False)).schema.names)
    except (pa.ArrowException, OSError) as error:
        raise CorpusError(f"cannot read '{path}' as {fmt}: {error}") from error


def choose_columns(path: Path, text_column: str | None, id_column: str | None) -> tuple[str, str | None]:
    """``(text column, id column or None for row numbers)`` from the first input file's header.

    The text column is the one named, else one named like ``TEXT_COLUMN_NAMES``; the id column the one
    named, else a column named ``id`` (any case).

    Raises:
        CorpusError: a named column is missing, or no column looks like text.
    """
    names = _column_names(path, FORMATS[path.suffix.lower()])
    for option, name in (("--text-column", text_column), ("--id-column", id_column)):
        if name is not None and name not in names:
            raise CorpusError(f"column {name!r} not found in '{path}'; available: {names}; pass {option}", names)
    if text_column is None:
        lowered = {n.lower(): n for n in reversed(names)}
        text_column = next((lowered[w] for w in TEXT_COLUMN_NAMES if w in lowered), None)
        if text_column is None:
            raise CorpusError(f"no column of '{path}' is named like a text column ({list(TEXT_COLUMN_NAMES)}); "
                              f"available: {names}; pass --text-column", names)
    if id_column is None:
        id_column = next((n for n in names if n.lower() == "id" and n != text_column), None)
    if "path" in (text_column, id_column):
        raise CorpusError("a column named 'path' cannot be the text or id column of a sharded run (Ray Data adds "
                          "its own 'path'); rename it in the shards")
    return text_column, id_column


def _csv_parsing(blank_lines: bool) -> Any:
    """pyarrow's CSV parse options as ``load_corpus`` reads a CSV: quoted fields may hold line breaks, and with
    ``blank_lines`` a blank line is a row (of empty cells), so row-number ids count it as ``load_corpus`` does.
    Without it (an id column names the rows) blank lines are left out: they hold no id and no text."""
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=not blank_lines)


def _string_batches(path: Path, fmt: str, columns: list[str], rows: int, blank_lines: bool) -> Iterator[Any]:
    """The file's ``columns`` as strings, in ``pyarrow.Table`` slices of at most ``rows`` rows, in order; a CSV's
    blank lines are rows when ``blank_lines`` (``_csv_parsing``)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            source: Iterable[Any] = pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns)
        else:
            convert = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns})
            source = pacsv.open_csv(path, convert_options=convert, parse_options=_csv_parsing(blank_lines))
        for batch in source:
            table = pa.Table.from_batches([batch]).select(columns)
            table = table.cast(pa.schema([(c, pa.string()) for c in columns]))
            for start in range(0, table.num_rows, rows):
                yield table.slice(start, rows)
    except (pa.ArrowException, OSError, KeyError) as error:
        raise CorpusError(f"cannot read columns {columns} of '{path}' as {fmt}: {error}") from error


def read_ids(files: Sequence[Path], text_column: str, id_column: str | None) -> list[list[str]]:
    """The id of every row of every file, in order; row numbers (1 = first data row, as ``load_corpus``
    gives) prefixed with the file's path below the inputs' common folder when there are several files.

    Raises:
        CorpusError: a file cannot be read or lacks a column; an id is missing, empty or repeated.
    """
    fmt = _format(files)
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    out: list[list[str]] = []
    seen: dict[str, Path] = {}
    repeated: list[str] = []
    for path in files:
        ids: list[str] = []
        for table in _string_batches(path, fmt, [id_column or text_column], 65_536, blank_lines=id_column is None):
            if id_column is None:
                ids.extend(range(len(ids) + 1, len(ids) + table.num_rows + 1))  # type: ignore[arg-type]
                continue
            values = table.column(0).to_pylist()
            for row, value in enumerate(values, start=len(ids) + 1):
                if value is None or not value.strip():
                    raise CorpusError(f"id column {id_column!r} of '{path}' has a missing or empty value (row "
                                      f"{row:,}); ids must be unique and non-empty; fix it, or pass another "
                                      "--id-column")
            ids.extend(values)
        if id_column is None:
            prefix = f"{path.relative_to(root).as_posix()}:" if len(files) > 1 else ""
            ids = [f"{prefix}{n}" for n in ids]
        for value in ids:
            if value in seen and len(repeated) < _SHOWN:
                repeated.append(f"{value!r} ('{seen[value].name}' and '{path.name}')")
            seen.setdefault(value, path)
        out.append(ids)
    if repeated:
        raise CorpusError(f"ids repeat across or within the inputs: {', '.join(repeated)}; ids must be unique; "
                          "fix them, or pass --id-column with a unique column")
    return out


# --- the encoder on a batch ---------------------------------------------------------------------------


class BatchEmbedder:
    """One encoder, loaded once, embedding batches under every instruction: Ray Data's ``map_batches``
    callable class, also called directly without Ray.

    A call takes a ``pyarrow.Table`` with ``path``, the text column and (when given) the id column, and
    returns one row per (document, instruction), document after document, in the long layout's columns
    plus ``path`` and ``_stats`` (on the batch's first row, JSON: documents encoded, from the cache,
    without text; the fingerprint; notes). A missing text is embedded as the empty text and counted.
    """

    def __init__(self, spec: EncoderSpec, instructions: Sequence[str], text_column: str, id_column: str | None,
                 batch_size: int | None = None, answers: bool | None = None) -> None:
        self.encoder, note = spec.load()
        self.notes = [note] if note else []
        self.instructions = list(instructions)
        self.text_column = text_column
        self.id_column = id_column
        self.batch_size = batch_size
        self.answers = answers

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from .embedding_io import long_table

        n, k = batch.num_rows, len(self.instructions)
        texts = ["" if t is None else str(t) for t in batch.column(self.text_column).to_pylist()]
        vectors, answers, stats = [], [], {"documents": n, "encoded": 0, "cached": 0, "notes": self.notes,
                                           "no_text": sum(1 for t in texts if not t.strip())}
        self.notes = []  # said once per worker
        for instruction in self.instructions:
            result = self.encoder.encode(texts, instruction, batch_size=self.batch_size, answers=self.answers)
            vectors.append(result.embeddings)
            answers.append(result.answers)
            stats["encoded"] += result.n_encoded
            stats["cached"] += result.n_cached
            stats["notes"] += [note for note in result.notes if note not in stats["notes"]]
        stats["fingerprint"] = self.encoder.fingerprint.__dict__
        order = pa.array(np.repeat(np.arange(n), k))
        ids = (batch.column(self.id_column).cast(pa.string()).take(order) if self.id_column
               else pa.nulls(n * k, pa.string()))
        said = None if any(a is None for a in answers) else [a[i] for i in range(n) for a in answers]
        table = long_table(ids, np.tile(np.arange(1, k + 1), n), self.instructions * n, said,
                           np.stack(vectors, axis=1).reshape(n * k, -1))
        table = table.append_column("path", batch.column("path").take(order))
        return table.append_column("_stats", pa.array([json.dumps(stats)] + [None] * (n * k - 1), pa.string()))


# --- where batches come from --------------------------------------------------------------------------


def _local_batches(files: Sequence[Path], columns: list[str], rows: int, embedder: BatchEmbedder,
                   numbered: bool) -> Iterator[Any]:
    """Each file's batches embedded in this process; ``numbered``: the rows have no id column, so a CSV's blank
    lines are rows too (``_csv_parsing``)."""
    import pyarrow as pa

    fmt = _format(files)
    for path in files:
        for table in _string_batches(path, fmt, columns, rows, blank_lines=numbered):
            yield embedder(table.append_column("path", pa.array([str(path)] * table.num_rows, pa.string())))


def _ray_batches(files: Sequence[Path], columns: list[str], rows: int, embedder_args: tuple,
                 options: RayOptions, report: ShardReport, quiet: bool, numbered: bool) -> Iterator[Any]:
    """Ray Data: read, ``map_batches(BatchEmbedder)`` on a pool of actors, results in input order; ``numbered``
    (rows without an id column) as for ``_local_batches``."""
    import pyarrow as pa

    try:
        import ray
        import ray.data
    except ImportError as error:
        raise InBedderError("--ray needs Ray: pip install -e \".[ray]\" (or pip install \"ray[data]\")") from error
    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=not quiet)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise InBedderError(f"cannot start or reach Ray at {options.address or 'this machine'}: {error}; "
                                "start a cluster with `ray start --head` and pass its address to --ray") from error
    actors = options.actors or _default_actors(ray.cluster_resources(), options)
    report.actors = actors
    paths = [str(f) for f in files]
    if _format(files) == "csv":
        import pyarrow.csv as pacsv

        convert = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns})
        data = ray.data.read_csv(paths, include_paths=True, convert_options=convert,
                                 parse_options=_csv_parsing(blank_lines=numbered))
    else:
        data = ray.data.read_parquet(paths, include_paths=True, columns=columns)
    # a dead actor is restarted and its batch retried: Ray Data's defaults (max_restarts=-1, max_task_retries=-1)
    data = data.map_batches(BatchEmbedder, fn_constructor_args=embedder_args, batch_size=rows,
                            batch_format="pyarrow", concurrency=actors, num_cpus=options.num_cpus_per_actor,
                            num_gpus=options.num_gpus_per_actor or None)
    data.context.execution_options.preserve_order = True  # ids by row number need the input order
    data.context.enable_progress_bars = not quiet
    yield from data.iter_batches(batch_format="pyarrow", batch_size=None)


def _default_actors(resources: dict[str, float], options: RayOptions) -> int:
    """One actor per ``num_gpus_per_actor`` of the cluster's GPUs, else per ``num_cpus_per_actor`` CPUs but one.

    Raises:
        InBedderError: GPUs asked for and the cluster has fewer than one actor's share.
    """
    if options.num_gpus_per_actor > 0:
        gpus = float(resources.get("GPU", 0.0))
        if gpus < options.num_gpus_per_actor:
            raise InBedderError(f"--num-gpus-per-actor {options.num_gpus_per_actor} but the Ray cluster has "
                                f"{gpus:g} GPU(s); add GPU nodes or leave --num-gpus-per-actor out for CPU actors")
        return max(1, int(gpus // options.num_gpus_per_actor))
    return max(1, int((float(resources.get("CPU", 1.0)) - 1) // options.num_cpus_per_actor))


# --- the output folder --------------------------------------------------------------------------------


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class _Manifest:
    """``manifest.json``: the job the folder holds and the shards finished, rewritten atomically after each."""

    def __init__(self, out: Path, job: dict[str, Any]) -> None:
        self.path = out / MANIFEST
        self.job = job
        self.shards: dict[str, dict[str, Any]] = {}
        self.fingerprint: dict[str, Any] | None = None
        if self.path.exists():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                old_job, self.shards = saved["job"], dict(saved["shards"])
                self.fingerprint = saved.get("fingerprint")
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise ExportError(f"'{self.path}' is not a shards manifest ({error}); choose another --out folder, "
                                  "or delete that file to start over") from error
            changed = [key for key in job if old_job.get(key) != job[key]]
            if changed:
                raise ExportError(f"--out '{out}' holds shards of another job (its {', '.join(changed)} differ); "
                                  "choose another --out folder, or delete that one to start over")
        elif any(out.glob("part-*.parquet")):
            raise ExportError(f"--out '{out}' holds part-*.parquet files but no {MANIFEST}; choose an empty folder")

    def finished(self, index: int, path: Path) -> bool:
        entry = self.shards.get(shard_name(index))
        if entry is None or not (self.path.parent / shard_name(index)).is_file():
            return False
        stat = path.stat()
        return entry["input"] == str(path) and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns

    def record(self, index: int, path: Path, documents: int, rows: int) -> None:
        stat = path.stat()
        self.shards[shard_name(index)] = {"input": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                          "documents": documents, "rows": rows}
        self.save()

    def forget(self, index: int) -> None:
        if self.shards.pop(shard_name(index), None) is not None:
            self.save()

    def save(self) -> None:
        from .export import atomic_path

        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"job": self.job, "fingerprint": self.fingerprint, "shards": self.shards},
                                      indent=1, ensure_ascii=False), encoding="utf-8")

    def check_encoder(self, fingerprint: dict[str, Any]) -> None:
        """Refuse to add shards embedded by another encoder than the finished ones.

        Raises:
            ExportError: the folder's shards come from another encoder (model, revision, pattern, dtype...).
        """
        if self.shards and self.fingerprint not in (None, fingerprint):
            changed = [k for k in fingerprint if self.fingerprint.get(k) != fingerprint[k]]
            hint = " (--pool-prompt sets a baseline's pooling)" if "pooling" in changed else ""
            raise ExportError(f"--out '{self.path.parent}' holds shards embedded with another encoder (its "
                              f"{', '.join(changed)} differ); use the same model and settings{hint}, or another "
                              "--out folder")
        self.fingerprint = fingerprint


class _ShardWriter:
    """One output shard streamed to a temporary file beside it; ``close`` renames it into place."""

    def __init__(self, target: Path, metadata: dict[str, str]) -> None:
        self.target = target
        self.tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        self.metadata = metadata
        self.buffer: list[Any] = []
        self.buffered = 0
        self.writer: Any = None
        self.documents = 0
        self.rows = 0

    def add(self, table: Any) -> None:
        self.buffer.append(table)
        self.buffered += table.num_rows
        self.rows += table.num_rows
        if self.buffered >= _WRITE_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        table = pa.concat_tables(self.buffer)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema.with_metadata(self.metadata))
        self.writer.write_table(table)
        self.buffer, self.buffered = [], 0

    def close(self, empty_schema: Any = None) -> None:
        import pyarrow.parquet as pq

        self._flush()
        if self.writer is None:  # an input file without rows: an empty shard
            pq.write_table(empty_schema.empty_table(), self.tmp)
        else:
            self.writer.close()
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


# --- the run ------------------------------------------------------------------------------------------


def embed_shards(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    instructions: Sequence[str],
    *,
    encoder: EncoderSpec | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    batch_size: int | None = None,
    answers: bool | None = None,
    ray: RayOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    quiet: bool = True,
    rows_per_call: int | None = None,
) -> ShardReport:
    """Embed every row of ``inputs`` under each instruction into ``out``/``part-NNNNN.parquet`` (one per input
    file, in ``resolve_inputs`` order) and ``out``/``manifest.json``; skip shards a previous run finished.

    Args:
        batch_size: the encoder's batch (default its own).
        rows_per_call: rows per encoder call (Ray Data's batch; a killed actor's call is redone); default
            ``DEFAULT_ROWS_PER_CALL``.
        ray: run on Ray (``RayOptions``); ``None`` embeds in this process.
        progress: called with ``(documents done, documents)`` after each batch written.

    Raises:
        CorpusError: bad inputs, columns or ids. ExportError: ``out`` holds another job, cannot be written,
            or the check at the end finds rows missing or repeated (naming them; a rerun redoes those shards).
        ModelError: the encoder cannot be loaded.
    """
    encoder = encoder or EncoderSpec()
    instructions = list(instructions)
    if not instructions:
        raise InBedderError("no instruction given; pass at least one --instruction")
    files = resolve_inputs(inputs)
    out = Path(out)
    if out.suffix.lower() in (".parquet", ".npy", ".csv") or out.is_file():
        raise ExportError(f"--out '{out}' must be a folder: a sharded run writes one Parquet file per input file")
    for item in [*files, *(Path(i).resolve() for i in inputs if Path(i).is_dir())]:
        if item.is_relative_to(out.resolve()) or out.resolve().is_relative_to(item):
            raise ExportError(f"input '{item}' and --out '{out}' overlap; choose an --out folder outside the inputs")
    text_column, id_column = choose_columns(files[0], text_column, id_column)
    columns = [text_column] + ([id_column] if id_column else [])
    ids = read_ids(files, text_column, id_column)
    report = ShardReport(out=out, files=files, n_documents=sum(map(len, ids)))
    if report.n_documents == 0:
        raise CorpusError(f"the inputs {[str(f) for f in files[:3]]} hold no rows")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create --out '{out}': {error.strerror or error}") from error
    for stale in out.glob(".part-*.tmp"):  # left by a killed run
        stale.unlink(missing_ok=True)
    job = {"inputs": [str(f) for f in files], "instructions": instructions, "text_column": text_column,
           "id_column": id_column, "encoder": encoder.identity(), "answers": answers}
    manifest = _Manifest(out, job)
    pending = [i for i, path in enumerate(files) if not manifest.finished(i, path)]
    report.shards_skipped = len(files) - len(pending)
    report.n_rows = report.n_documents * len(instructions)
    rows = rows_per_call or DEFAULT_ROWS_PER_CALL
    args = (encoder, instructions, text_column, id_column, batch_size, answers)
    started = time.perf_counter()
    if pending:
        todo = [files[i] for i in pending]
        if ray is not None:
            batches = _ray_batches(todo, columns, rows, args, ray, report, quiet, numbered=id_column is None)
        else:
            batches = _local_batches(todo, columns, rows, BatchEmbedder(*args), numbered=id_column is None)
        meta = {"fingerprint": None, "instructions": instructions, "source": None}
        _stream(batches, files, pending, ids, len(instructions), out, manifest, report, meta, progress)
    report.seconds = time.perf_counter() - started
    _verify(out, files, ids, len(instructions), manifest)
    return report


def _stream(batches: Iterator[Any], files: list[Path], pending: list[int], ids: list[list[str]], k: int, out: Path,
            manifest: _Manifest, report: ShardReport, meta: dict[str, Any],
            progress: Callable[[int, int], None] | None) -> None:
    """Write each pending file's rows to its shard as they come; finish a shard when its last document is in."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .embedding_io import embeddings_metadata

    lookup = {str(files[i]): i for i in pending}
    writers: dict[int, _ShardWriter] = {}
    done = {i: 0 for i in pending}
    total = sum(len(ids[i]) for i in pending)
    schema = None
    try:
        for i in [i for i in pending if not ids[i]]:
            writers[i] = _ShardWriter(out / shard_name(i), {})
        for table in batches:
            for stats in filter(None, table.column("_stats").to_pylist()):
                _count(json.loads(stats), report, meta, manifest)
            table = table.drop_columns(["_stats"])
            schema = schema or table.drop_columns(["path"]).schema
            for path, part in _runs(table):
                index = lookup.get(path)
                if index is None:
                    raise ExportError(f"Ray returned rows of '{path}', which is not a pending input; report this")
                n = part.num_rows // k
                start = done[index]
                if start + n > len(ids[index]):
                    raise ExportError(f"'{files[index]}' gave more rows than it holds ({len(ids[index]):,}); a row "
                                      "arrived twice; rerun (finished shards are kept)")
                if part.column("doc_id").null_count:
                    given = pa.array(np.repeat(np.array(ids[index][start:start + n], dtype=object), k), pa.string())
                    part = part.set_column(0, "doc_id", given)
                part = part.drop_columns(["path"])
                if index not in writers:
                    writers[index] = _ShardWriter(out / shard_name(index), embeddings_metadata(
                        {**meta, "source": str(files[index])}))
                writers[index].add(part)
                done[index] += n
                report.n_embedded += n
                if done[index] == len(ids[index]):
                    writers.pop(index).close()
                    manifest.record(index, files[index], done[index], done[index] * k)
                    report.shards_written += 1
            if progress is not None:
                progress(report.n_embedded, total)
        if schema is None and writers:  # only files without rows were left: take a finished shard's columns
            schema = next((pq.read_schema(out / name) for name in manifest.shards), None)
        for index in sorted(writers):  # files without rows, and any whose rows did not all come
            if done[index] == len(ids[index]) and schema is not None:
                writers.pop(index).close(schema)
                manifest.record(index, files[index], 0, 0)
                report.shards_written += 1
    finally:
        for writer in writers.values():
            writer.abort()
        close = getattr(batches, "close", None)
        if close is not None:  # stops Ray Data's executor at once on an error or Ctrl-C
            close()


def _runs(table: Any) -> Iterator[tuple[str, Any]]:
    """``(path, rows)`` for each run of consecutive rows from one input file."""
    paths = table.column("path").to_pylist()
    start = 0
    for i in range(1, len(paths) + 1):
        if i == len(paths) or paths[i] != paths[start]:
            yield paths[start], table.slice(start, i - start)
            start = i


def _count(stats: dict[str, Any], report: ShardReport, meta: dict[str, Any], manifest: _Manifest) -> None:
    report.n_encoded += int(stats["encoded"])
    report.n_cached += int(stats["cached"])
    report.n_no_text += int(stats["no_text"])
    report.notes += [note for note in stats["notes"] if note not in report.notes]
    if report.fingerprint is None:
        manifest.check_encoder(stats["fingerprint"])
        report.fingerprint = meta["fingerprint"] = stats["fingerprint"]
    elif report.fingerprint != stats["fingerprint"]:
        raise ExportError(f"the workers loaded different encoders ({report.fingerprint} and {stats['fingerprint']}); "
                          "install the same model files on every node")


def _verify(out: Path, files: list[Path], ids: list[list[str]], k: int, manifest: _Manifest) -> None:
    """Every id exactly once per instruction in every shard, else forget the shard and raise naming the ids.

    Raises:
        ExportError: a shard lacks or repeats rows.
    """
    import pyarrow.parquet as pq

    missing: list[str] = []
    repeated: list[str] = []
    for index, path in enumerate(files):
        target = out / shard_name(index)
        if not manifest.finished(index, path):
            missing += ids[index]
            continue
        table = pq.read_table(target, columns=["doc_id", "instruction_index"])
        doc_ids = np.asarray(table.column("doc_id").to_pylist(), dtype=object)
        numbers = table.column("instruction_index").to_numpy()
        want = set(ids[index])
        lost: set[str] = set()
        extra: set[str] = set()
        for number in range(1, k + 1):
            got = doc_ids[numbers == number].tolist()
            have = set(got)
            lost |= want - have
            extra |= (have - want) | {v for v, n in Counter(got).items() if n > 1}
        if lost or extra:
            manifest.forget(index)
            missing += sorted(lost)
            repeated += sorted(extra)
    if missing or repeated:
        parts = []
        if missing:
            parts.append(f"{len(missing):,} input row(s) missing from the output (ids {missing[:_SHOWN]})")
        if repeated:
            parts.append(f"rows not in the input or repeated (ids {sorted(set(repeated))[:_SHOWN]})")
        raise ExportError(f"{'; '.join(parts)} in '{out}'; rerun the same command to embed the unfinished shards "
                          f"(finished ones are kept)")
