"""Placing new documents into a saved run without refitting: the fitted reducers and clusterer
kept in the run folder, the embeddings' fingerprint check, and the drift figure.

A run folder (``runs``) gains ``placement/``::

    placement/placement.json   schema, encoder fingerprint, per instruction: algorithm, thresholds,
                               and the SHA-256 of every file below
    placement/arrays.npz       per instruction: cluster centroids and ids, the fitted documents'
                               reduced vectors (no pickles)
    placement/reducer_<i>.pkl, map_<i>.pkl, clusterer_<i>.pkl   the fitted umap.UMAP (5-D and 2-D)
                               and hdbscan.HDBSCAN (with prediction data)

**Pickles.** umap-learn and hdbscan offer no format other than pickle for a fitted model, so
these three are pickled. A pickle runs code when loaded, so ``load_placement`` opens them only
from a folder this tool wrote (``run.json`` and ``placement.json`` with our schemas) and only
after checking each file's SHA-256 against the manifest; a file that differs is refused. Treat
a run folder like code: reopen only runs from your own cache or from someone you trust.

**Placing** (``place``): UMAP ``transform`` into the clustering space and onto the 2-D map,
then, for HDBSCAN, the label most common among the ``min_samples`` nearest fitted documents in the
clustering space (strength: its share of those votes; ``cluster.base.nearest_vote``) or the nearest KMeans
centroid (strength: the distance to it). With ``assign_noise`` the noise goes to the
nearest centroid, as in the fit. A saved run's edits are respected (``follow_edits``): a
document placed in a cluster that was merged lands in the merged cluster; in a split cluster,
in the part whose documents are nearest on the map.

**Drift**: a document fits poorly when it falls in noise, farther from its centroid than
``FAR_QUANTILE`` of the fitted documents were from theirs, or farther from its nearest fitted
document (in the embedding space) than ``FAR_QUANTILE`` of the fitted documents were from theirs.
When the share of poorly fitting new documents exceeds that of the fitted documents by more than
``DRIFT_MARGIN`` (15 points), the CLI and the app say ``DRIFT_MESSAGE``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cluster.base import nearest_vote
from .encoder import pools_prompt
from .errors import InBedderError
from .results import NOISE, InstructionResult
from .runs import RESULTS_FILE, RUN_FILE, RUN_SCHEMA

PLACEMENT_DIR = "placement"
MANIFEST_FILE = "placement.json"
PLACEMENT_SCHEMA = "inbedder-explorer/placement/1"
FAR_QUANTILE = 0.95
DRIFT_MARGIN = 0.15
"""New documents drift when their poorly fitting share exceeds the fitted documents' by this much."""
DRIFT_MESSAGE = "the new documents do not fit this map well; consider re-running"
FINGERPRINT_FIELDS = ("model_id", "kind", "pattern", "dtype")
"""What must match between the run's embeddings and the new documents' encoder."""


class PlacementError(InBedderError):
    """A run that cannot place documents (no placement data, another encoder, a changed file)."""


@dataclass
class QuestionPlacer:
    """What placing needs for one instruction of a run.

    Attributes:
        instruction: the question.
        algorithm: ``"hdbscan"`` or ``"kmeans"``.
        reducer: fitted ``umap.UMAP`` to the clustering space.
        map_reducer: fitted ``umap.UMAP`` to the 2-D map.
        clusterer: fitted ``hdbscan.HDBSCAN`` with prediction data (``None`` for KMeans).
        centroid_ids: ``int64 (k,)`` cluster ids (the fitted labels, noise excluded).
        centroids: ``float32 (k, n_components)`` mean reduced vector per cluster.
        far_distance: a point farther than this from its centroid fits poorly.
        fitted_poor_share: share of the fitted documents that fit poorly.
        assign_noise: noise goes to the nearest centroid (as in the fit).
        reduced: ``float32 (n, n_components)`` the fitted documents' reduced vectors.
        far_input: a point whose nearest fitted document (in the embedding space, the UMAP
            metric) is farther than this fits poorly (UMAP ``transform`` puts any point among
            fitted ones, so unlike documents are told apart here); ``inf`` when not measured.
    """

    instruction: str
    algorithm: str
    reducer: Any
    map_reducer: Any
    clusterer: Any
    centroid_ids: np.ndarray
    centroids: np.ndarray
    far_distance: float
    fitted_poor_share: float
    assign_noise: bool
    reduced: np.ndarray
    far_input: float = float("inf")


