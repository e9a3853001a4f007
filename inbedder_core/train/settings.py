"""``TrainSettings``: every value that decides a training run, checked, with the hash a resume must match."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ..errors import TrainingError
from ..prompts import INBEDDER_PATTERN, validate_pattern

MaskFill = Literal["eos", "ignore", "variable"]
MASK_FILLS: tuple[str, ...] = ("eos", "ignore", "variable")
PRECISIONS = ("auto", "fp32", "bf16")


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
        from ..settings import default_cache_dir

        out = str(Path(self.output_dir).expanduser().resolve())
        return default_cache_dir() / "training" / hashlib.sha256(out.encode()).hexdigest()[:16]
