"""The analysis pipeline: corpus -> embeddings -> reduce/cluster -> names -> comparison.

``Analysis`` holds one corpus and one encoder and memoises every stage per
instruction: embeddings (and the persistent cache under them), the reduced vectors
and the 2-D map (in a ``ClusteringSession``), so changing ``min_cluster_size`` or
``k`` re-runs only the clusterer and the naming. The CLI and the app both drive it.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from . import applicability
from .cluster.clusterers import HDBSCANClusterer, KMeansClusterer
from .cluster.reducers import MAP_EPOCHS, UMAPReducer
from .cluster.session import FIT_SAMPLE_ABOVE, FIT_SAMPLE_SIZE, ClusteringSession
from .comparison import (
    PairwiseComparison,
    compare_labelings,
    label_columns,
    label_matrix,
    pairwise_comparisons,
    score_against_gold,
)
from .encoder import Encoding, Fingerprint
from .errors import InBedderError
from .export import run_payload, to_jsonable
from .io.corpus import Corpus
from .name.keywords import KeywordLabeler, top_answers
from .results import NOISE, NOISE_NAME, ClusterName, ClusterSummary, InstructionResult

Stage = Callable[[str], None]
"""Called with a short message as each stage finishes (for the app's status and the CLI)."""


def auto_min_cluster_size(n_docs: int) -> int:
    """A default HDBSCAN ``min_cluster_size`` that grows with the corpus: ``clip(sqrt(n) / 3, 5, 100)``.

    Chosen on nine labeled corpora of 2,770 to 50,000 documents and 3 to 240 labels against the
    previous ``clip(n / 150, 5, 50)``: V-measure above it on seven, equal on two, below on none
    (``benchmarks/bench_defaults.py rules``; ``benchmarks/README.md``).
    """
    return int(min(100, max(5, round(math.sqrt(max(n_docs, 0)) / 3))))


def auto_min_samples(min_cluster_size: int) -> int:
    """The default HDBSCAN ``min_samples`` for a ``min_cluster_size``: 5 below 40 (small clusters keep
    their edges instead of losing them to noise), 10 from 40 (steadier densities in large corpora);
    never above ``min_cluster_size``."""
    return min(int(min_cluster_size), 5 if min_cluster_size < 40 else 10)


@dataclass(frozen=True)
class AnalysisSettings:
    """The knobs of the reduce/cluster stages (scikit-learn vocabulary).

    ``k`` set means KMeans with ``k`` clusters, else HDBSCAN with ``min_cluster_size``
    (``None``: ``auto_min_cluster_size``) and ``min_samples`` (``None``:
    ``auto_min_samples``: 5, or 10 from ``min_cluster_size`` 40). ``min_samples`` does not follow
    ``min_cluster_size`` (HDBSCAN's own default) on purpose: with it fixed, HDBSCAN's spanning tree
    is reused when only ``min_cluster_size`` changes, and a smaller ``min_samples`` leaves less noise.

    Above ``fit_sample_above`` documents, UMAP and the clusterer are fitted on a random sample of
    ``fit_sample_size`` (the same sample in every run) and the other documents are placed into it;
    ``min_cluster_size`` and ``min_samples`` then apply to the sample (the automatic ones follow its size).
    """

    n_neighbors: int = 15
    n_components: int = 5
    metric: str = "cosine"
    min_cluster_size: int | None = None
    min_samples: int | None = None
    k: int | None = None
    assign_noise: bool = False
    random_state: int | None = None
    map_min_dist: float = 0.1
    not_applicable: bool = False  # issue 13: documents without an answer in their own group (``applicability``)
    not_applicable_threshold: float = applicability.DEFAULT_SIMILARITY_THRESHOLD
    map_init: str = "reduction"
    map_epochs: int | None = MAP_EPOCHS
    pca_components: int | None = None
    fit_sample_above: int = FIT_SAMPLE_ABOVE
    fit_sample_size: int = FIT_SAMPLE_SIZE
    backend: str = "cpu"  # "cuml": RAPIDS cuML's UMAP and HDBSCAN on a CUDA GPU, every document fitted

    def reducer(self) -> UMAPReducer:
        return UMAPReducer(n_components=self.n_components, n_neighbors=self.n_neighbors, min_dist=0.0,
                           metric=self.metric, random_state=self.random_state, pca_components=self.pca_components,
                           backend=self._umap_backend())

    def _umap_backend(self) -> str:
        if self.backend not in ("cpu", "cuml"):
            raise InBedderError(f"backend={self.backend!r} is invalid; expected 'cpu' or 'cuml'")
        return "cuml" if self.backend == "cuml" else "umap"

    def map_reducer(self) -> UMAPReducer:
        return UMAPReducer(n_components=2, n_neighbors=self.n_neighbors, min_dist=self.map_min_dist,
                           metric=self.metric, random_state=self.random_state, init=self.map_init,
                           n_epochs=self.map_epochs, pca_components=self.pca_components,
                           backend=self._umap_backend())

    def clusterer(self, n_docs: int, memory: Any = None) -> HDBSCANClusterer | KMeansClusterer:
        """The clusterer these settings describe; ``memory`` caches HDBSCAN's spanning tree."""
        if self.k is not None:
            # k-means is cheap and deterministic for a given seed whatever the threads: always seeded.
            return KMeansClusterer(k=self.k, random_state=0 if self.random_state is None else self.random_state)
        if self._umap_backend() == "cuml":
            return HDBSCANClusterer(min_cluster_size=self.effective_min_cluster_size(n_docs),
                                    min_samples=self.effective_min_samples(n_docs), backend="cuml")
        return HDBSCANClusterer(min_cluster_size=self.effective_min_cluster_size(n_docs),
                                min_samples=self.effective_min_samples(n_docs), memory=memory)

    def fit_sample(self, n_docs: int) -> int | None:
        """How many of ``n_docs`` documents are fitted on (``None``: all of them; always on the cuML backend,
        whose UMAP cannot place new points)."""
        if self.backend == "cuml":
            return None
        return self.fit_sample_size if n_docs > self.fit_sample_above and self.fit_sample_size < n_docs else None

    def fitted_docs(self, n_docs: int) -> int:
        """The number of documents the clusterer is fitted on."""
        return self.fit_sample(n_docs) or n_docs

    def effective_min_cluster_size(self, n_docs: int) -> int:
        return self.min_cluster_size or auto_min_cluster_size(n_docs)

    def effective_min_samples(self, n_docs: int) -> int:
        return self.min_samples or auto_min_samples(self.effective_min_cluster_size(n_docs))

    def as_dict(self, n_docs: int) -> dict[str, Any]:
        out = asdict(self)
        out["fitted_documents"] = self.fitted_docs(n_docs)
        if self.k is None:
            out["min_cluster_size"] = self.effective_min_cluster_size(self.fitted_docs(n_docs))
            out["min_samples"] = self.effective_min_samples(self.fitted_docs(n_docs))
            out["algorithm"] = "hdbscan"
        else:
            out["algorithm"] = "kmeans"
        return out


@dataclass
class _InstructionState:
    encoding: Encoding
    session: ClusteringSession
    embed_seconds: float
    null_embeddings: np.ndarray | None = None  # NULL_TEXTS under this instruction (encoders without answers)
    closeness_embeddings: np.ndarray | None = None  # the documents as compared with them (``_applicability``)
    names: dict[tuple[int, bytes], tuple[Any, list[ClusterName]]] = field(default_factory=dict)


class Analysis:
    """One corpus, one encoder, any number of instructions, every stage memoised.

    Args:
        corpus: the documents.
        encoder: anything with ``encode(texts, instruction, ...) -> Encoding`` and a
            ``fingerprint`` (an ``Encoder`` or a ``CachedEncoder``).
        settings: reduce/cluster knobs; change them with ``with_settings``.
        labeler: names clusters (``KeywordLabeler`` by default; an ``LLMLabeler`` for LLM names).
        batch_size: passed to the encoder.
        answers: passed to the encoder (``None``: answers when they are free, i.e. masked models).

    Attributes:
        n_embeddings_: instructions embedded (``encode`` calls, or instructions of ``embed_all``).
    """

    def __init__(self, corpus: Corpus, encoder: Any, settings: AnalysisSettings | None = None,
                 labeler: Any = None, batch_size: int | None = None, answers: bool | None = None) -> None:
        self.corpus = corpus
        self.encoder = encoder
        self.settings = settings or AnalysisSettings()
        self.labeler = labeler if labeler is not None else KeywordLabeler()
        self.batch_size = batch_size
        self.answers = answers
        self.n_embeddings_ = 0
        self._states: dict[str, _InstructionState] = {}
        self._tree_cache: str | None = None

    def with_settings(self, **changes: Any) -> Analysis:
        """Change knobs in place (embeddings and memoised reductions are kept); returns self."""
        self.settings = replace(self.settings, **changes)
        return self

    def embedding(self, instruction: str, progress: Callable[[int, int], None] | None = None) -> Encoding:
        """The (memoised) encoding of the corpus under ``instruction``."""
        return self._state(instruction, progress).encoding

    def shares_prefix(self, instructions: Sequence[str]) -> bool:
        """Whether embedding ``instructions`` together (``embed_all``) runs each document's prompt prefix once
        (a causal encoder and two or more questions after the document, ``Encoder.shares_prefix``)."""
        share = getattr(self.encoder, "shares_prefix", None)
        return bool(share is not None and share(list(instructions)))

    def use_encoding(self, instruction: str, encoding: Encoding) -> None:
        """Use ``encoding`` (one vector per corpus document, in order: e.g. ``embedding_io.read_for_corpus``
        of a sharded run's output) for ``instruction`` instead of embedding here.

        Raises:
            InBedderError: an empty instruction, or not one vector per document.
        """
        instruction = check_instruction(instruction)
        if len(encoding.embeddings) != len(self.corpus):
            raise InBedderError(f"{len(encoding.embeddings):,} vectors given for {len(self.corpus):,} documents; "
                                "pass one per document, in the corpus's order")
        self._states[instruction] = _InstructionState(encoding, self._session(encoding.embeddings), 0.0)

    def embed_all(self, instructions: Sequence[str], progress: Callable[[int, int], None] | None = None
                  ) -> list[Encoding]:
        """The (memoised) encodings of ``instructions``, those not embedded yet in one ``encode_many`` call, so a
        causal encoder runs each document's prompt prefix once for all of them; the embedding time is split
        evenly between them. ``progress(done, total)`` counts (document, instruction) pairs.

        Raises:
            InBedderError: an empty instruction, or the encoder's error.
        """
        checked = [check_instruction(instruction) for instruction in instructions]
        new = list(dict.fromkeys(instruction for instruction in checked if instruction not in self._states))
        many = getattr(self.encoder, "encode_many", None)
        if len(new) > 1 and many is not None:
            start = time.perf_counter()
            encodings = many(self.corpus.texts, new, batch_size=self.batch_size, answers=self.answers,
                             progress=progress)
            seconds = (time.perf_counter() - start) / len(new)
            for instruction, encoding in zip(new, encodings, strict=True):
                self.n_embeddings_ += 1
                self._states[instruction] = _InstructionState(encoding, self._session(encoding.embeddings),
                                                              seconds)
        return [self._state(instruction, progress).encoding for instruction in checked]

    def clustering_session(self, instruction: str) -> ClusteringSession:
        """The (memoised) ``ClusteringSession`` of ``instruction``: its fitted reducers, for ``placement``."""
        return self._state(instruction).session

    def _session(self, embeddings: np.ndarray) -> ClusteringSession:
        """A clustering session fitted on the sample the settings ask for (seeded by their random state)."""
        seed = 0 if self.settings.random_state is None else int(self.settings.random_state)
        return ClusteringSession(embeddings, fit_sample=self.settings.fit_sample(len(embeddings)), sample_seed=seed)

    def _state(self, instruction: str, progress: Callable[[int, int], None] | None = None) -> _InstructionState:
        instruction = check_instruction(instruction)
        state = self._states.get(instruction)
        if state is None:
            start = time.perf_counter()
            encoding = self.encoder.encode(self.corpus.texts, instruction, batch_size=self.batch_size,
                                           answers=self.answers, progress=progress)
            self.n_embeddings_ += 1
            state = _InstructionState(encoding, self._session(encoding.embeddings),
                                      time.perf_counter() - start)
            self._states[instruction] = state
        elif state.session.fit_sample != self.settings.fit_sample(state.session.n_points):
            state.session = self._session(state.encoding.embeddings)  # the sample settings changed
        return state

    def run(self, instruction: str, *, progress: Callable[[int, int], None] | None = None,
            stage: Stage | None = None) -> InstructionResult:
        """Embed (or reuse), reduce (or reuse), cluster and name the corpus under ``instruction``.

        Raises:
            InBedderError: an empty instruction, or any stage's error.
        """
        report = stage or (lambda message: None)
        reused = check_instruction(instruction) in self._states
        state = self._state(instruction, progress)
        encoding = state.encoding
        timings = {"embed": state.embed_seconds}
        if reused:
            report(f"reused the embeddings of {len(self.corpus)} documents")
        else:
            cut = f"; {encoding.n_truncated} too long, cut before tokenizing" if encoding.n_truncated else ""
            report(f"embedded {len(self.corpus)} documents ({encoding.n_cached} from cache{cut})")
        settings = self.settings
        reducer, map_reducer = settings.reducer(), settings.map_reducer()
        session = state.session
        placed = session.place_seconds_  # placing the documents outside a fitted sample is its own stage
        start = time.perf_counter()
        reduced = session.reduced(reducer)
        timings["reduce"] = time.perf_counter() - start - (session.place_seconds_ - placed)
        placed_before_map = session.place_seconds_
        start = time.perf_counter()
        coords = session.coords(map_reducer, reducer=reducer)
        timings["map"] = time.perf_counter() - start - (session.place_seconds_ - placed_before_map)
        report("reduced with UMAP")
        clusterer = settings.clusterer(settings.fitted_docs(len(self.corpus)), memory=self._hdbscan_memory())
        outcome = session.cluster(clusterer, assign_noise=settings.assign_noise, reducer=reducer)
        timings["cluster"] = outcome.timings.get("cluster", 0.0)
        if session.sample_index_ is not None:
            timings["place"] = session.place_seconds_ - placed
            report(session.sample_note or "")
        report(f"found {outcome.quality.get('n_clusters', 0)} clusters")
        applies = self._applicability(state, instruction) if settings.not_applicable else None
        labels = outcome.labels if applies is None else np.where(applies.mask, NOISE, outcome.labels)
        start = time.perf_counter()
        names, errors = self._names(state, instruction, labels, reduced)  # named without "does not apply"
        timings["label"] = time.perf_counter() - start
        report("named the clusters")
        summaries = summarize_clusters(outcome.labels, names, encoding.answers)
        quality = dict(outcome.quality)
        if encoding.n_truncated:  # documents cut before tokenizing (see encoder.CHARS_PER_TOKEN_CAP)
            quality["n_truncated"] = encoding.n_truncated
        if errors:
            quality["naming_errors"] = errors
        result = InstructionResult(instruction=instruction, answers=encoding.answers, labels=outcome.labels,
                                   raw_labels=outcome.raw_labels, coords=coords, clusters=summaries,
                                   quality=quality, timings=timings)
        if applies is not None:
            result = applicability.separate(result, applies)
            report(f"{applies.count} documents: the question does not apply")
        return result

    def _applicability(self, state: _InstructionState, instruction: str) -> applicability.Applicability:
        """Which documents ``instruction`` does not apply to: from the answers, else from closeness to the
        embedding of ``applicability.NULL_TEXTS`` under the same instruction (embedded once), both embedded
        by the encoder's ``closeness_encoder()`` where it has one (the baseline with the question's tokens
        averaged in: one more pass over the documents, cached)."""
        encoding = state.encoding
        if encoding.answers is None and state.null_embeddings is None:
            closeness = getattr(self.encoder, "closeness_encoder", None)
            encoder = closeness() if closeness is not None else self.encoder
            state.closeness_embeddings = encoding.embeddings if encoder is self.encoder else encoder.encode(
                self.corpus.texts, instruction, batch_size=self.batch_size, answers=False).embeddings
            state.null_embeddings = encoder.encode(list(applicability.NULL_TEXTS), instruction,
                                                   batch_size=self.batch_size, answers=False).embeddings
        return applicability.decide(encoding.answers, state.closeness_embeddings, state.null_embeddings,
                                    self.settings.not_applicable_threshold)

    def _hdbscan_memory(self) -> str:
        """A private directory where HDBSCAN caches its spanning trees, removed with this object."""
        if self._tree_cache is None:
            self._tree_cache = tempfile.mkdtemp(prefix="inbedder-hdbscan-")
            weakref.finalize(self, shutil.rmtree, self._tree_cache, ignore_errors=True)
        return self._tree_cache

    def _names(self, state: _InstructionState, instruction: str, labels: np.ndarray,
               reduced: np.ndarray) -> tuple[list[ClusterName], list[str]]:
        """Names for ``labels`` and the naming errors of this call.

        Memoised per labeler object and labelling, and only when naming had no error, so a
        new labeler (e.g. a fixed endpoint) or a retry after a failure really runs again.
        """
        key = (id(self.labeler), labels.tobytes())
        memo = state.names.get(key)
        if memo is not None and memo[0] is self.labeler:
            return memo[1], []
        names = self.labeler.label(self.corpus.texts, labels, state.encoding.answers, instruction, vectors=reduced)
        errors = [str(e) for e in (getattr(self.labeler, "errors_", None) or [])]
        if not errors:
            state.names[key] = (self.labeler, names)
        return names, errors

    def run_all(self, instructions: Sequence[str], *, progress: Callable[[int, int, int], None] | None = None,
                stage: Stage | None = None) -> list[InstructionResult]:
        """``run`` each instruction in order; ``progress(instruction_number, done, total)``.

        When the encoder ``shares_prefix`` for them, the new instructions are first embedded together
        (``embed_all``), reported as ``progress(0, done, total)`` over (document, instruction) pairs.
        """
        if self.shares_prefix(instructions):
            self.embed_all(instructions, None if progress is None else (lambda d, t: progress(0, d, t)))
        results = []
        for number, instruction in enumerate(instructions, start=1):
            inner = None if progress is None else (lambda d, t, n=number: progress(n, d, t))
            results.append(self.run(instruction, progress=inner, stage=stage))
        return results


MAX_INSTRUCTIONS = 8


def parse_instructions(text: str, max_instructions: int = MAX_INSTRUCTIONS) -> list[str]:
    """One instruction per non-blank line, stripped, repeats dropped, in order.

    Raises:
        InBedderError: more than ``max_instructions`` distinct instructions.
    """
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if line.strip():
            seen.setdefault(line.strip(), None)
    if len(seen) > max_instructions:
        raise InBedderError(f"{len(seen)} instructions given; at most {max_instructions} per run. "
                            "Remove some lines and run again")
    return list(seen)


def settings_record(settings: AnalysisSettings, n_docs: int, **extra: Any) -> dict[str, Any]:
    """The settings a saved run records: the analysis settings as chosen and as in effect for ``n_docs``
    documents, plus ``extra`` (naming mode, LLM model, labeller note, device)."""
    return {"analysis": asdict(settings), "effective": settings.as_dict(n_docs), **extra}


def settings_from_record(recorded: Mapping[str, Any]) -> AnalysisSettings:
    """The ``AnalysisSettings`` of a ``settings_record``; fields this version does not know are ignored."""
    known = {f.name for f in fields(AnalysisSettings)}
    return AnalysisSettings(**{k: v for k, v in (recorded.get("analysis") or {}).items() if k in known})


def check_instruction(instruction: str) -> str:
    """``instruction`` if it can be asked: a string with a non-blank character and no NUL.

    Raises:
        InBedderError: an empty or blank instruction, or one holding a NUL character (no CSV export can carry
            it, so the run would fail at its end).
    """
    if not isinstance(instruction, str) or not instruction.strip():
        raise InBedderError("the instruction is empty; ask a question such as 'What does the customer need?'")
    if "\x00" in instruction:
        shown = instruction.replace("\x00", "\\x00")[:80]
        raise InBedderError(f"the instruction '{shown}' contains a NUL character (\\x00), which no export can carry; "
                            "remove it and ask again")
    return instruction


def summarize_clusters(labels: np.ndarray, names: Sequence[ClusterName],
                       answers: Sequence[str] | None, n_top_answers: int = 5) -> list[ClusterSummary]:
    """One ``ClusterSummary`` per cluster id present in ``labels`` (noise included), largest first, noise last."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    by_id = {name.cluster_id: name for name in names}
    common = top_answers(answers, labels, n=n_top_answers) if answers is not None else {}
    ids, counts = np.unique(labels, return_counts=True)
    out = []
    for cluster_id, count in zip(ids.tolist(), counts.tolist(), strict=True):
        name = by_id.get(cluster_id)
        if name is None:
            name = ClusterName(cluster_id, NOISE_NAME if cluster_id == NOISE else f"Cluster {cluster_id}", "",
                               source="noise" if cluster_id == NOISE else "keywords")
        keywords = name.answer_keywords or name.keywords
        out.append(ClusterSummary(cluster_id=cluster_id, size=count, share=count / n if n else 0.0,
                                  name=name.name, description=name.description, keywords=list(keywords),
                                  top_answers=list(common.get(cluster_id, [])), source=name.source))
    out.sort(key=lambda s: (s.cluster_id == NOISE, -s.size, s.cluster_id))
    return out


def names_of(result: InstructionResult) -> dict[int, str]:
    """cluster id -> display name of one result; a name two clusters share gets ``" #<id>"``, so legends,
    pickers and comparison tables can tell them apart."""
    counts = Counter(c.name for c in result.clusters)
    return {c.cluster_id: c.name if counts[c.name] == 1 else f"{c.name} #{c.cluster_id}" for c in result.clusters}


def compare_results(results: Sequence[InstructionResult]) -> PairwiseComparison:
    """Pairwise ARI/NMI over instruction results (noise as its own cluster)."""
    return pairwise_comparisons({f"{i}: {r.instruction}": r.labels for i, r in enumerate(results, start=1)})


def compare_pair(a: InstructionResult, b: InstructionResult, noise: str = "separate"):
    """Contingency table and best matches of two results, with cluster names (shown after the ids there,
    so the plain names: ``"5: card declined"``, not ``"5: card declined #5"``)."""
    plain_a = {c.cluster_id: c.name for c in a.clusters}
    plain_b = {c.cluster_id: c.name for c in b.clusters}
    return compare_labelings(a.labels, b.labels, names_a=plain_a, names_b=plain_b, noise=noise,  # type: ignore[arg-type]
                             label_a=a.instruction, label_b=b.instruction)


def gold_scores(results: Sequence[InstructionResult], gold: Sequence[str]) -> list[dict[str, Any]]:
    """V-measure, ARI, ... of each result against a gold label column, in instruction order."""
    return [{"instruction_index": i, "instruction": r.instruction, **score_against_gold(r.labels, gold)}
            for i, r in enumerate(results, start=1)]


def corpus_label_matrix(corpus: Corpus, results: Sequence[InstructionResult],
                        columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``comparison.label_matrix`` of ``results`` (questions named ``"i: instruction"``) against
    ``columns`` of the corpus (``None``: every column that looks like a label,
    ``comparison.label_columns``); ``[]`` when there is none."""
    if columns is None:
        columns = label_columns(corpus.table, exclude=[corpus.text_column])
    if not columns or not results:
        return []
    rows = label_matrix({f"{i}: {r.instruction}": r.labels for i, r in enumerate(results, start=1)},
                        {c: corpus.table[c].tolist() for c in columns})
    for row in rows:
        index, _, instruction = row["question"].partition(": ")
        row.update(instruction_index=int(index), instruction=instruction)
    return rows


STAGES = ("embed", "reduce", "map", "cluster", "place", "label")
"""``place``: documents outside a fitted sample placed into it (0 below ``AnalysisSettings.fit_sample_above``)."""

_UMAP_S_PER_DOC = 1.5e-3
"""Rough seconds per document of one UMAP fit on two CPU cores (measured on 3k-20k documents)."""
_CLUSTER_S_PER_DOC = 2e-4
"""Rough seconds per document of HDBSCAN on 5 UMAP dimensions."""


_PLACE_S_PER_DOC = 2e-4
"""Rough seconds per document placed into a fitted sample (above ``AnalysisSettings.fit_sample_above``)."""


def estimate_stages(encoder: Any, texts: Sequence[str], n_instructions: int, *, naming_budget: float | None = None,
                    sample: int = 8, instruction: str = "What is this about?",
                    fitted: int | None = None) -> dict[str, float]:
    """Seconds each stage will take, roughly, before a long run: ``{"embed", "reduce", "map", "cluster",
    "place", "label", "total"}``; ``fitted``: the documents UMAP and the clusterer are fitted on when that is
    a sample (``AnalysisSettings.fit_sample``), the others being placed.

    The embedding time is measured, not guessed: ``sample`` documents spread over the corpus are
    encoded once by the model on its device (through the cache when ``encoder`` is a
    ``CachedEncoder``'s inner encoder is used, so the time is that of a miss) and scaled to the
    corpus and the number of instructions; cached documents make the real run faster. UMAP and
    HDBSCAN use rough per-document rates; ``label`` is the naming budget per instruction (0 for keywords).
    """
    n = len(texts)
    inner = getattr(encoder, "encoder", encoder)
    step = max(1, n // max(1, sample))
    picked = list(texts[::step][:sample])
    started = time.perf_counter()
    remote = getattr(getattr(inner, "fingerprint", None), "kind", "") == "llm-answers"
    if picked and not remote:  # an llm:NAME model is never timed: that would send requests (its plan shows them)
        inner.encode(picked, instruction, answers=False)
    per_doc = 0.0 if remote else (time.perf_counter() - started) / max(1, len(picked))
    fit = n if fitted is None else min(n, fitted)
    stages = {
        "embed": per_doc * n * n_instructions,
        "reduce": _UMAP_S_PER_DOC * fit * n_instructions,
        "map": _UMAP_S_PER_DOC * fit * n_instructions,
        "cluster": _CLUSTER_S_PER_DOC * fit * n_instructions,
        "place": _PLACE_S_PER_DOC * (n - fit) * n_instructions,
        "label": float(naming_budget or 0.0) * n_instructions,
    }
    stages["total"] = sum(stages.values())
    return stages


def format_seconds(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"7 h 20 min"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def describe_estimate(stages: Mapping[str, float], n_docs: int, device: str) -> str:
    """One line: ``estimated time for 1,000,000 documents on cpu: embed ~6 h, ...; total ~7 h 20 min``."""
    parts = [f"{stage} ~{format_seconds(stages[stage])}" for stage in (*STAGES,) if stages.get(stage)]
    return (f"estimated time for {n_docs:,} documents on {device}: {', '.join(parts)}; "
            f"total ~{format_seconds(stages['total'])}")


def run_report(corpus: Corpus, results: Sequence[InstructionResult], *, settings: AnalysisSettings, model: str,
               fingerprint: Fingerprint | None, labeler: str, label_column: str | None = None,
               extra_parameters: dict[str, Any] | None = None,
               edits: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON report of a run (``inbedder cluster``'s ``OUT.json`` and the app's download).

    ``edits``: the cluster edits replayed on ``results`` (``edits.EditLog.as_json``), listed under
    ``"edits"`` (an empty list when there are none).

    ``export.run_payload`` plus what both front ends add: pairwise ARI/NMI when several
    instructions were run, scores against ``label_column`` when given, the settings as
    used, summed per-stage timings and the encoder fingerprint, and ``label_matrix``: every
    instruction scored against every label column of the corpus (``corpus_label_matrix``, with
    ``label_column`` added when it is not detected as one), the best instruction per column marked.
    """
    comparisons = None
    if len(results) > 1:
        pairwise = compare_results(results)
        comparisons = {"noise": pairwise.noise, "ari": pairwise.ari, "nmi": pairwise.nmi}
    scores = gold_scores(results, corpus.table[label_column].tolist()) if label_column else None
    parameters = {**settings.as_dict(len(corpus)), "labeler": labeler, "label_column": label_column,
                  **(extra_parameters or {})}
    timings = {stage: sum(r.timings.get(stage, 0.0) for r in results) for stage in STAGES}
    payload = run_payload(corpus, results, model=model, fingerprint=fingerprint.digest() if fingerprint else "",
                          parameters=parameters, timings=timings, comparisons=comparisons, gold_scores=scores)
    payload["encoder"] = dict(fingerprint.__dict__) if fingerprint else None
    payload["edits"] = [dict(edit) for edit in edits or []]
    columns = label_columns(corpus.table, exclude=[corpus.text_column])
    if label_column and label_column not in columns:
        columns.append(label_column)
    payload["label_matrix"] = {"columns": columns, "noise": "one cluster",
                               "rows": to_jsonable(corpus_label_matrix(corpus, results, columns))}
    return payload