@dataclass
class Placement:
    """New documents placed under one instruction.

    Attributes:
        raw_labels: ``int64 (m,)`` the clusterer's cluster (``NOISE`` for noise), before noise
            assignment and edits.
        labels: ``int64 (m,)`` the cluster in the fitted labelling (noise assigned when the run did).
        strength: ``float64 (m,)`` HDBSCAN membership probability, or KMeans distance to the centroid.
        reduced: ``float32 (m, n_components)``; coords: ``float32 (m, 2)`` on the run's map.
        poor: ``bool (m,)`` in noise or far from every cluster.
    """

    instruction: str
    raw_labels: np.ndarray
    labels: np.ndarray
    strength: np.ndarray
    reduced: np.ndarray
    coords: np.ndarray
    poor: np.ndarray


@dataclass(frozen=True)
class Drift:
    """Poorly fitting shares of the new and of the fitted documents under one instruction."""

    new_share: float
    fitted_share: float

    @property
    def drifted(self) -> bool:
        return self.new_share - self.fitted_share > DRIFT_MARGIN

    def describe(self) -> str:
        line = (f"{100 * self.new_share:.1f}% of the new documents fall in noise or far from every cluster "
                f"(fitted documents: {100 * self.fitted_share:.1f}%)")
        return f"{line}; {DRIFT_MESSAGE}" if self.drifted else line


# --------------------------------------------------------------------------- building


