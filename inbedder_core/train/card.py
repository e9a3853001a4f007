"""The saved InBedder: weights and tokenizer, ``inbedder_training.json`` (settings, sources, loss curve)
and a model card naming the base model and every data source with its license.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..encoder import normal_answer
from ..models import ANSWER_LEXICON_FILE
from .checkpoints import TrainState
from .data import DataSource
from .settings import TrainSettings

TRAINING_FILE = "inbedder_training.json"
"""Written beside the weights of a trained model: settings, data sources, loss curve."""
LEXICON_MIN_COUNT = 3


def answer_lexicon(examples: Sequence[Any], min_count: int = LEXICON_MIN_COUNT) -> dict[str, int]:
    """``answer -> count`` over the examples that carry a ``group`` (the aspect questions, whose answers
    are plain words from a closed set per kind), lower-cased, kept from ``min_count`` examples on."""
    counts: dict[str, int] = {}
    for example in examples:
        answer = normal_answer(example.answer)
        if example.group and answer:
            counts[answer] = counts.get(answer, 0) + 1
    return {a: n for a, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count}


def write_answer_lexicon(output: Path, lexicon: dict[str, int], tokens: Sequence[int] = ()) -> None:
    """``ANSWER_LEXICON_FILE`` in ``output`` (nothing when ``lexicon`` is empty): the answers, and the
    ``tokens`` the mask slots were trained to give (every answer's, the end token), which the encoder
    scores instead of the whole vocabulary."""
    if lexicon:
        content: dict[str, Any] = {"format": "inbedder-answers/1", "min_count": LEXICON_MIN_COUNT, "answers": lexicon}
        if tokens:
            content["tokens"] = sorted({int(t) for t in tokens})
        (output / ANSWER_LEXICON_FILE).write_text(json.dumps(content, indent=0, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")


def save_model(model: Any, tokenizer: Any, output: Path, *, settings: TrainSettings, kind: str,
               base_location: str, sources: Sequence[DataSource], state: TrainState, n_examples: int,
               answers: dict[str, int] | None = None, answer_tokens: Sequence[int] = ()) -> Path:
    """Write weights, tokenizer, ``inbedder_training.json``, a model card ``README.md`` and, for a masked
    model, the ``answers`` lexicon and ``answer_tokens`` (``ANSWER_LEXICON_FILE``)."""
    output.mkdir(parents=True, exist_ok=True)
    for stale in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (output / stale).unlink(missing_ok=True)  # would make the loader treat it as sentence-transformers
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    meta = training_metadata(settings=settings, kind=kind, base_location=base_location, sources=sources,
                             state=state, n_examples=n_examples)
    (output / TRAINING_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output / "README.md").write_text(model_card(meta), encoding="utf-8")
    (output / ANSWER_LEXICON_FILE).unlink(missing_ok=True)
    if kind == "masked":
        write_answer_lexicon(output, answers or {}, answer_tokens)
    return output


def training_metadata(*, settings: TrainSettings, kind: str, base_location: str, sources: Sequence[DataSource],
                      state: TrainState, n_examples: int) -> dict[str, Any]:
    """The JSON stored beside a trained model (and rendered into its model card)."""
    import torch
    import transformers

    return {
        "format": "inbedder-training/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": settings.name or Path(settings.output_dir).name,
        "base_model": settings.model,
        "base_location": base_location,
        "kind": kind,
        "pattern": settings.pattern,
        "n_masks": settings.n_masks if kind == "masked" else None,
        "mask_fill": settings.mask_fill if kind == "masked" else None,
        "license": settings.license,
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("data", "output_dir", "checkpoint_dir")},
        "data_files": [Path(p).name for p in settings.data],
        "sources": [asdict(s) for s in sources],
        "n_examples": n_examples,
        "steps": state.step,
        "total_steps": state.total_steps,
        "examples_seen": state.examples_seen,
        "elapsed_s": round(state.elapsed_s, 1),
        "finished": not state.stopped_by_time,
        "losses": state.losses,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def model_card(meta: dict[str, Any]) -> str:
    """A Hugging Face style ``README.md`` naming the base model and every data source with its license."""
    losses = meta.get("losses") or []
    tenth = max(1, len(losses) // 10)
    first = f"{sum(x for _, x in losses[:tenth]) / tenth:.3f} (first {tenth} report(s))" if losses else "n/a"
    last = f"{sum(x for _, x in losses[-tenth:]) / tenth:.3f} (last {tenth})" if losses else "n/a"
    front = ["---"]
    if meta.get("license"):
        front.append(f"license: {meta['license']}")
    front += [f"base_model: {meta['base_model']}", "tags:", "- inbedder", "- instruction-following-embedding",
              f"- {meta['kind']}-lm", "---", ""]
    rows = [f"| {s['name']} | {s['n_examples']} | {s['license']} | {s['repository'] or '-'} |"
            for s in meta["sources"]]
    settings = meta["settings"]
    usage = ("embedding = mean of the last-layer states at the "
             f"{meta['n_masks']} mask tokens appended after `### Response:`; the answer is decoded there"
             if meta["kind"] == "masked" else
             "embedding = last-layer state of the final prompt token; answers by short greedy generation")
    lines = front + [
        f"# {meta['name']}",
        "",
        "An instruction-following text embedder in the style of InBedder (Peng et al., \"Answer is All You "
        "Need: Instruction-following Text Embedding via Answering the Question\", ACL 2024), trained with "
        "`inbedder train` (InBedder Explorer).",
        "",
        "## Use",
        "",
        "```bash",
        f"inbedder embed corpus.csv --model {meta['name']} -i \"What is the topic?\" -o out.parquet",
        "```",
        "",
        f"Prompt: `{json.dumps(meta['pattern'])[1:-1]}`; {usage}.",
        "",
        "## Training",
        "",
        f"- Base model: `{meta['base_model']}`",
        f"- Kind: {meta['kind']} LM; mask fill: {meta.get('mask_fill') or '-'}",
        f"- Examples: {meta['n_examples']}; optimizer steps: {meta['steps']} of {meta['total_steps']} "
        f"({'finished' if meta['finished'] else 'stopped early'}); examples seen: {meta['examples_seen']}",
        f"- Batch size {settings['batch_size']} x {settings['grad_accum']}, learning rate {settings['learning_rate']}, "
        f"warmup {settings['warmup_ratio']}, cosine decay, max length {settings['max_length']}, "
        f"seed {settings['seed']}, precision {settings['precision']}",
        f"- Frozen: embeddings {settings['freeze_embeddings']}, first {settings['freeze_layers']} layers",
        f"- Loss (mean of the reports every {settings['log_steps']} steps): {first} -> {last}; "
        f"wall time {meta['elapsed_s']:.0f} s",
        "",
        "## Data and attribution",
        "",
        "Every source of the training data, with its license. Keep this attribution wherever the model ships.",
        "",
        "| source | examples | license | repository |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    return "\n".join(lines)
