"""Build a two-label corpus for trying Explore and Compare: UCI "Sentiment Labelled Sentences"
(Kotzias et al. 2015, CC BY 4.0) with its two labels, ``sentiment`` (positive / negative) and
``domain`` (product / movie / restaurant review), from ``../shared/data/aspects``.

An even, seeded sample of ``--rows`` sentences (default 1,000) over the 6 sentiment x domain cells,
written as CSV (``id,text,sentiment,domain``) with an attribution file beside it. The browser test
(``tests/test_browser.py``) builds it the same way into a temporary folder; nothing of it is committed.

    python benchmarks/build_two_label_corpus.py --out /tmp/reviews.csv
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT.parent / "shared" / "data" / "aspects" / "uci_sentiment_sentences"
SEED = 19
INSTRUCTIONS = {
    "sentiment": "How does the reviewer feel?",
    "domain": "What kind of thing is being reviewed?",
}


def build(rows: int = 1000, source_dir: Path = SOURCE_DIR, seed: int = SEED) -> list[dict[str, str]]:
    """``rows`` records (``id``, ``text``, ``sentiment``, ``domain``), as even over the 6 label pairs as
    the data allows, in a seeded random order.

    Raises:
        FileNotFoundError: the shared data folder is missing.
    """
    with gzip.open(source_dir / "uci_sentiment_sentences.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    cells: dict[tuple[str, str], list[dict[str, str]]] = {}
    for record in records:
        labels = record["labels"]
        cells.setdefault((labels["sentiment"], labels["domain"]), []).append(
            {"id": record["id"].rsplit("-", 1)[-1], "text": record["text"], "sentiment": labels["sentiment"],
             "domain": labels["domain"]})
    rng = random.Random(seed)
    chosen: list[dict[str, str]] = []
    for key in sorted(cells):
        rng.shuffle(cells[key])
    while len(chosen) < rows and any(cells.values()):
        for key in sorted(cells):
            if cells[key] and len(chosen) < rows:
                chosen.append(cells[key].pop())
    rng.shuffle(chosen)
    return chosen


def attribution(source_dir: Path = SOURCE_DIR) -> str:
    return ("Built by benchmarks/build_two_label_corpus.py from:\n"
            + (source_dir / "SOURCE.txt").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    import csv

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "sentiment", "domain"])
        writer.writeheader()
        writer.writerows(build(args.rows))
    out.with_suffix(".SOURCE.txt").write_text(attribution(), encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.SOURCE.txt')}")


if __name__ == "__main__":
    main()
