"""Maps above a threshold, drawn by Embedding Atlas (issue 15): the threshold and point-cap settings, the
small table sent to the browser (and the rule that samples it past the cap), the browser's selection
predicate applied back to that table, and the component's files served from this machine.

Why a folder of our own: the library's Streamlit component (``embedding_atlas/widget_static/streamlit``)
loads DuckDB-WASM from cdn.jsdelivr.net at run time, so it draws nothing offline. ``component_folder``
copies the component and the DuckDB-WASM build that the same wheel ships for its own server
(``embedding_atlas/static/assets``, the same DuckDB-WASM version) into one folder and points the
component's one CDN address at that folder. Nothing is drawn by our code: the map is the library's.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import MapError
from .results import NOISE
from .settings import default_cache_dir, positive_int_setting

ATLAS_VERSION = "0.22.0"
"""The embedding-atlas release whose component layout ``component_folder`` expects (pinned in pyproject.toml):
one whose point view falls back to WebGL2 when the browser has no WebGPU (later releases, 0.26 for one,
draw points with WebGPU only and need its ``shader-f16`` feature)."""
ATLAS_THRESHOLD_ENV = "INBEDDER_ATLAS_THRESHOLD"
DEFAULT_ATLAS_THRESHOLD = 50_000
"""Maps of more documents than this are drawn by Embedding Atlas; up to it, by plotly (unchanged)."""
ATLAS_MAX_POINTS_ENV = "INBEDDER_ATLAS_MAX_POINTS"
DEFAULT_ATLAS_MAX_POINTS = 1_000_000
"""Most points sent to the browser; a bigger map is sampled (``sample_rows``) and says so."""
TEXT_CHARS = 160
"""Characters of each document sent for the hover card and the search (the full text is listed below the map)."""
ROW_COLUMN = "__doc"  # the document's index in the corpus; "__" keeps it out of the component's default charts
ROW_INDEX = "__row_index__"  # the component numbers the rows it received 0..n-1 under this name
CDN_BASE = re.compile(r"`https://cdn\.jsdelivr\.net/npm/\$\{\w+\}@\$\{\w+\}/dist/`")
DUCKDB_FILES = {  # the name the component asks for -> how the wheel's server bundle names it (plus a hash)
    "duckdb-eh.wasm": "duckdb-eh-", "duckdb-browser-eh.worker.js": "duckdb-browser-eh.worker-",
    "duckdb-mvp.wasm": "duckdb-mvp-", "duckdb-browser-mvp.worker.js": "duckdb-browser-mvp.worker-",
}


def atlas_threshold(value: int | None = None) -> int:
    """Documents above which Explore draws Embedding Atlas: ``value``, else ``INBEDDER_ATLAS_THRESHOLD``,
    else ``DEFAULT_ATLAS_THRESHOLD``.

    Raises:
        MapError: not a positive whole number.
    """
    return positive_int_setting(value, ATLAS_THRESHOLD_ENV, DEFAULT_ATLAS_THRESHOLD, "threshold", MapError)


def atlas_max_points(value: int | None = None) -> int:
    """Most points sent to the browser: ``value``, else ``INBEDDER_ATLAS_MAX_POINTS``, else the default.

    Raises:
        MapError: not a positive whole number.
    """
    return positive_int_setting(value, ATLAS_MAX_POINTS_ENV, DEFAULT_ATLAS_MAX_POINTS, "max_points", MapError)


def atlas_missing() -> str | None:
    """Why Embedding Atlas cannot be used here (``None`` when it can): the package is not installed."""
    if importlib.util.find_spec("embedding_atlas") is None:
        return (f"the embedding-atlas package is not installed (pip install embedding-atlas=={ATLAS_VERSION}; "
                "it needs Python 3.11 or newer)")
    return None


def sample_rows(labels: np.ndarray, max_points: int, random_state: int = 0) -> np.ndarray:
    """Which documents to draw when there are more than ``max_points``: every cluster (noise too) keeps its
    share of the map (largest remainders, at least one point each), chosen at random within it.

    Args:
        labels: ``int (n_docs,)`` cluster per document.
        max_points: the cap (``n_docs`` or more: every document).
    Returns:
        ``int64`` sorted document indices, ``min(n_docs, max_points)`` of them (a few more only when there are
        more clusters than ``max_points``).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    ids, counts = np.unique(labels, return_counts=True)
    exact = counts * (max_points / n)
    quota = np.floor(exact).astype(np.int64)
    spare = max_points - int(quota.sum())
    if spare > 0:
        quota[np.argsort(-(exact - quota), kind="stable")[:spare]] += 1
    quota = np.clip(quota, 1, counts)
    rng = np.random.default_rng(random_state)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = [rng.choice(order[s:s + c], size=q, replace=False) for s, c, q in zip(starts, counts, quota, strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _short(values: Sequence[Any], chars: int) -> list[str]:
    return ["" if v is None else (s if len(s := str(v)) <= chars else s[:chars - 1] + "…") for v in values]


def _category(values: Sequence[str]) -> pd.Categorical:
    """A dictionary-encoded column whose dictionary is Arrow ``string``: the component's Arrow reader does not
    know ``large_string``, which pandas 3 string categories would become."""
    categories = pd.Index(sorted(set(values)), dtype=object)
    return pd.Categorical.from_codes(categories.get_indexer(list(values)), categories=categories)


def map_frame(coords: np.ndarray, labels: np.ndarray, names: Mapping[int, str], texts: Sequence[str],
              answers: Sequence[str | None] | None = None, *, rows: np.ndarray | None = None,
              text_chars: int = TEXT_CHARS) -> pd.DataFrame:
    """The table the browser receives for one map: only what the map needs.

    Columns: ``x``, ``y`` (``float32``), ``cluster`` (the cluster's name, a pandas category: one dictionary,
    small indices), ``answer`` (category; only when there are answers), ``text`` (cut to ``text_chars``) and
    ``__doc`` (``int32``, the document's index in the corpus). ``rows``: the documents to send (default all).
    """
    rows = np.arange(len(labels), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    picked = np.asarray(labels)[rows]
    cluster_names = {int(c): ("Noise" if int(c) == NOISE else str(names.get(int(c), f"Cluster {int(c)}")))
                     for c in np.unique(picked)}
    frame = pd.DataFrame({
        "x": np.asarray(coords, dtype=np.float32)[rows, 0],
        "y": np.asarray(coords, dtype=np.float32)[rows, 1],
        "cluster": _category([cluster_names[int(c)] for c in picked]),
    })
    if answers is not None:
        frame["answer"] = _category(_short([answers[i] for i in rows], text_chars))
    frame["text"] = _short([texts[i] for i in rows], text_chars)
    frame[ROW_COLUMN] = rows.astype(np.int32)
    return frame


def label_points(coords: np.ndarray, labels: np.ndarray, names: Mapping[int, str]) -> list[dict[str, Any]]:
    """The cluster names drawn on the map: one label per non-noise cluster at its median point, bigger clusters
    first (the component's ``labels``: ``x``, ``y``, ``text``, ``priority``)."""
    labels = np.asarray(labels)
    out = []
    for cluster in np.unique(labels):
        if int(cluster) == NOISE:
            continue
        inside = labels == cluster
        x, y = np.median(np.asarray(coords)[inside], axis=0)
        out.append({"x": float(x), "y": float(y), "text": str(names.get(int(cluster), f"Cluster {int(cluster)}")),
                    "priority": int(inside.sum())})
    return sorted(out, key=lambda label: -label["priority"])


def selected_rows(frame: pd.DataFrame, predicate: str | None, shown: np.ndarray | None = None) -> list[int]:
    """The documents a map selection holds: the SQL ``predicate`` the component sent, evaluated by DuckDB over
    a copy of ``frame`` (``map_frame`` of every document, so a selection by place, cluster, answer or text
    reaches documents left out of a sampled map too), read-only: no files, no settings, one statement.

    Args:
        shown: the documents sent to the browser, in the order sent (default every row of ``frame``): the
            component numbers them ``__row_index__`` 0..n-1; documents not sent have no number there.
    Returns:
        The ``__doc`` values of the matching rows, sorted; ``[]`` for a blank predicate.
    Raises:
        MapError: the predicate is not one valid SQL condition on the map's columns (the message says which).
    """
    import duckdb

    if predicate is None or not str(predicate).strip():
        return []
    text = str(predicate)
    table = frame.copy()
    order = np.full(len(table), -1, dtype=np.int64)
    order[np.arange(len(table)) if shown is None else np.asarray(shown, dtype=np.int64)] = np.arange(
        len(table) if shown is None else len(shown))
    table[ROW_INDEX] = pd.array(np.where(order < 0, None, order), dtype="Int64")
    sql = f'SELECT "{ROW_COLUMN}" FROM map WHERE ({text})'
    connection = duckdb.connect(config={"enable_external_access": False, "autoload_known_extensions": False,
                                        "autoinstall_known_extensions": False, "lock_configuration": True})
    try:
        if len(duckdb.extract_statements(sql)) != 1:
            raise MapError(f"the map's selection is not one SQL condition: {text[:200]!r}; clear the selection")
        connection.register("map", table)
        found = connection.execute(sql).fetchnumpy()[ROW_COLUMN]
    except duckdb.Error as error:
        raise MapError(f"the map's selection could not be applied ({str(error).splitlines()[0]}); "
                       f"predicate {text[:200]!r}; clear the selection and select again") from None
    finally:
        connection.close()
    return sorted(int(i) for i in found)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("embedding_atlas")
    if spec is None or not spec.submodule_search_locations:
        raise MapError(atlas_missing() or "embedding-atlas is not importable")
    return Path(next(iter(spec.submodule_search_locations)))


def _place(source: Path, target: Path) -> None:
    """A hard link where the file system allows (the wheel's wasm files are 36-41 MB), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def component_folder(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder Streamlit serves the map component from, made once per embedding-atlas version under
    ``root`` (default ``default_cache_dir() / "atlas"``): the library's component, DuckDB-WASM beside it in
    ``duckdb/``, and the component's CDN address replaced by that folder's address.

    Raises:
        MapError: embedding-atlas is missing, or its files are not laid out as this version expects.
    """
    package = _package_dir()
    version = (package / "version.py").read_text(encoding="utf-8")
    number = re.search(r"__version__\s*=\s*[\"']([^\"']+)", version)
    folder = Path(root) if root is not None else default_cache_dir() / "atlas"
    folder = folder / f"component-{number.group(1) if number else 'unknown'}"
    if (folder / "index.html").exists():
        return folder
    source, assets = package / "widget_static" / "streamlit", package / "static" / "assets"
    scripts = sorted((source / "assets").glob("index-*.js"))
    if len(scripts) != 1 or not assets.is_dir():
        raise MapError(f"embedding-atlas at {package} is not laid out as expected (one component script and "
                       f"static/assets); install embedding-atlas=={ATLAS_VERSION}")
    work = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    (work / "duckdb").mkdir(parents=True)
    (work / "assets").mkdir()
    for path in (source / "assets").iterdir():
        if path != scripts[0]:
            _place(path, work / "assets" / path.name)
    script, count = CDN_BASE.subn("new URL(`../duckdb/`,import.meta.url).href", scripts[0].read_text("utf-8"))
    if count != 1:
        raise MapError(f"embedding-atlas's component at {scripts[0]} does not load DuckDB-WASM as expected; "
                       f"install embedding-atlas=={ATLAS_VERSION}")
    (work / "assets" / scripts[0].name).write_text(script, encoding="utf-8")
    for wanted, prefix in DUCKDB_FILES.items():
        suffix = Path(wanted).suffix
        found = [p for p in assets.glob(f"{prefix}*{suffix}") if p.name.count(".") == wanted.count(".")]
        if len(found) != 1:
            raise MapError(f"embedding-atlas at {package} has no single {prefix}*{suffix} in static/assets; "
                           f"install embedding-atlas=={ATLAS_VERSION}")
        _place(found[0], work / "duckdb" / wanted)
    shutil.copyfile(source / "index.html", work / "index.html")
    try:
        work.rename(folder)
    except OSError:  # another process made it first
        shutil.rmtree(work, ignore_errors=True)
    return folder


def synthetic_run(n_docs: int, *, n_clusters: int = 40, name: str = "synthetic.csv", random_state: int = 0,
                  root: str | os.PathLike[str] | None = None) -> tuple[bytes, str]:
    """A made-up corpus of ``n_docs`` documents and a saved run on it (blobs on a 2-D map, one cluster per blob,
    5% noise, an answer per document), for benchmarks and browser tests of big maps without embedding anything.

    Returns:
        (the corpus as CSV bytes, with columns ``id`` and ``text``: upload it in the app to reopen the run;
        the saved run's id). ``root``: where runs are saved (default ``runs.runs_dir()``).
    Raises:
        RunError: the run cannot be saved.
    """
    from .analysis import summarize_clusters
    from .io.load import load_corpus
    from .results import ClusterName, InstructionResult
    from .runs import save_run

    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, n_clusters, n_docs)
    labels[rng.random(n_docs) < 0.05] = NOISE
    centres = rng.uniform(-30, 30, size=(n_clusters + 1, 2))
    coords = (centres[labels] + rng.normal(scale=1.5, size=(n_docs, 2))).astype(np.float32)
    topics = [f"topic {c:02d}" for c in range(n_clusters)]
    texts = [f"doc {i}: a note about {topics[c] if c != NOISE else 'nothing in particular'}, case {i * 7919 % 100003}"
             for i, c in enumerate(labels)]
    data = pd.DataFrame({"id": np.arange(n_docs), "text": texts}).to_csv(index=False).encode("utf-8")
    corpus = load_corpus(data, name=name)
    answers = [topics[c] if c != NOISE else "unclear" for c in labels]
    names = [ClusterName(c, topics[c].title(), f"Notes about {topics[c]}", [topics[c]], [topics[c]], "keywords")
             for c in range(n_clusters)] + [ClusterName(NOISE, "Unclustered", "", [], [], "noise")]
    result = InstructionResult(instruction="What is the note about?", answers=answers, labels=labels.astype(np.int64),
                               raw_labels=labels.astype(np.int64), coords=coords,
                               clusters=summarize_clusters(labels, names, answers),
                               quality={"n_clusters": n_clusters, "noise_share": float(np.mean(labels == NOISE))})
    info = save_run(corpus, [result], model="synthetic", settings={}, root=root)
    return data, info.run_id


# For screenshots of the map's canvas alone (the browser test and ``benchmarks/bench_atlas.py``): Playwright
# ``evaluate`` functions of the canvas element that hide, then show again, everything drawn over it.
HIDE_ALL_BUT_CANVAS = """c => { const keep = new Set(); const roots = []; let n = c;
    while (n) { keep.add(n); const p = n.parentNode;
        if (p instanceof ShadowRoot) { roots.push(p); n = p.host; }
        else if (p === document) { roots.push(p); n = null; } else n = p; }
    for (const r of roots) for (const el of r.querySelectorAll('*'))
        if (!keep.has(el)) { el.dataset.hidden = el.style.visibility; el.style.visibility = 'hidden'; } }"""
SHOW_ALL = """c => { for (const r of [c.getRootNode(), document]) for (const el of r.querySelectorAll('[data-hidden]'))
    { el.style.visibility = el.dataset.hidden; delete el.dataset.hidden; } }"""
