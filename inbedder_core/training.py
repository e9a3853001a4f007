"""Fine-tune a language model into an InBedder (``inbedder train`` in ``cli``).

Over the ~600-line guide while bundled-model training work is in flight; becomes ``train/`` in a follow-up.

An InBedder is a language model taught to answer questions about a text with *short*
answers (Peng et al., ACL 2024); its embedding is the hidden state where the answer is
produced. Training follows the paper's recipe, with the prompt built by the same code the
encoder uses at inference (``MaskedLMEncoder.tokenize`` / ``CausalLMEncoder.tokenize``), so
the two cannot drift apart:

* **masked** (BERT, RoBERTa...): ``prompt + [MASK] * n_masks`` (masks right after
  ``### Response:``, no space, exactly as ``MaskedLMEncoder`` appends them). The answer's
  tokens fill the mask slots; answers longer than ``n_masks`` tokens are truncated. The
  loss is taken at the mask positions only. Unused slots of a shorter answer
  (``mask_fill``): ``"eos"`` (default) labels them with the separator token, so the decoded
  answer stops cleanly; ``"ignore"`` leaves them without a label; ``"variable"`` is the
  paper's own layout (``alpaca_train/train.py``): as many masks as answer tokens, no
  padding, so a 1-token answer is trained with 1 mask and read at inference with 3.
* **causal** (OPT, Llama...): ``prompt + answer + eos``; the labels of the prompt (and
  of padding) are ``-100``, so the loss is on the answer and the end token only.

Logits are computed only at labeled positions (the vocabulary projection of every
position would dominate the cost of a small model). A base model without an LM head
(e.g. a sentence-transformers ``BertModel`` such as all-MiniLM-L6-v2) gets a fresh
masked-LM head whose decoder is tied to the word embeddings.

Checkpoints (model, optimizer, scheduler, step, RNG states) are written every
``save_steps`` optimizer steps and at a time limit; ``resume=True`` continues from the last
one with the same batch order, so an interrupted run ends where an uninterrupted one
would. The saved model directory loads with ``load_encoder`` like any InBedder and carries
a model card naming the base model and every data source with its license.

Heavy libraries (torch, transformers, safetensors) are imported inside functions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .errors import TrainingError
from .prompts import INBEDDER_PATTERN, split_pattern, validate_pattern

IGNORE_INDEX = -100
MaskFill = Literal["eos", "ignore", "variable"]
MASK_FILLS: tuple[str, ...] = ("eos", "ignore", "variable")
PRECISIONS = ("auto", "fp32", "bf16")
TRAINING_FILE = "inbedder_training.json"
"""Written beside the weights of a trained model: settings, data sources, loss curve."""

ProgressFactory = Callable[[str], Any]
"""``factory(description)`` returns ``bar(done, total)`` with a ``.close()``."""


# --- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QAExample:
    """One training example: the answer to ``question`` about ``context`` (which may be empty)."""

    context: str
    question: str
    answer: str
    source: str = "unknown"
    group: str = ""
    """``kind:answer`` for the contrastive term (same question kind, same gold answer); empty: none."""


@dataclass
class DataSource:
    """Where a group of examples comes from, for the model card's attribution."""

    name: str
    license: str = "unknown"
    repository: str = ""
    commit: str = ""
    note: str = ""
    n_examples: int = 0


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _parse_source_txt(path: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("repo", "license", "commit", "notes") and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def _file_sources(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str] | None]:
    """Attribution found beside a data file: ``sources.json`` (per source) and ``SOURCE.txt`` (whole file)."""
    per_source: dict[str, dict[str, str]] = {}
    listing = path.parent / "sources.json"
    if listing.exists():
        try:
            loaded = json.loads(listing.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TrainingError(f"cannot read {listing}: {error}; it must map source names to "
                                "{'license': ..., 'repository': ...}") from error
        per_source = {str(k): dict(v) for k, v in loaded.items() if isinstance(v, dict)}
    whole = _parse_source_txt(path.parent / "SOURCE.txt") if (path.parent / "SOURCE.txt").exists() else None
    return per_source, whole


def read_examples(paths: Sequence[str | os.PathLike[str]], *,
                  max_examples: int | None = None) -> tuple[list[QAExample], list[DataSource]]:
    """Read ``context, question, answer[, source]`` records from JSONL or JSONL.gz files.

    Records without a question or an answer are skipped (``context`` may be empty: closed-book
    questions). Attribution is read from ``sources.json`` or ``SOURCE.txt`` beside each file.

    Returns:
        ``(examples, sources)``: examples in file order; one ``DataSource`` per source name
        with its example count, license and repository ("unknown" when nothing says).

    Raises:
        TrainingError: a file is missing, is not JSON lines, or holds no usable example.
    """
    examples: list[QAExample] = []
    sources: dict[str, DataSource] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise TrainingError(f"training data file '{raw}' does not exist; pass JSONL(.gz) files of "
                                "{'context', 'question', 'answer'} records with --data")
        per_source, whole = _file_sources(path)
        before = len(examples)
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise TrainingError(f"{path}: line {number} is not JSON ({error.msg}); expected one "
                                        "{'context', 'question', 'answer'} object per line") from error
                if not isinstance(record, dict):
                    raise TrainingError(f"{path}: line {number} is not a JSON object")
                question = str(record.get("question") or "").strip()
                answer = str(record.get("answer") or "").strip()
                if not question or not answer:
                    continue
                name = str(record.get("source") or path.parent.name or path.stem)
                examples.append(QAExample(str(record.get("context") or ""), question, answer, name,
                                          str(record.get("group") or "")))
                if name not in sources:
                    info = per_source.get(name) or {}
                    fallback = whole or {}
                    sources[name] = DataSource(
                        name, license=str(info.get("license") or fallback.get("license") or "unknown"),
                        repository=str(info.get("repository") or fallback.get("repo") or ""),
                        commit=str(info.get("commit") or fallback.get("commit") or ""),
                        note=str(info.get("note") or ""))
                sources[name].n_examples += 1
                if max_examples is not None and len(examples) >= max_examples:
                    break
        if len(examples) == before:
            raise TrainingError(f"{path} holds no record with both a 'question' and an 'answer'")
        if max_examples is not None and len(examples) >= max_examples:
            break
    return examples, sorted(sources.values(), key=lambda s: -s.n_examples)


# --- settings ------------------------------------------------------------------------------------


@dataclass
class TrainSettings:
    """Everything that decides a training run (stored in checkpoints and the model card).

    Attributes:
        model: base model: hub id, local directory or an alias ``resolve_model`` knows.
        data: JSONL(.gz) files of ``context, question, answer`` records.
        output_dir: where the trained model is saved.
        kind: ``masked`` or ``causal`` (default: from the base model's config).
        n_masks: mask tokens appended to the prompt (masked; the encoder's ``n_masks``).
        mask_fill: how unused mask slots are labeled: ``eos``, ``ignore`` or ``variable``.
        max_answer_tokens: answer tokens kept (masked: ``n_masks``; causal default 16).
        max_length: tokens per training sequence; the document is truncated, never the rest.
        batch_size, grad_accum: examples per forward pass, passes per optimizer step.
        learning_rate, weight_decay, warmup_ratio: AdamW with linear warmup, cosine decay.
        epochs, max_steps: passes over the data, or a fixed number of optimizer steps.
        max_examples: read at most this many examples.
        max_minutes: stop (with a checkpoint and a saved model) after this wall time.
        save_steps, log_steps: checkpoint and loss-report intervals, in optimizer steps.
        seed: batch order, head initialisation and dropout.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        freeze_embeddings: keep the input embeddings (and a tied output layer) fixed.
        freeze_layers: also keep the first N transformer layers fixed.
        contrastive_weight: weight of the answer-supervised contrastive term (masked only; 0 = the
            paper's answer loss alone). Positives: examples of the batch with the same ``group``.
        contrastive_temperature: temperature of that term.
        kinds_per_batch: with grouped examples, each batch holds this many question kinds (0 = the
            plain length-sorted order), so the contrastive term sees same-answer positives.
        pattern: the prompt pattern; must match the one used at inference.
        checkpoint_dir: default ``<cache dir>/training/<hash of output_dir>``.
    """

    model: str
    data: list[str]
    output_dir: str
    kind: str | None = None
    n_masks: int = 3
    mask_fill: str = "eos"
    max_answer_tokens: int | None = None
    max_length: int = 256
    batch_size: int = 16
    grad_accum: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    epochs: float = 1.0
    max_steps: int | None = None
    max_examples: int | None = None
    max_minutes: float | None = None
    save_steps: int = 500
    log_steps: int = 20
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.05
    kinds_per_batch: int = 0
    pattern: str = INBEDDER_PATTERN
    checkpoint_dir: str | None = None
    name: str | None = None
    license: str | None = None

    def check(self) -> TrainSettings:
        """Return ``self`` when every value is usable.

        Raises:
            TrainingError: naming the bad value and what is expected.
        """
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise TrainingError(message)

        need(bool(self.data), "no training data: pass one or more JSONL(.gz) files with --data")
        need(self.kind in (None, "masked", "causal"), f"kind '{self.kind}' is not trainable; use masked or causal")
        need(self.n_masks >= 1, f"n_masks must be at least 1, got {self.n_masks}")
        need(self.mask_fill in MASK_FILLS, f"mask_fill '{self.mask_fill}' is unknown; choose one of {MASK_FILLS}")
        need(self.max_answer_tokens is None or self.max_answer_tokens >= 1,
             f"max_answer_tokens must be at least 1, got {self.max_answer_tokens}")
        need(self.max_length >= 16, f"max_length must be at least 16 tokens, got {self.max_length}")
        need(self.batch_size >= 1 and self.grad_accum >= 1,
             f"batch_size and grad_accum must be at least 1, got {self.batch_size} and {self.grad_accum}")
        need(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        need(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        need(self.epochs > 0, f"epochs must be positive, got {self.epochs}")
        need(self.max_steps is None or self.max_steps >= 1, f"max_steps must be at least 1, got {self.max_steps}")
        need(self.max_examples is None or self.max_examples >= 1,
             f"max_examples must be at least 1, got {self.max_examples}")
        need(self.max_minutes is None or self.max_minutes > 0, f"max_minutes must be positive, got {self.max_minutes}")
        need(self.save_steps >= 1 and self.log_steps >= 1, "save_steps and log_steps must be at least 1")
        need(self.precision in PRECISIONS, f"precision '{self.precision}' is unknown; choose one of {PRECISIONS}")
        need(self.freeze_layers >= 0, f"freeze_layers must be 0 or more, got {self.freeze_layers}")
        need(self.contrastive_weight >= 0, f"contrastive_weight must be 0 or more, got {self.contrastive_weight}")
        need(self.contrastive_temperature > 0,
             f"contrastive_temperature must be positive, got {self.contrastive_temperature}")
        need(0 <= self.kinds_per_batch <= self.batch_size,
             f"kinds_per_batch must be in [0, batch_size], got {self.kinds_per_batch}")
        validate_pattern(self.pattern)
        need("{instruction}" in self.pattern, "the training pattern needs an {instruction} field")
        return self

    def answer_budget(self, kind: str) -> int:
        if self.max_answer_tokens is not None:
            return min(self.max_answer_tokens, self.n_masks) if kind == "masked" else self.max_answer_tokens
        return self.n_masks if kind == "masked" else 16

    def run_key(self) -> str:
        """Hash of the settings that must not change across a resume (not time or logging limits)."""
        volatile = {"max_minutes", "save_steps", "log_steps", "checkpoint_dir", "device", "name", "license"}
        stable = {k: v for k, v in asdict(self).items() if k not in volatile}
        stable["data"] = [str(Path(p).expanduser().resolve()) for p in self.data]
        stable["output_dir"] = str(Path(self.output_dir).expanduser().resolve())
        return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]

    def default_checkpoint_dir(self) -> Path:
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir).expanduser()
        from .settings import default_cache_dir

        out = str(Path(self.output_dir).expanduser().resolve())
        return default_cache_dir() / "training" / hashlib.sha256(out.encode()).hexdigest()[:16]


# --- model ---------------------------------------------------------------------------------------


def _masked_head(model: Any) -> Any:
    head = getattr(model, "lm_head", None) or getattr(model, "cls", None)
    if head is None:
        raise TrainingError(f"cannot find the masked-LM head of {type(model).__name__} ('lm_head' or 'cls')")
    return head


def choose_kind(config: Any, requested: str | None) -> str:
    """``masked`` or ``causal`` for a base config; a bare encoder (``BertModel``) is masked.

    Raises:
        TrainingError: the architecture is neither.
    """
    if requested:
        return requested
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    # Unlike models.detect_kind (which loads trained InBedders), a bare encoder such as the
    # sentence-transformers BertModel of all-MiniLM-L6-v2 is accepted here: it gets a new MLM head.
    architectures = list(getattr(config, "architectures", None) or [])
    model_type = getattr(config, "model_type", "")
    choices = (("masked", "ForMaskedLM", MODEL_FOR_MASKED_LM_MAPPING_NAMES),
               ("causal", "ForCausalLM", MODEL_FOR_CAUSAL_LM_MAPPING_NAMES))
    for kind, suffix, _ in choices:
        if any(a.endswith(suffix) for a in architectures):
            return kind
    for kind, _, model_types in choices:  # masked first: bert also has an LM-head (causal) variant
        if model_type in model_types:
            return kind
    raise TrainingError(f"cannot train architecture {architectures or model_type!r}: expected a masked LM "
                        "(BERT, RoBERTa...) or a causal LM (OPT, Llama...); pass --kind to force one")


def load_base(settings: TrainSettings, note: Callable[[str], None]) -> tuple[Any, Any, str, str]:
    """``(model, tokenizer, kind, location)`` for the base model, in train mode on CPU.

    Raises:
        TrainingError: the model cannot be loaded, or lacks a mask token (masked).
    """
    import transformers

    from .models import resolve_model

    resolved = resolve_model(settings.model)
    options: dict[str, Any] = {"local_files_only": True} if resolved.is_local else {}
    try:
        config = transformers.AutoConfig.from_pretrained(resolved.location, **options)
        tokenizer = transformers.AutoTokenizer.from_pretrained(resolved.location, **options)
    except (OSError, ValueError) as error:
        raise TrainingError(f"cannot load base model '{settings.model}': {str(error).splitlines()[0]}; pass a "
                            "local directory with config.json, tokenizer files and weights") from error
    kind = choose_kind(config, settings.kind)
    if not getattr(tokenizer, "is_fast", False):
        raise TrainingError(f"base model '{settings.model}' has no fast tokenizer (tokenizer.json)")
    if kind == "masked" and tokenizer.mask_token is None:
        raise TrainingError(f"base model '{settings.model}' has no mask token; train it with --kind causal")
    auto = transformers.AutoModelForMaskedLM if kind == "masked" else transformers.AutoModelForCausalLM
    head_missing = kind == "masked" and not any(a.endswith("ForMaskedLM") for a in config.architectures or [])
    import torch

    torch.manual_seed(settings.seed)  # a fresh head is initialised from the seed
    verbosity = transformers.logging.get_verbosity()
    if head_missing:  # its load report lists the new head as "missing"; the note below says it plainly
        transformers.logging.set_verbosity_error()
    try:
        model = auto.from_pretrained(resolved.location, dtype=torch.float32, **options)
    except (OSError, ValueError) as error:
        raise TrainingError(f"cannot load base model '{settings.model}' as a {kind} LM: "
                            f"{str(error).splitlines()[0]}") from error
    finally:
        transformers.logging.set_verbosity(verbosity)
    if head_missing:
        note(f"base '{settings.model}' has no masked-LM head: {type(model).__name__} with a new head "
             "(decoder tied to the word embeddings)")
    if kind == "causal" and tokenizer.eos_token_id is None:
        raise TrainingError(f"base model '{settings.model}' has no end-of-sequence token; causal training "
                            "appends one after every answer")
    model.config.architectures = [type(model).__name__]
    model.train()
    return model, tokenizer, kind, resolved.location


def freeze(model: Any, settings: TrainSettings) -> tuple[int, int]:
    """Apply ``freeze_embeddings`` / ``freeze_layers``; ``(trainable, total)`` parameter counts."""
    base = model.base_model
    if settings.freeze_embeddings or settings.freeze_layers:
        for parameter in model.get_input_embeddings().parameters():
            parameter.requires_grad_(False)
    if settings.freeze_layers:
        embeddings = getattr(base, "embeddings", None)
        if embeddings is not None:
            for parameter in embeddings.parameters():
                parameter.requires_grad_(False)
        layers = _layers(base)
        if settings.freeze_layers > len(layers):
            raise TrainingError(f"freeze_layers={settings.freeze_layers} but the model has {len(layers)} layers")
        for layer in layers[: settings.freeze_layers]:
            for parameter in layer.parameters():
                parameter.requires_grad_(False)
    unique = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in unique.values())
    trainable = sum(p.numel() for p in unique.values() if p.requires_grad)
    return trainable, total


