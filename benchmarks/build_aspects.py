"""Build the held-out evaluation sets of the bundled InBedder (reproducible, seeded).

1. ``aspects_topic_intent.csv`` - *same corpus, several aspects*. No public set at hand has two
   independent labels per text, so each text is constructed: one sentence from a SQuAD dev
   article (label ``topic`` = the article) joined with one SNIPS request (label ``intent``),
   in random order. The design is fully crossed (every topic meets every intent equally
   often), so the two labels are independent. Evaluate with
   ``inbedder eval --aspects FILE --aspect "topic=..." --aspect "intent=..."`` using
   ``INSTRUCTIONS`` below.
2. ``squad_topics.csv`` + ``squad_topics.paraphrases.json`` - the paper's robustness test on a
   held-out clustering set: SQuAD dev passages labeled by article, with the NYT topic
   paraphrases (10 correct, 10 implicit, 10 incorrect) from
   ``inbedder_core/data/instructions.json``.

Both SQuAD (CC BY-SA 4.0) and SNIPS (CC0) are held out of the training mix
(``benchmarks/train_minilm.py``). The outputs are CC BY-SA 4.0 (share-alike of SQuAD); an
attribution file is written beside them.

    python benchmarks/build_aspects.py --out sample_data
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QA_DIR = ROOT.parent / "shared" / "data" / "qa"
SEED = 7

INSTRUCTIONS = {
    "topic": "What subject is the encyclopedia sentence about?",
    "intent": "What does the user ask the assistant to do?",
}
"""The aspects' instructions; none of them is a training question (the training driver checks)."""

ASPECT_TOPICS = ("Super_Bowl_50", "Nikola_Tesla", "Chloroplast", "Warsaw", "Genghis_Khan", "Oxygen",
                 "Apollo_program", "Prime_number")
PER_CELL = 12  # texts per (topic, intent) cell: 8 topics x 7 intents x 12 = 672 texts
ROBUSTNESS_TOPICS = 15
PER_TOPIC = 10

ATTRIBUTION = """# Held-out evaluation sets of the bundled InBedder

Built by `benchmarks/build_aspects.py` (seed {seed}) from two public data sets that are **not**
in the training data of `inbedder-minilm`:

- **SQuAD** dev set (v1.1/v2.0), Rajpurkar et al. 2016/2018, CC BY-SA 4.0,
  via github.com/rajpurkar/SQuAD-explorer (commit e0c66cfec263165fb3c15cb76a22175e371b71d7).
- **SNIPS** 2017 custom-intent engines, Coucke et al. 2018, CC0 1.0,
  via github.com/sonos/nlu-benchmark (commit b86ac7f1577868c42158d0dec77db50956046696).
- Robustness paraphrases: the InBedder repository (github.com/zhang-yu-wei/InBedder), MIT.

These derived files are licensed **CC BY-SA 4.0** (share-alike of SQuAD).

- `aspects_topic_intent.csv`: `text,topic,intent`. Each text is one SQuAD sentence (topic =
  its Wikipedia article) joined with one SNIPS request (intent), in random order; fully
  crossed, {n_aspects} rows. Instructions: topic = "{topic}"; intent = "{intent}".
- `squad_topics.csv`: `text,label`, {n_topics} SQuAD dev paragraphs, label = article
  ({k} articles); `squad_topics.paraphrases.json`: the NYT topic paraphrases.
"""


def _read(name: str) -> list[dict]:
    with gzip.open(QA_DIR / name / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _sentences(passage: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])", passage)
    return [p.strip() for p in parts if 12 <= len(p.split()) <= 40]


def _ended(text: str) -> str:
    """``text`` closed with a full stop when it has no final punctuation (SNIPS requests have none)."""
    text = text.strip()
    return text if text[-1:] in ".!?\"'" else text + "."


def build(out: Path) -> None:
    rng = random.Random(SEED)
    squad = _read("squad_dev_explorer")
    passages: dict[str, list[str]] = defaultdict(list)
    for row in squad:
        if row["context"] not in passages[row["title"]]:
            passages[row["title"]].append(row["context"])
    snips = _read("snips")
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in snips:
        by_intent[row["answer"]].append(row["context"].strip())
    intents = sorted(by_intent)

    rows = []
    for topic in ASPECT_TOPICS:
        sentences = sorted({s for p in passages[topic] for s in _sentences(p)})
        rng.shuffle(sentences)
        need = PER_CELL * len(intents)
        if len(sentences) < need:
            raise SystemExit(f"{topic}: only {len(sentences)} usable sentences, {need} needed")
        sentences = sentences[:need]
        for number, intent in enumerate(intents):
            requests = rng.sample(by_intent[intent], PER_CELL)
            for j, request in enumerate(requests):
                sentence = sentences[number * PER_CELL + j]
                first, second = (sentence, request) if rng.random() < 0.5 else (request, sentence)
                text = f"{_ended(first)} {second}"
                rows.append({"text": text, "topic": topic.replace("_", " "), "intent": intent})
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "aspects_topic_intent.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "topic", "intent"])
        writer.writeheader()
        writer.writerows(rows)

    candidates = sorted(t for t, ps in passages.items() if t not in ASPECT_TOPICS and len(ps) >= PER_TOPIC)
    topics = sorted(rng.sample(candidates, ROBUSTNESS_TOPICS))
    clustering = []
    for topic in topics:
        for passage in rng.sample(sorted(passages[topic]), PER_TOPIC):
            clustering.append({"text": passage, "label": topic.replace("_", " ")})
    rng.shuffle(clustering)
    with (out / "squad_topics.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(clustering)
    spec = json.loads((ROOT / "inbedder_core" / "data" / "instructions.json").read_text(encoding="utf-8"))
    nyt = spec["tasks"]["NYTTopicClustering"]
    paraphrases = {k: nyt[f"{k}_instructions"] for k in ("correct", "implicit", "incorrect")}
    (out / "squad_topics.paraphrases.json").write_text(json.dumps(paraphrases, indent=1) + "\n", encoding="utf-8")
    (out / "HELDOUT_SETS.md").write_text(ATTRIBUTION.format(
        seed=SEED, n_aspects=len(rows), topic=INSTRUCTIONS["topic"], intent=INSTRUCTIONS["intent"],
        n_topics=len(clustering), k=len(topics)), encoding="utf-8")
    print(f"{len(rows)} aspect rows, {len(clustering)} robustness passages ({len(topics)} articles) -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "sample_data")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
