"""Checkpoints of a run (model, optimizer, scheduler, step, RNG states), written atomically, so that a
resumed run continues with the same batch order and ends where an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


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
