"""Build sample_data/banking77.csv from the BANKING77 training split.

Deterministic stratified subset: for each of the 77 intents, the first
PER_INTENT queries in file order (all of them when an intent has fewer),
written in the original file order with ids b77-00001, b77-00002, ...

Usage: python sample_data/make_sample.py [path/to/banking77/train.csv]
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

PER_INTENT = 39
DEFAULT_SOURCE = Path("/work/shared/data/banking77/train.csv")
OUTPUT = Path(__file__).resolve().parent / "banking77.csv"


def main(source: Path = DEFAULT_SOURCE) -> None:
    taken: Counter[str] = Counter()
    rows: list[tuple[str, str]] = []
    with source.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            intent = record["category"]
            if taken[intent] < PER_INTENT:
                taken[intent] += 1
                rows.append((record["text"], intent))
    with OUTPUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text", "intent"])
        for number, (text, intent) in enumerate(rows, start=1):
            writer.writerow([f"b77-{number:05d}", text, intent])
    print(f"wrote {len(rows)} queries over {len(taken)} intents to {OUTPUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