def _nearest(Z: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid per row and the distance to it."""
    if len(centroids) == 0:
        return np.full(len(Z), -1, dtype=np.int64), np.full(len(Z), np.inf)
    d2 = ((Z[:, None, :].astype(np.float64) - centroids[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argmin(d2, axis=1)
    return nearest, np.sqrt(d2[np.arange(len(Z)), nearest])


def _nearest_fitted_distance(model: Any, X: np.ndarray) -> np.ndarray | None:
    """Distance from each row of ``X`` to its nearest fitted document in UMAP's input metric
    (cosine or euclidean; ``None`` for other metrics)."""
    raw = np.asarray(getattr(model, "_raw_data", np.zeros((0, X.shape[1]))), dtype=np.float32)
    if getattr(model, "metric", "") not in ("cosine", "euclidean") or raw.shape[0] == 0:
        return None
    return np.concatenate([_distances(model, X[start:start + 512], raw).min(axis=1)
                           for start in range(0, len(X), 512)])


def _nearest_other_distance(model: Any) -> np.ndarray | None:
    """Each fitted document's distance to its nearest *other* fitted document: from UMAP's own
    neighbour graph when it kept one (4,096 documents and more), else computed exactly."""
    knn = getattr(model, "_knn_dists", None)
    if knn is not None and np.ndim(knn) == 2 and np.shape(knn)[1] > 1:
        return np.asarray(knn, dtype=np.float64)[:, 1]  # column 0 is the document itself
    raw = np.asarray(getattr(model, "_raw_data", np.zeros((0, 1))), dtype=np.float32)
    if len(raw) < 2 or getattr(model, "metric", "") not in ("cosine", "euclidean"):
        return None
    out = np.empty(len(raw))
    for start in range(0, len(raw), 512):
        rows = slice(start, start + 512)
        d = _distances(model, raw[rows], raw)
        d[np.arange(d.shape[0]), np.arange(start, start + d.shape[0])] = np.inf
        out[rows] = d.min(axis=1)
    return out


def _distances(model: Any, X: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """``float64 (len(X), len(raw))`` distances in UMAP's metric (cosine or euclidean)."""
    A, B = X.astype(np.float64), raw.astype(np.float64)
    if model.metric == "cosine":
        A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
        B = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
        return np.maximum(1.0 - A @ B.T, 0.0)
    d2 = (A ** 2).sum(axis=1)[:, None] - 2.0 * A @ B.T + (B ** 2).sum(axis=1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def placer_from_analysis(analysis: Any, result: InstructionResult) -> QuestionPlacer:
    """The ``QuestionPlacer`` of one result just computed by ``analysis`` (an ``analysis.Analysis``).

    Uses the reducers it fitted (no refit); HDBSCAN is refitted on the same reduced vectors
    with prediction data (deterministic, and checked: the labels must equal the result's).

    Raises:
        PlacementError: the run used no UMAP model (too few documents), reduced with PCA first, or the
            refit differs.
    """
    settings = analysis.settings
    if settings.pca_components is not None:
        raise PlacementError(f"the run reduced the embeddings with PCA to {settings.pca_components} dimensions "
                             "first, and that projection is not saved: new documents cannot be placed into it; "
                             "cluster without --pca to save a run that places new documents")
    session = analysis.clustering_session(result.instruction)
    reducer = session.fitted(settings.reducer())
    map_reducer = session.fitted(settings.map_reducer(), start_from=settings.reducer())
    if getattr(reducer, "model_", None) is None or getattr(map_reducer, "model_", None) is None:
        raise PlacementError(f"the map of {result.instruction!r} was not made by UMAP (too few documents); "
                             "new documents cannot be placed into it")
    Z = session.reduced(settings.reducer())
    raw = np.asarray(result.raw_labels, dtype=np.int64)
    sample = session.sample_index_  # a run fitted on a sample: the sample is what was fitted
    fitted_Z = Z if sample is None else Z[sample]
    clusterer = None
    if settings.k is None:
        fitted = settings.clusterer(len(fitted_Z))
        fitted.prediction_data = True
        labels = fitted.fit_predict(fitted_Z)
        if fitted.model_ is None or not np.array_equal(labels, raw if sample is None else raw[sample]):
            raise PlacementError(f"HDBSCAN did not reproduce the clusters of {result.instruction!r}; "
                                 "new documents cannot be placed into this run")
        clusterer = fitted.model_
        clusterer.memory = None  # a temporary cache folder; not needed to predict
    ids = np.unique(raw[raw != NOISE])
    centroids = np.stack([Z[raw == c].mean(axis=0) for c in ids]).astype(np.float32) if ids.size else \
        np.zeros((0, Z.shape[1]), dtype=np.float32)
    _, dist = _nearest(Z, centroids)
    member = raw != NOISE
    own = np.linalg.norm(Z[member] - centroids[np.searchsorted(ids, raw[member])], axis=1)
    far = float(np.quantile(own, FAR_QUANTILE)) if own.size else float("inf")
    poor = (raw == NOISE) | (dist > far)
    if sample is not None:
        poor = poor[sample]  # judged on the documents UMAP was fitted on, as its distances below are
    far_input = float("inf")
    nearest_other = _nearest_other_distance(reducer.model_)
    if nearest_other is not None:
        far_input = float(np.quantile(nearest_other, FAR_QUANTILE))
        poor |= nearest_other > far_input
    return QuestionPlacer(result.instruction, "kmeans" if settings.k is not None else "hdbscan",
                          reducer.model_, map_reducer.model_, clusterer, ids.astype(np.int64), centroids, far,
                          float(poor.mean()) if len(poor) else 0.0, bool(settings.assign_noise),
                          np.asarray(fitted_Z, dtype=np.float32), far_input)


# --------------------------------------------------------------------------- placing


def place(placer: QuestionPlacer, embeddings: np.ndarray) -> Placement:
    """Place ``embeddings`` (``float32 (m, d)``, the run's encoder and instruction) into the run.

    Raises:
        PlacementError: the embeddings' dimension differs from the run's.
    """
    X = np.asarray(embeddings, dtype=np.float32)
    expected = getattr(placer.reducer, "_raw_data", np.zeros((0, X.shape[1]))).shape[1]
    if X.ndim != 2 or X.shape[1] != expected:
        raise PlacementError(f"embeddings of shape {X.shape} cannot be placed into a run fitted on "
                             f"{expected}-dimensional embeddings; use the run's model")
    if len(X) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Placement(placer.instruction, empty, empty, np.zeros(0), np.zeros((0, placer.centroids.shape[1]),
                         dtype=np.float32), np.zeros((0, 2), dtype=np.float32), np.zeros(0, dtype=bool))
    Z = np.asarray(placer.reducer.transform(X), dtype=np.float32)
    coords = np.asarray(placer.map_reducer.transform(X), dtype=np.float32)
    nearest, dist = _nearest(Z, placer.centroids)
    if placer.algorithm == "hdbscan":
        fitted = np.asarray(placer.clusterer.labels_, dtype=np.int64)
        k = int(getattr(placer.clusterer, "min_samples", None) or getattr(placer.clusterer, "min_cluster_size", 5))
        raw, strength = nearest_vote(Z, placer.reduced, fitted, k)
    else:
        raw = placer.centroid_ids[nearest].astype(np.int64)
        strength = dist.astype(np.float64)
    labels = raw.copy()
    if placer.assign_noise and len(placer.centroid_ids):
        labels[raw == NOISE] = placer.centroid_ids[nearest[raw == NOISE]]
    poor = (raw == NOISE) | (dist > placer.far_distance)
    if np.isfinite(placer.far_input):
        nearest_fitted = _nearest_fitted_distance(placer.reducer, X)
        if nearest_fitted is not None:
            poor |= nearest_fitted > placer.far_input
    return Placement(placer.instruction, raw, labels, strength, Z, coords, poor)


def drift(placer: QuestionPlacer, placement: Placement) -> Drift:
    return Drift(float(placement.poor.mean()) if len(placement.poor) else 0.0, placer.fitted_poor_share)


def follow_edits(base: InstructionResult, edited: InstructionResult, placement: Placement) -> np.ndarray:
    """The placed documents' clusters in the *edited* labelling (``int64 (m,)``).

    A placed document whose fitted cluster's documents now all carry one cluster (unchanged,
    renamed, merged) takes it; when they are spread over several (a split, moved documents),
    it takes the one whose documents (of that fitted cluster) are nearest on the map.
    """
    base_labels, now = np.asarray(base.labels), np.asarray(edited.labels)
    coords = np.asarray(base.coords, dtype=np.float64)
    out = placement.labels.copy()
    for cluster in np.unique(placement.labels):
        if cluster == NOISE:
            continue
        rows = np.flatnonzero(placement.labels == cluster)
        was = base_labels == cluster
        targets = np.unique(now[was & (now != NOISE)]) if was.any() else np.array([cluster])
        if targets.size == 0:
            out[rows] = NOISE
        elif targets.size == 1:
            out[rows] = targets[0]
        else:
            centres = np.stack([coords[was & (now == t)].mean(axis=0) for t in targets])
            pick, _ = _nearest(placement.coords[rows].astype(np.float64), centres)
            out[rows] = targets[pick]
    return out


# --------------------------------------------------------------------------- fingerprint


def check_fingerprint(run: Mapping[str, Any], encoder: Mapping[str, Any]) -> None:
    """Refuse an encoder whose model, kind, pattern, dtype or baseline pooling (``pools_prompt``) differs from
    the run's.

    Raises:
        PlacementError: naming both values of every field that differs.
    """
    differ = [f"{key}: run {run.get(key)!r}, new documents {encoder.get(key)!r}"
              for key in FINGERPRINT_FIELDS if str(run.get(key)) != str(encoder.get(key))]
    if pools_prompt(run) != pools_prompt(encoder):
        differ.append(f"pooling: run {run.get('pooling')!r}, new documents {encoder.get('pooling')!r} (load the "
                      f"encoder with pool_prompt={pools_prompt(run)})")
    if differ:
        raise PlacementError("the new documents would be embedded differently from this run ("
                             + "; ".join(differ) + "); embed them with the run's model and settings "
                             "(--model, --kind, --pattern, --dtype, --pool-prompt)")


# --------------------------------------------------------------------------- on disk


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_PICKLING = threading.Lock()
"""One pickling at a time in a process: numba gives a compiled function (inside a fitted UMAP) its id on
its first pickling without a lock, and two threads doing it at once fail (``assert self.__uuid is None``
in ``numba.core.dispatcher``): seen with eight app sessions saving their runs together."""


def save_placement(run_folder: str | os.PathLike[str], placers: Sequence[QuestionPlacer],
                   fingerprint: Mapping[str, Any]) -> Path:
    """Write ``run_folder/placement/`` (manifest last, so a half-written one is never read).

    Raises:
        PlacementError: the folder cannot be written.
    """
    folder = Path(run_folder) / PLACEMENT_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        questions, arrays = [], {}
        for i, p in enumerate(placers):
            files = {}
            for role, model in (("reducer", p.reducer), ("map", p.map_reducer), ("clusterer", p.clusterer)):
                if model is None:
                    continue
                path = folder / f"{role}_{i}.pkl"
                with open(path, "wb") as handle, _PICKLING:
                    pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
                files[role] = {"file": path.name, "sha256": _sha256(path)}
            arrays[f"centroids_{i}"] = p.centroids
            arrays[f"centroid_ids_{i}"] = p.centroid_ids
            arrays[f"reduced_{i}"] = p.reduced
            questions.append({"instruction": p.instruction, "algorithm": p.algorithm,
                              "far_distance": p.far_distance, "fitted_poor_share": p.fitted_poor_share,
                              "assign_noise": p.assign_noise, "far_input": p.far_input, "files": files})
        np.savez_compressed(folder / "arrays.npz", **arrays)
        manifest = {"schema": PLACEMENT_SCHEMA, "fingerprint": dict(fingerprint), "questions": questions,
                    "arrays_sha256": _sha256(folder / "arrays.npz")}
        partial = folder / f".{MANIFEST_FILE}.partial"
        partial.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, folder / MANIFEST_FILE)
    except OSError as error:
        raise PlacementError(f"cannot save what placing needs under '{folder}': {error.strerror or error}") from error
    return folder


def has_placement(run_folder: str | os.PathLike[str]) -> bool:
    return (Path(run_folder) / PLACEMENT_DIR / MANIFEST_FILE).is_file()


def load_placement(run_folder: str | os.PathLike[str]) -> tuple[dict[str, Any], list[QuestionPlacer]]:
    """``(fingerprint, placers)`` of a run folder written by this tool; hashes checked before unpickling.

    Raises:
        PlacementError: not a run folder, no placement data (a run saved without it), a
            file whose SHA-256 differs from the manifest, or unreadable files.
    """
    run = Path(run_folder)
    folder = run / PLACEMENT_DIR
    try:
        document = json.loads((run / RUN_FILE).read_text(encoding="utf-8"))
        if document.get("schema") != RUN_SCHEMA or not (run / RESULTS_FILE).is_file():
            raise PlacementError(f"'{run}' is not a saved run of this tool")
    except (OSError, ValueError, AttributeError) as error:
        raise PlacementError(f"'{run}' is not a saved run folder ({error}); pass the folder --save-run wrote") \
            from error
    if not has_placement(run):
        raise PlacementError(f"the run in '{run}' was saved without what placing needs; run it again "
                             "(inbedder cluster ... --save-run DIR) to place new documents into it")
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest.get("schema") != PLACEMENT_SCHEMA:
            raise PlacementError(f"'{folder}' holds placement data of another version; run it again")
        if _sha256(folder / "arrays.npz") != manifest["arrays_sha256"]:
            raise PlacementError(f"'{folder / 'arrays.npz'}' changed since it was saved; refused")
        placers = []
        with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
            for i, q in enumerate(manifest["questions"]):
                models = {}
                for role, entry in q["files"].items():
                    path = folder / Path(str(entry["file"])).name
                    if _sha256(path) != entry["sha256"]:
                        raise PlacementError(f"'{path}' changed since this tool saved it (SHA-256 differs); "
                                             "it is not loaded. Run the clustering again")
                    with open(path, "rb") as handle:
                        models[role] = pickle.load(handle)  # noqa: S301 - hash-checked file of our own run
                placers.append(QuestionPlacer(
                    str(q["instruction"]), str(q["algorithm"]), models["reducer"], models["map"],
                    models.get("clusterer"), arrays[f"centroid_ids_{i}"].astype(np.int64),
                    arrays[f"centroids_{i}"].astype(np.float32), float(q["far_distance"]),
                    float(q["fitted_poor_share"]), bool(q["assign_noise"]), arrays[f"reduced_{i}"],
                    float(q.get("far_input", float("inf")))))
    except (OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError, AttributeError) as error:
        raise PlacementError(f"the placement data in '{folder}' cannot be read ({error}); run it again") from error
    return dict(manifest["fingerprint"]), placers


def reduced_vectors(run_folder: str | os.PathLike[str], index: int) -> np.ndarray | None:
    """The fitted documents' clustering-space vectors of instruction ``index`` (0-based), read without
    unpickling anything; ``None`` when the run has no placement data."""
    path = Path(run_folder) / PLACEMENT_DIR / "arrays.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[f"reduced_{index}"].astype(np.float32)
    except (OSError, ValueError, KeyError):
        return None