def _layers(base: Any) -> Any:
    for path in ("encoder.layer", "layers", "decoder.layers", "h"):
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    raise TrainingError(f"cannot find the transformer layers of {type(base).__name__} to freeze")


# --- features ------------------------------------------------------------------------------------


@dataclass
class Feature:
    """One tokenized example: ``input_ids`` and ``labels`` of equal length (``-100`` = no loss)."""

    input_ids: list[int]
    labels: list[int]
    group: str = ""


class FeatureBuilder:
    """Turns ``QAExample``s into ``Feature``s with the encoder's own prompt tokenization.

    Masked: ``[CLS] prompt [MASK]*n [SEP]``, labels only at the masks. Causal: ``prompt
    answer eos``, labels only on the answer and eos.
    """

    def __init__(self, model: Any, tokenizer: Any, kind: str, settings: TrainSettings) -> None:
        from .encoder import CausalLMEncoder, MaskedLMEncoder

        self.kind = kind
        self.tokenizer = tokenizer
        self.mask_fill = settings.mask_fill
        self.n_masks = settings.n_masks
        self.answer_tokens = settings.answer_budget(kind)
        self.pattern = settings.pattern
        common: dict[str, Any] = dict(model_id="training", revision="training", pattern=settings.pattern,
                                      device="cpu", dtype="float32", padding_side="right")
        if kind == "masked":
            self.prompter: Any = MaskedLMEncoder(model, tokenizer, n_masks=settings.n_masks,
                                                 max_length=settings.max_length, **common)
            end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
            self.end_id = int(end if end is not None else tokenizer.pad_token_id)
            self.mask_id = int(tokenizer.mask_token_id)
        else:
            self.prompter = CausalLMEncoder(model, tokenizer, max_length=settings.max_length - self.answer_tokens - 1,
                                            **common)
            self.end_id = int(tokenizer.eos_token_id)
        self.pad_id = self.prompter.pad_token_id

    def answer_ids(self, answer: str) -> list[int]:
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return [int(t) for t in ids[: self.answer_tokens]]

    def build(self, example: QAExample) -> Feature | None:
        """The feature of one example, or ``None`` when its answer has no token or its question
        alone (without the document) does not fit in ``max_length``."""
        from .errors import EncodingError

        answer = self.answer_ids(example.answer)
        if not answer:
            return None
        parts = split_pattern(self.pattern, example.context, example.question)
        try:
            ids = [int(t) for t in self.prompter.tokenize(parts)]
        except EncodingError:
            return None
        if self.kind == "causal":
            full = ids + answer + [self.end_id]
            return Feature(full, [IGNORE_INDEX] * len(ids) + answer + [self.end_id], example.group)
        positions = [i for i, t in enumerate(ids) if t == self.mask_id][-self.n_masks:]
        if self.mask_fill == "variable" and len(answer) < len(positions):
            drop = set(positions[len(answer):])
            ids = [t for i, t in enumerate(ids) if i not in drop]
            positions = positions[: len(answer)]
        labels = [IGNORE_INDEX] * len(ids)
        for slot, position in enumerate(positions):
            if slot < len(answer):
                labels[position] = answer[slot]
            elif self.mask_fill == "eos":
                labels[position] = self.end_id
        return Feature(ids, labels, example.group)

    def build_all(self, examples: Sequence[QAExample]) -> tuple[list[Feature], int]:
        """Features of all examples in order, and how many were skipped (no answer token, question too long)."""
        features, skipped = [], 0
        for example in examples:
            feature = self.build(example)
            if feature is None:
                skipped += 1
            else:
                features.append(feature)
        return features, skipped


