"""Output files that never cost an input or an hour of work: ``check_outputs`` refuses an output
that is (by path, link or hard link) a file the run reads, and prepares its folder before any work;
``write_file_set`` writes a run's files as one unit, with a manifest to tell a complete set.

What "one unit" means here: every file is first written in full to a temporary name beside its
target (a failure then changes nothing); the renames onto the targets follow, with SIGINT and
SIGTERM held back until the last one is done, so Ctrl-C leaves either the old set or the new set.
The manifest file (the run's JSON, renamed last) records each other file's size and SHA-256, so a
set cut by something that cannot be held back (SIGKILL, power loss) is told apart by
``verify_file_set`` rather than mistaken for complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .errors import ExportError

MANIFEST_KEY = "files"
"""The key of the manifest in the JSON file of a set: ``{file name: {"bytes": n, "sha256": hex}}``."""


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """``(real path, (st_dev, st_ino) or None when it does not exist)``."""
    real = os.path.realpath(path)
    try:
        stat = os.stat(real)
    except OSError:
        return real, None
    return real, (stat.st_dev, stat.st_ino)


def check_outputs(outputs: Sequence[str | os.PathLike[str]], reads: Sequence[str | os.PathLike[str]],
                  *, option: str = "--out") -> None:
    """Refuse outputs that are files the run reads, and make sure their folders can be written.

    An output is refused when it resolves (symbolic links followed) to the same path as one of
    ``reads``, or is the same file by device and inode (a hard link), or when two outputs are the
    same file. Missing folders are created, and each folder is tried with a temporary file, so a
    bad path fails before any work rather than after it.

    Raises:
        ExportError: an output is an input or another output; its name is longer than ``export.NAME_MAX`` bytes; its
            folder cannot be created or written.
    """
    from .export import staging_path

    read_ids = [(Path(r), *_identity(Path(r))) for r in reads]
    seen: dict[str, Path] = {}
    for out in map(Path, outputs):
        real, inode = _identity(out)
        for source, source_real, source_inode in read_ids:
            if real == source_real or (inode is not None and inode == source_inode):
                raise ExportError(f"{option} '{out}' would overwrite '{source}', which this run reads; "
                                  "choose another output name")
        if real in seen:
            raise ExportError(f"{option} '{out}' and '{seen[real]}' are the same file; choose another output name")
        seen[real] = out
        if os.path.isdir(real):
            raise ExportError(f"{option} '{out}' is a folder; give a file name inside it")
        staging_path(out, "check")  # a name too long for the file system, refused before any work
        prepare_folder(out.parent, option=option)


def prepare_folder(folder: str | os.PathLike[str], *, option: str = "--out") -> None:
    """Create ``folder`` (with its parents) and check that a file can be written in it.

    Raises:
        ExportError: it cannot be created, or a file cannot be written there.
    """
    path = Path(folder or ".")
    probe = path / f".inbedder-write-test-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ExportError(f"cannot create the folder '{path}' for {option} or write in it: {error.strerror or error}; "
                          "choose a folder you can write to") from error


@contextmanager
def deferred_signals(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold back ``signals`` inside the block; one that arrived is delivered (re-raised) after it.

    Only in the main thread (Python handles signals there); elsewhere the block runs unguarded.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous = {number: signal.getsignal(number) for number in signals}

    def hold(number: int, frame: Any) -> None:
        caught.append((number, frame))

    for number in signals:
        signal.signal(number, hold)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number, _frame in caught[:1]:
            os.kill(os.getpid(), number)  # delivered now, to the handler that was in place


def _fingerprint(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_file_set(files: Mapping[str | os.PathLike[str], bytes], manifest: str | os.PathLike[str],
                   payload: Mapping[str, Any]) -> list[Path]:
    """Write ``files`` and then ``manifest`` (``payload`` as JSON plus ``MANIFEST_KEY``) as one unit.

    See the module docstring for what that guarantees. Returns the paths written, manifest last.

    Raises:
        ExportError: a file cannot be written (nothing was changed then).
    """
    from .export import json_bytes, staging_path

    document = dict(payload)
    document[MANIFEST_KEY] = {Path(p).name: _fingerprint(data) for p, data in files.items()}
    ordered = [(Path(p), data) for p, data in files.items()] + [(Path(manifest), json_bytes(document))]
    token = f"{os.getpid()}.{uuid.uuid4().hex[:6]}"
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in ordered:
            tmp = staging_path(target, token)
            staged.append((tmp, target))
            tmp.write_bytes(data)
        with deferred_signals():
            for tmp, target in staged:
                os.replace(tmp, target)
    except OSError as error:
        raise ExportError(f"cannot write '{error.filename or ordered[len(staged) - 1][0]}': "
                          f"{error.strerror or error}; check that the folder is writable") from error
    finally:
        for tmp, _target in staged:
            with suppress(OSError):  # renamed already, or a name the system refused
                tmp.unlink(missing_ok=True)
    return [target for target, _data in ordered]


def verify_file_set(manifest: str | os.PathLike[str]) -> list[str]:
    """Problems with the set a manifest describes (empty: complete): files missing, or not the ones it
    was written with (another run's, or cut short).

    Raises:
        ExportError: the manifest cannot be read or has no ``MANIFEST_KEY``.
    """
    path = Path(manifest)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        listed = document[MANIFEST_KEY]
        assert isinstance(listed, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as error:
        raise ExportError(f"'{path}' is not the manifest of a file set ({error})") from error
    problems = []
    for name, expected in listed.items():
        member = path.with_name(name)
        try:
            found = _fingerprint(member.read_bytes())
        except OSError:
            problems.append(f"'{member}' is missing")
            continue
        if found != expected:
            problems.append(f"'{member}' is not the file this set was written with")
    return problems
