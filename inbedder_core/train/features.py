"""Examples to token features, with the prompt built by the encoder's own tokenization (so training and
inference cannot drift apart), padded batches, and the batch order of an epoch.

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
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..prompts import split_pattern
from .data import QAExample
from .settings import TrainSettings

IGNORE_INDEX = -100


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
        from ..encoder import CausalLMEncoder, MaskedLMEncoder

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
            self.end_id = self.prompter.end_token_id
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
        from ..errors import EncodingError

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


def slot_labels(features: Sequence[Feature]) -> set[int]:
    """The tokens the features teach a masked model's slots to give (their labels)."""
    return {label for feature in features for label in feature.labels if label != IGNORE_INDEX}


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
