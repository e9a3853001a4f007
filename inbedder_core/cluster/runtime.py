"""UMAP's numba compilation: where its on-disk cache lives (``configure_numba_cache``), turning that
cache on for UMAP's and pynndescent's kernels (``enable_numba_caching``), so the compile is paid once per
machine rather than once per process, and a background ``warm_up``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

NUMBA_CACHE_SUBDIR = ("inbedder-explorer", "numba")


# --------------------------------------------------------------------------- numba


def default_numba_cache_dir() -> Path:
    """The folder used for numba's compiled-function cache: ``<user cache>/inbedder-explorer/numba``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(NUMBA_CACHE_SUBDIR[0], appauthor=False)) / NUMBA_CACHE_SUBDIR[1]


def configure_numba_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Point numba's on-disk cache at a persistent folder, before ``umap`` is imported.

    Sets ``NUMBA_CACHE_DIR`` unless the user already set it (their choice wins), creates
    the folder and, when numba is already imported, makes it re-read its settings. Has
    effect only for functions compiled after the call: call it before the first
    ``import umap`` (every function of this module that imports umap calls it first).

    Args:
        cache_dir: folder to use; default ``default_numba_cache_dir()``.

    Returns:
        The cache folder in effect, or ``None`` when it could not be created (numba
        then uses its own default and UMAP still works, only slower to start).
    """
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir is not None:
        chosen = os.fspath(cache_dir)
    elif not chosen:
        chosen = os.fspath(default_numba_cache_dir())
    try:
        Path(chosen).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if os.environ.get("NUMBA_CACHE_DIR") != chosen:
        os.environ["NUMBA_CACHE_DIR"] = chosen
        if "numba" in sys.modules:
            from numba.core import config as numba_config

            numba_config.reload_config()
    return Path(chosen)


_CACHING_ENABLED = False


def enable_numba_caching(packages: tuple[str, ...] = ("umap", "pynndescent")) -> int:
    """Turn numba's on-disk cache on for the module-level kernels of ``packages`` that do not ask for it.

    UMAP and pynndescent leave ``cache=True`` off most of their kernels, so each new process
    compiled them again (10-30 s). Caching them is safe: numba keys each entry on the source
    file's path, size and modification time and on the argument types, and falls back to
    compiling when it cannot cache (kernels that take a function as an argument, such as
    pynndescent's NN-descent, still compile once per process: see ``exact_neighbors``).
    ``INBEDDER_NUMBA_CACHE=0`` turns this off. Idempotent.

    Returns:
        How many kernels were switched to the on-disk cache by this call.
    """
    global _CACHING_ENABLED
    if _CACHING_ENABLED or os.environ.get("INBEDDER_NUMBA_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return 0
    _CACHING_ENABLED = True
    try:
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba reorganised
        return 0
    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache) and not value.signatures:
                try:
                    value.enable_caching()
                    switched += 1
                except Exception:  # noqa: BLE001 - a kernel numba cannot cache just compiles as before
                    pass
    return switched


def _import_umap() -> Any:
    configure_numba_cache()
    import umap
    import umap.layouts  # noqa: F401
    import umap.spectral  # noqa: F401
    import umap.umap_  # noqa: F401
    import umap.utils  # noqa: F401

    enable_numba_caching()
    return umap


def warm_up(n_points: int = 60, random_state: int = 0, approximate: bool = True) -> float:
    """Compile UMAP's numba code now (or load it from the cache), off the analyst's path.

    Fits a tiny UMAP on random data with the parallel layout the default settings use and,
    when ``approximate``, once more forcing the approximate neighbour path (NN-descent, used
    above ``EXACT_KNN_MAX_POINTS`` documents, whose core numba cannot cache on disk) and once
    seeded (the single-threaded layout of ``--seed``). With ``enable_numba_caching`` the rest
    loads from the on-disk cache after the first time on a machine. Safe to call from a
    background thread; calling it again is cheap.

    Returns:
        Seconds spent.
    """
    start = time.perf_counter()
    try:  # torch before scipy: scipy's array-API helpers trip over a torch half-imported by another thread
        import torch  # noqa: F401
    except ImportError:
        pass
    umap = _import_umap()
    rng = np.random.default_rng(random_state)
    X = rng.normal(size=(max(int(n_points), 10), 16)).astype(np.float32)
    # random_state=None: the parallel layout kernel the default (unseeded) settings use; a seeded run
    # uses the single-threaded one, which the second fit compiles.
    for force, seed in ((False, None), (True, None), (False, random_state)) if approximate else ((False, None),):
        umap.UMAP(
            n_components=2,
            n_neighbors=5,
            metric="cosine",
            random_state=seed,
            n_jobs=1 if seed is not None else -1,
            force_approximation_algorithm=force,
            n_epochs=20,
        ).fit_transform(X)
    if approximate:
        mark_nn_descent_compiled()
    return time.perf_counter() - start


_NN_DESCENT_COMPILED = False


def mark_nn_descent_compiled() -> None:
    """Record that this process has compiled pynndescent's NN-descent (its core cannot be cached on disk)."""
    global _NN_DESCENT_COMPILED
    _NN_DESCENT_COMPILED = True


def nn_descent_compiled() -> bool:
    """Whether NN-descent is already compiled in this process (by ``warm_up`` or an earlier fit), so using
    it costs no compile."""
    return _NN_DESCENT_COMPILED
