"""UMAP's numba compilation: where its on-disk cache lives (``configure_numba_cache``) and a
background ``warm_up`` that pays the 25-40 s compile once per process.
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


def _import_umap() -> Any:
    configure_numba_cache()
    import umap

    return umap


def warm_up(n_points: int = 60, random_state: int = 0, approximate: bool = True) -> float:
    """Compile UMAP's numba code now (or load it from the cache), off the analyst's path.

    Fits a tiny UMAP on random data: on the exact-neighbour path UMAP uses for small
    corpora and, when ``approximate``, once more forcing the approximate path
    (NN-descent) used from 4,096 documents, which has the most code numba does not
    cache on disk. Safe to call from a background thread; calling it again is cheap.

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
    for force in (False, True) if approximate else (False,):
        umap.UMAP(
            n_components=2,
            n_neighbors=5,
            metric="cosine",
            random_state=random_state,
            n_jobs=1,
            force_approximation_algorithm=force,
            n_epochs=20,
        ).fit_transform(X)
    return time.perf_counter() - start
