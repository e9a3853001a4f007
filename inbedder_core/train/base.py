"""The base model of a run: masked or causal (``choose_kind``), loaded for training (``load_base``; a bare
encoder such as a sentence-transformers ``BertModel`` gets a fresh masked-LM head tied to the word
embeddings), and partly frozen (``freeze``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import TrainingError
from .settings import TrainSettings


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

    from ..models import resolve_model

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