def collate(features: Sequence[Feature], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (padding labeled ``-100``), int64."""
    import torch

    width = max(len(f.input_ids) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
    for row, feature in enumerate(features):
        n = len(feature.input_ids)
        ids[row, :n] = torch.tensor(feature.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(feature.labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar lengths (less padding), deterministic for ``(seed, epoch)``.

    Examples are shuffled, cut into pools of 50 batches, sorted by length inside a pool,
    cut into batches, and the batches shuffled.
    """
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def grouped_batch_order(groups: Sequence[str], batch_size: int, kinds_per_batch: int, seed: int,
                        epoch: int, lengths: Sequence[int] | None = None) -> list[list[int]]:
    """Batches that each hold ``kinds_per_batch`` question kinds (the part of ``group`` before ':').

    Examples without a group form their own kind. Each batch takes about ``batch_size /
    kinds_per_batch`` examples from each of its kinds, drawn with probability proportional to
    what a kind has left, so every example is used once per epoch and same-answer pairs meet in
    a batch. With ``lengths``, a kind's examples are sorted by length inside pools of 50
    slices, so a slice needs little padding. Deterministic for ``(seed, epoch)``.
    """
    rng = random.Random(f"grouped:{seed}:{epoch}")
    buckets: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        buckets.setdefault(group.partition(":")[0], []).append(index)
    share = max(1, batch_size // max(1, kinds_per_batch))
    for key in sorted(buckets):
        rng.shuffle(buckets[key])
        if lengths is not None:
            pool = share * 50
            bucket = buckets[key]
            buckets[key] = [i for start in range(0, len(bucket), pool)
                            for i in sorted(bucket[start:start + pool], key=lambda j: lengths[j])]
    batches: list[list[int]] = []
    while any(buckets.values()):
        names = sorted(k for k, v in buckets.items() if v)
        batch: list[int] = []
        while len(batch) < batch_size and names:
            name = rng.choices(names, weights=[len(buckets[n]) for n in names])[0]
            take = min(share, batch_size - len(batch))
            batch += buckets[name][:take]
            del buckets[name][:take]
            names.remove(name)
        batches.append(batch)
    return batches


def contrastive_loss(pooled: Any, groups: Sequence[str], temperature: float) -> Any:
    """Supervised contrastive loss over unit ``pooled`` rows: positives share a non-empty ``group``.

    Rows without a group, or without a positive in the batch, are not anchors (they still serve
    as negatives). Returns a zero tensor when no row has a positive.
    """
    import torch

    z = torch.nn.functional.normalize(pooled.float(), dim=-1)
    ids = {g: i for i, g in enumerate(sorted({g for g in groups if g}))}
    codes = torch.tensor([ids[g] if g else -1 - i for i, g in enumerate(groups)], device=z.device)
    same = codes[:, None] == codes[None, :]
    eye = torch.eye(len(groups), dtype=torch.bool, device=z.device)
    positives = same & ~eye
    anchors = positives.any(dim=1)
    if not bool(anchors.any()):
        return z.sum() * 0.0
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    mean_positive = (log_prob.masked_fill(~positives, 0.0).sum(dim=1)) / positives.sum(dim=1).clamp(min=1)
    return -mean_positive[anchors].mean()


def answer_loss(model: Any, kind: str, batch: dict[str, Any], *, contrastive_weight: float = 0.0,
                temperature: float = 0.05, mask_id: int | None = None) -> Any:
    """Mean cross-entropy over labeled tokens; logits are computed at those positions only.

    Masked: a label at position ``t`` is predicted from the state at ``t``. Causal: from the
    state at ``t - 1``. With ``contrastive_weight`` (masked only), adds that times
    ``contrastive_loss`` over the embedding the encoder uses (mean of the states at the mask
    tokens ``mask_id``), grouped by ``batch["groups"]``.
    """
    import torch

    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    extra = None
    if contrastive_weight and kind == "masked" and mask_id is not None and any(batch.get("groups") or ()):
        at_mask = (batch["input_ids"] == mask_id).to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * at_mask).sum(dim=1) / at_mask.sum(dim=1).clamp(min=1)
        extra = contrastive_weight * contrastive_loss(pooled, batch["groups"], temperature)
    labels = batch["labels"]
    if kind == "causal":
        hidden, labels = hidden[:, :-1], labels[:, 1:]
        head = model.get_output_embeddings()
    else:
        head = _masked_head(model)
    selected = labels != IGNORE_INDEX
    logits = head(hidden[selected]).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if kind == "causal" and cap:
        logits = torch.tanh(logits / cap) * cap
    loss = torch.nn.functional.cross_entropy(logits, labels[selected])
    return loss if extra is None else loss + extra


# --- checkpoints ---------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Progress of a run, saved in every checkpoint."""

    step: int = 0
    total_steps: int = 0
    examples_seen: int = 0
    elapsed_s: float = 0.0
    run_key: str = ""
    losses: list[tuple[int, float]] = field(default_factory=list)
    stopped_by_time: bool = False


def save_checkpoint(directory: Path, model: Any, optimizer: Any, scheduler: Any, state: TrainState) -> Path:
    """Write ``directory/last`` atomically (a crash mid-write keeps the previous one)."""
    import torch
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"tmp-{state.step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
    last, previous = directory / "last", directory / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    if last.exists():
        last.rename(previous)
    tmp.rename(last)
    shutil.rmtree(previous, ignore_errors=True)
    return last


def find_checkpoint(directory: Path) -> Path | None:
    """``directory/last`` (or ``previous`` after a crash between renames), if complete."""
    for name in ("last", "previous"):
        candidate = directory / name
        if (candidate / "state.json").exists() and (candidate / "rng.pt").exists():
            return candidate
    return None


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> TrainState:
    """Restore model, optimizer, scheduler and RNG states; return the saved progress."""
    import torch
    from safetensors.torch import load_model

    load_model(model, str(path / "model.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    raw = json.loads((path / "state.json").read_text(encoding="utf-8"))
    raw["losses"] = [tuple(x) for x in raw.get("losses", [])]
    known = {f.name for f in fields(TrainState)}
    return TrainState(**{k: v for k, v in raw.items() if k in known})


# --- the run -------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What a run did.

    Attributes:
        output_dir: the saved model (loadable with ``load_encoder``).
        checkpoint_dir: where the last checkpoint is (for ``resume``).
        state: final progress (steps, examples, loss history, time).
        kind: ``masked`` or ``causal``.
        n_examples, n_skipped: training examples used, and skipped for an empty answer.
        finished: all ``total_steps`` were done (False when stopped by ``max_minutes``).
    """

    output_dir: Path
    checkpoint_dir: Path
    state: TrainState
    kind: str
    n_examples: int
    n_skipped: int
    finished: bool


def _schedule(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _use_bf16(precision: str, device: str) -> bool:
    import torch

    if precision == "bf16":
        return True
    if precision == "auto":
        return device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return False


def train(settings: TrainSettings, *, resume: bool = False, overwrite: bool = False,
          progress: ProgressFactory | None = None, note: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune ``settings.model`` on ``settings.data`` and save an InBedder to ``settings.output_dir``.

    Args:
        settings: the run (checked first).
        resume: continue from the last checkpoint of this output directory (an error when the
            checkpoint was made with different settings); without one, start afresh.
        overwrite: allow an output directory that already holds files.
        progress: progress-bar factory (``bar(done_steps, total_steps)``).
        note: receives one-line reports: data, parameters, loss, speed and ETA.

    Raises:
        TrainingError: bad settings or data, an occupied output directory, a mismatched checkpoint.
    """
    import torch

    settings.check()
    say = note or (lambda message: None)
    output = Path(settings.output_dir).expanduser()
    if output.exists() and any(output.iterdir()) and not (overwrite or resume or (output / TRAINING_FILE).exists()):
        raise TrainingError(f"output directory '{output}' is not empty; pass --overwrite or another --output")
    checkpoints = settings.default_checkpoint_dir()
    found = find_checkpoint(checkpoints) if resume else None
    if not resume and find_checkpoint(checkpoints) is not None and not overwrite:
        raise TrainingError(f"a checkpoint of an earlier run for '{output}' is in {checkpoints}; pass --resume "
                            "to continue it or --overwrite to start afresh")

    examples, sources = read_examples(settings.data, max_examples=settings.max_examples)
    say(f"data: {len(examples)} examples from {len(sources)} source(s): "
        + ", ".join(f"{s.name} {s.n_examples}" for s in sources[:12]))
    from .encoder import choose_device

    device = choose_device(settings.device)
    model, tokenizer, kind, location = load_base(settings, say)
    builder = FeatureBuilder(model, tokenizer, kind, settings)
    features, skipped = builder.build_all(examples)
    if not features:
        raise TrainingError("no example has an answer with at least one token")
    if skipped:
        say(f"skipped {skipped} example(s): answer without a token, or question longer than max_length")
    trainable, total_params = freeze(model, settings)
    say(f"{kind} LM from {location}: {trainable:,} of {total_params:,} parameters trained on {device}")
    model.to(device)

    batches_per_epoch = math.ceil(len(features) / settings.batch_size)
    total_steps = settings.max_steps or max(1, math.ceil(batches_per_epoch * settings.epochs / settings.grad_accum))
    warmup = int(settings.warmup_ratio * total_steps)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=settings.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total_steps, warmup))
    state = TrainState(total_steps=total_steps, run_key=settings.run_key())
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    if found is not None:
        saved = load_checkpoint(found, model, optimizer, scheduler)
        if saved.run_key != state.run_key:
            raise TrainingError(f"the checkpoint in {found} was made with other settings (data, model or "
                                "hyper-parameters changed); rerun with the same ones, or --overwrite to start afresh")
        state = saved
        state.stopped_by_time = False
        say(f"resumed from {found} at step {state.step}/{total_steps}")
    elif resume:
        say(f"no checkpoint in {checkpoints}; starting afresh")

    lengths = [len(f.input_ids) for f in features]
    use_bf16 = _use_bf16(settings.precision, device)
    bar = progress("training") if progress else None
    started = time.monotonic()
    start_step, elapsed_before = state.step, state.elapsed_s
    window: list[float] = []
    epoch_batches: dict[int, list[list[int]]] = {}

    groups = [f.group for f in features]
    grouped = settings.kinds_per_batch > 0 and any(groups)

    def micro_batch(index: int) -> list[int]:
        epoch, within = divmod(index, batches_per_epoch)
        if epoch not in epoch_batches:
            epoch_batches.clear()
            epoch_batches[epoch] = (
                grouped_batch_order(groups, settings.batch_size, settings.kinds_per_batch, settings.seed, epoch,
                                    lengths)
                if grouped else batch_order(lengths, settings.batch_size, settings.seed, epoch))
        batches = epoch_batches[epoch]
        return batches[within % len(batches)]

    try:
        while state.step < total_steps:
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for micro in range(settings.grad_accum):
                index = micro_batch(state.step * settings.grad_accum + micro)
                batch = {k: v.to(device) for k, v in collate([features[i] for i in index], builder.pad_id).items()}
                batch["groups"] = [features[i].group for i in index]
                with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=use_bf16):
                    loss = answer_loss(model, kind, batch, contrastive_weight=settings.contrastive_weight,
                                       temperature=settings.contrastive_temperature,
                                       mask_id=getattr(builder, "mask_id", None)) / settings.grad_accum
                loss.backward()
                step_loss += float(loss.detach())
                state.examples_seen += len(index)
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            scheduler.step()
            state.step += 1
            window.append(step_loss)
            state.elapsed_s = elapsed_before + time.monotonic() - started
            if bar is not None:
                bar(state.step, total_steps)
            if state.step % settings.log_steps == 0 or state.step == total_steps:
                mean = sum(window) / len(window)
                state.losses.append((state.step, round(mean, 4)))
                window = []
                rate = (time.monotonic() - started) / max(1, state.step - start_step)
                eta = rate * (total_steps - state.step)
                say(f"step {state.step}/{total_steps}  loss {mean:.4f}  lr {scheduler.get_last_lr()[0]:.2e}  "
                    f"{rate:.2f} s/step  ETA {format_duration(eta)}")
            out_of_time = (settings.max_minutes is not None
                           and time.monotonic() - started >= settings.max_minutes * 60 and state.step < total_steps)
            if state.step % settings.save_steps == 0 or out_of_time:
                save_checkpoint(checkpoints, model, optimizer, scheduler, state)
            if out_of_time:
                state.stopped_by_time = True
                say(f"time limit of {settings.max_minutes} min reached at step {state.step}/{total_steps}; "
                    f"checkpoint in {checkpoints}, continue with --resume")
                break
    finally:
        if bar is not None:
            bar.close()
    if window:
        state.losses.append((state.step, round(sum(window) / len(window), 4)))
    if not state.stopped_by_time:
        save_checkpoint(checkpoints, model, optimizer, scheduler, state)
    save_model(model, tokenizer, output, settings=settings, kind=kind, base_location=location, sources=sources,
               state=state, n_examples=len(features))
    say(f"saved {'partial ' if state.stopped_by_time else ''}model to {output}")
    return TrainResult(output, checkpoints, state, kind, len(features), skipped, not state.stopped_by_time)


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


# --- saving --------------------------------------------------------------------------------------


def save_model(model: Any, tokenizer: Any, output: Path, *, settings: TrainSettings, kind: str,
               base_location: str, sources: Sequence[DataSource], state: TrainState, n_examples: int) -> Path:
    """Write weights, tokenizer, ``inbedder_training.json`` and a model card ``README.md``."""
    output.mkdir(parents=True, exist_ok=True)
    for stale in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (output / stale).unlink(missing_ok=True)  # would make the loader treat it as sentence-transformers
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    meta = training_metadata(settings=settings, kind=kind, base_location=base_location, sources=sources,
                             state=state, n_examples=n_examples)
    (output / TRAINING_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output / "README.md").write_text(model_card(meta), encoding="utf-8")
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


def iter_jsonl(path: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """Records of a JSONL(.gz) file (helper for data-mix scripts)."""
    with _open_text(Path(path)) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
