"""``train``: one fine-tuning run from settings to a saved InBedder (data, base model, features, the
optimizer loop with checkpoints and a time limit, the saved model); ``format_duration`` for its reports.

``train`` stays over the ~50-line guide: it is the loop, and its state is shared by every step of it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from .base import freeze, load_base
from .card import TRAINING_FILE, answer_lexicon, save_model
from .checkpoints import TrainState, find_checkpoint, load_checkpoint, save_checkpoint
from .data import read_examples
from .features import FeatureBuilder, batch_order, collate, grouped_batch_order, slot_labels
from .loss import answer_loss
from .settings import TrainSettings

ProgressFactory = Callable[[str], Any]
"""``factory(description)`` returns ``bar(done, total)`` with a ``.close()``."""


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
    from ..encoder import choose_device

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
               state=state, n_examples=len(features), answers=answer_lexicon(examples),
               answer_tokens=slot_labels(features))
    say(f"saved {'partial ' if state.stopped_by_time else ''}model to {output}")
    return TrainResult(output, checkpoints, state, kind, len(features), skipped, not state.stopped_by_time)


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
