"""Shared document prefixes: a causal model runs each document's prompt prefix once, then only each
question's own tokens over the prefix's cached keys and values.

In the InBedder prompt the document comes before the question, so in a causal (decoder-only) model
the keys and values of everything before the question are the same under every question. The split is
made on the token ids of the full prompts, never by tokenizing the prefix on its own: byte-level BPE
merges across the boundary (a document ending in a newline joins ``"\\n\\n### Instruction"``), and a
long document is cut to fit each question's length. So the shared prefix of a document is the longest
common prefix of its full prompts' ids, which is exactly what every question would have computed.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def split_rows(rows: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """``(prefix, suffixes)`` of one document's full prompt ids under each question.

    ``prefix`` is the longest common prefix of ``rows``, cut so that every question keeps at
    least one token of its own (the last token's state is the embedding); ``prefix + suffixes[q]
    == rows[q]``.
    """
    first = rows[0]
    limit = min(len(r) for r in rows) - 1
    n = 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return list(first[:n]), [list(r[n:]) for r in rows]


def cache_argument(base: Any) -> str | None:
    """The name under which ``base.forward`` takes a key/value cache (``cache`` in transformers 5,
    ``past_key_values`` before), or ``None`` when it takes none."""
    parameters = inspect.signature(base.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in parameters), None)


def _right_pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def last_states(model: Any, prefixes: Sequence[Sequence[int]], suffixes: Sequence[Sequence[Sequence[int]]], *,
                pad_id: int, device: Any, answer_tokens: int = 0
                ) -> tuple[list[torch.Tensor], list[list[list[int]]] | None]:
    """Last-layer state of each question's final prompt token (and greedy answers), the prefixes run once.

    Args:
        model: the causal LM (``*ForCausalLM``); its ``base_model`` takes ``position_ids`` and a cache.
        prefixes: one id list per document (may be empty).
        suffixes: per question, one id list per document, each non-empty; ``prefixes[i] +
            suffixes[q][i]`` is document ``i``'s full prompt under question ``q``.
        answer_tokens: when positive, also ``model.generate`` greedy answers of at most that many
            tokens from the same cache.

    Returns:
        per question, a ``float32 (len(prefixes), dim)`` tensor; and per question the new token ids
        of each document's answer, or ``None`` when ``answer_tokens`` is 0.

    The prefixes are right-padded; each question's pass sees ``[prefix, pads, suffix, pads]`` with
    an attention mask over the real tokens only and positions that continue each document's own
    prefix length, so the states equal those of the full prompt run alone. An empty prefix gets one
    masked-out placeholder token in the prefix pass (no attention row is left without a key). After
    each question the cache is cropped back to the prefix.
    """
    import torch

    base = model.base_model
    name = cache_argument(base)
    if name is None:
        raise TypeError(f"{type(base).__name__}.forward takes no key/value cache")
    ids, mask = _right_pad(prefixes, pad_id, device)
    lengths = mask.sum(dim=1)
    width = ids.shape[1]
    first = mask.clone()
    first[:, 0] = 1  # placeholder for empty prefixes: masked in every question's pass
    rows = torch.arange(len(prefixes), device=ids.device)
    states: list[torch.Tensor] = []
    answers: list[list[list[int]]] = []
    with torch.inference_mode():
        out = base(input_ids=ids, attention_mask=first, position_ids=(first.cumsum(dim=1) - 1).clamp(min=0),
                   use_cache=True)
        cache = out[name] if name in out else out.past_key_values
        for question in suffixes:
            suffix_ids, suffix_mask = _right_pad(question, pad_id, device)
            steps = torch.arange(suffix_ids.shape[1], device=ids.device)
            hidden = base(input_ids=suffix_ids, attention_mask=torch.cat([mask, suffix_mask], dim=1),
                          position_ids=lengths[:, None] + steps[None, :], use_cache=True,
                          **{name: cache}).last_hidden_state
            states.append(hidden[rows, suffix_mask.sum(dim=1) - 1].float())
            _crop(cache, width)
            if answer_tokens > 0:  # suffixes left-padded: generate continues after the last column
                left_ids, left_mask = _right_pad([r[::-1] for r in question], pad_id, device)
                full = torch.cat([ids, left_ids.flip(1)], dim=1)
                out_ids = model.generate(input_ids=full, attention_mask=torch.cat([mask, left_mask.flip(1)], dim=1),
                                         max_new_tokens=answer_tokens, do_sample=False, num_beams=1,
                                         pad_token_id=pad_id, **{name: cache})
                answers.append(out_ids[:, full.shape[1]:].tolist())
                _crop(cache, width)
    return states, (answers if answer_tokens > 0 else None)


def _crop(cache: Any, width: int) -> None:
    """Cut ``cache`` back to its first ``width`` positions (the prefixes)."""
    extra = cache.get_seq_length() - width
    if extra > 0:
        cache.crop(-extra)
    if cache.get_seq_length() != width:
        raise RuntimeError(f"the key/value cache kept {cache.get_seq_length()} positions, "
                           f"expected the prefix's {width}")
