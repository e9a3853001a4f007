"""Does a fixed transform of a model's vectors, applied after the encoder, follow questions better?

Embeds, once and unnormalised, each leave-source-out validation corpus of ``train_e5.py`` under each of
its questions, the BANKING77 sample under the evaluation's intent question, and a sample of the training
mix (each text under its own question; the statistics of the fixed transforms come from it, never from a
validation corpus). Then scores every transform with the protocol of ``inbedder eval --aspects`` (KMeans,
k = the aspect's labels, V-measure, mean of ``--seeds`` seeds; margin = own question's V minus the best
other question's) and BANKING77 clustering V and intent triplets, and prints one row per transform.

    python benchmarks/bench_post_transform.py --model /work/ckpt/inbedder-e5/model3c \
        --work /work/ckpt/inbedder-e5 --vectors /tmp/post-transform/stage3

Transforms (``X`` the raw vectors, ``mu``, ``sd``, ``U``, ``s`` the mix sample's mean, standard deviations,
principal axes and variances):
``l2`` (what the encoder gives today), ``center-mix`` (``X - mu``), ``center-corpus`` (minus the corpus's own
mean under that question: transductive), ``standardise-mix`` (``(X - mu) / sd``), ``drop-top-1`` and
``drop-top-3`` (``X - mu`` without the mix's first principal axes, "all but the top"), ``whiten-mix-K``
(``(X - mu) U_K / sqrt(s_K)``, K = 64, 128, all), ``half-whiten-mix`` (``(X - mu) U / s ** 0.25``),
``whiten-corpus`` (whitened by the corpus's own
covariance); each is L2-normalised last.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_e5 import VALIDATION  # noqa: E402

from inbedder_core.encoder import l2_normalize  # noqa: E402
from inbedder_core.eval.metrics import aspect_margins, clustering_v_measure, triplet_success_rate  # noqa: E402
from inbedder_core.eval.published import BANKING77_INSTRUCTION, intent_triplets  # noqa: E402
from inbedder_core.eval.tasks import ClusteringSet  # noqa: E402

BANKING77_CSV = ROOT / "sample_data" / "banking77.csv"


def embed_all(model: str, work: Path, vectors: Path, mix_rows: int, threads: int) -> None:
    """Raw vectors into ``vectors/NAME.npy``; a file already there is kept (the run resumes)."""
    import torch

    from inbedder_core.encoder import load_encoder

    torch.set_num_threads(threads)
    vectors.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder(model, device="cpu", dtype="float32", max_length=256)

    def save(name: str, texts: list[str], question: str) -> None:
        path = vectors / f"{name}.npy"
        if not path.exists():
            found = encoder.encode(texts, question, normalize=False, answers=False, batch_size=32).embeddings
            np.save(path, found.astype(np.float32))
            print(f"embedded {name}: {found.shape}", flush=True)

    for name in VALIDATION:
        columns = json.loads((work / "validation" / f"{name}.json").read_text(encoding="utf-8"))
        texts = pd.read_csv(work / "validation" / f"{name}.csv", dtype=str)["text"].fillna("").tolist()
        for column, question in columns.items():
            save(f"{name}__{column}", texts, question)
    save("banking77", pd.read_csv(BANKING77_CSV, dtype=str)["text"].tolist(), BANKING77_INSTRUCTION)
    path = vectors / "mix.npy"
    if not path.exists():
        with gzip.open(work / "data" / "train.jsonl.gz", "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        random.Random(0).shuffle(rows)
        rows = rows[:mix_rows]
        by_question: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_question.setdefault(row["question"], []).append(i)
        mix = np.zeros((len(rows), encoder.dimension), dtype=np.float32)
        for question, rows_of in by_question.items():
            mix[rows_of] = encoder.encode([rows[i]["context"] for i in rows_of], question, normalize=False,
                                          answers=False, batch_size=32).embeddings
        np.save(path, mix)
        print(f"embedded the mix sample: {mix.shape}, {len(by_question)} questions", flush=True)


def _whiten(X: np.ndarray, mean: np.ndarray, axes: np.ndarray, variances: np.ndarray,
            power: float = 0.5) -> np.ndarray:
    return l2_normalize((X - mean) @ axes / variances.clip(1e-6) ** power)


def transforms(mix: np.ndarray) -> dict:
    """Name -> function of raw vectors ``float32 (n, dim)`` to unit rows; fixed ones use only ``mix``."""
    mu, sd = mix.mean(0), mix.std(0) + 1e-6
    variances, axes = np.linalg.eigh(np.cov((mix - mu).T))
    variances, axes = variances[::-1], axes[:, ::-1]

    def drop_top(X: np.ndarray, n: int) -> np.ndarray:
        centred = X - mu
        return l2_normalize(centred - centred @ axes[:, :n] @ axes[:, :n].T)

    def whiten_corpus(X: np.ndarray) -> np.ndarray:
        own_mean = X.mean(0)
        own_variances, own_axes = np.linalg.eigh(np.cov((X - own_mean).T))
        return _whiten(X, own_mean, own_axes, own_variances)

    return {
        "l2": l2_normalize,
        "center-mix": lambda X: l2_normalize(X - mu),
        "center-corpus": lambda X: l2_normalize(X - X.mean(0)),
        "standardise-mix": lambda X: l2_normalize((X - mu) / sd),
        "drop-top-1": lambda X: drop_top(X, 1),
        "drop-top-3": lambda X: drop_top(X, 3),
        "whiten-mix-64": lambda X: _whiten(X, mu, axes[:, :64], variances[:64]),
        "whiten-mix-128": lambda X: _whiten(X, mu, axes[:, :128], variances[:128]),
        "whiten-mix-all": lambda X: _whiten(X, mu, axes, variances),
        "half-whiten-mix": lambda X: _whiten(X, mu, axes, variances, power=0.25),
        "whiten-corpus": whiten_corpus,
    }


def intent_triplet_rows(texts: list[str], labels: list[str]) -> tuple[list[int], list[int], list[int]]:
    """The rows of the evaluation's BANKING77 triplets (``published.intent_triplets``): anchor, positive,
    negative; a text that occurs twice has the same vector either way."""
    part = ClusteringSet("banking77", BANKING77_INSTRUCTION, tuple(texts), tuple(labels))
    found = intent_triplets(part, BANKING77_INSTRUCTION)
    row = {text: i for i, text in enumerate(texts)}
    return ([row[t] for t in found.anchors], [row[t] for t in found.positives], [row[t] for t in found.negatives])


def score(work: Path, vectors: Path, seeds: int, only: list[str] | None) -> None:
    banking = pd.read_csv(BANKING77_CSV, dtype=str)
    banking_labels = banking["intent"].tolist()
    anchors, positives, negatives = intent_triplet_rows(banking["text"].tolist(), banking_labels)
    for name, transform in transforms(np.load(vectors / "mix.npy")).items():
        if only and name not in only:
            continue
        cells, margins = [], []
        for corpus in VALIDATION:
            columns = list(json.loads((work / "validation" / f"{corpus}.json").read_text(encoding="utf-8")))
            labels = pd.read_csv(work / "validation" / f"{corpus}.csv", dtype=str)
            matrix = np.zeros((len(columns), len(columns)))
            for i, asked in enumerate(columns):
                X = transform(np.load(vectors / f"{corpus}__{asked}.npy"))
                for j, column in enumerate(columns):
                    matrix[i, j] = clustering_v_measure(X, labels[column].tolist(), n_seeds=seeds).mean
            found = aspect_margins(matrix)
            for j, column in enumerate(columns):
                cells.append(f"{corpus}/{column} {100 * matrix[j, j]:.1f}/{100 * found[j]:+.1f}")
                margins.append(found[j])
        X = transform(np.load(vectors / "banking77.npy"))
        v = clustering_v_measure(X, banking_labels, n_seeds=seeds).mean
        triplets = triplet_success_rate(X[anchors], X[positives], X[negatives])
        print(f"{name:15s} mean margin {100 * np.mean(margins):+.2f}  BANKING77 V {100 * v:.1f} triplets "
              f"{100 * triplets:.1f} | " + "  ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a masked InBedder folder or bundled name")
    parser.add_argument("--work", type=Path, required=True,
                        help="train_e5.py's work folder: validation/ and data/train.jsonl.gz")
    parser.add_argument("--vectors", type=Path, required=True, help="where the raw vectors are kept (resumes)")
    parser.add_argument("--mix-rows", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="score only these transforms")
    args = parser.parse_args()
    embed_all(args.model, args.work, args.vectors, args.mix_rows, args.threads)
    score(args.work, args.vectors, args.seeds, args.only)


if __name__ == "__main__":
    main()
