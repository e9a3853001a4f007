"""The training loss: cross-entropy on the answer tokens (logits computed at labeled positions only, as
the vocabulary projection of every position would dominate the cost of a small model), plus an optional
answer-supervised contrastive term over the encoder's embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import TrainingError
from .features import IGNORE_INDEX


def _masked_head(model: Any) -> Any:
    head = getattr(model, "lm_head", None) or getattr(model, "cls", None)
    if head is None:
        raise TrainingError(f"cannot find the masked-LM head of {type(model).__name__} ('lm_head' or 'cls')")
    return head


def contrastive_loss(pooled: Any, groups: Sequence[str], temperature: float) -> Any:
    """Supervised contrastive loss over unit ``pooled`` rows: positives share a non-empty ``group``.

    Rows without a group, or without a positive in the batch, are not anchors (they still serve
    as negatives). Returns a zero tensor when no row has a positive.
    """
    import torch

    z = torch.nn.functional.normalize(pooled.float(), dim=-1)
    ids = {g: i for i, g in enumerate(sorted({g for g in groups if g}))}
    codes = torch.tensor([ids[g] if g else -1 - i for i, g in enumerate(groups)], device=z.device)
    same = codes[:, None] == codes[None, :]
    eye = torch.eye(len(groups), dtype=torch.bool, device=z.device)
    positives = same & ~eye
    anchors = positives.any(dim=1)
    if not bool(anchors.any()):
        return z.sum() * 0.0
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    mean_positive = (log_prob.masked_fill(~positives, 0.0).sum(dim=1)) / positives.sum(dim=1).clamp(min=1)
    return -mean_positive[anchors].mean()


def answer_loss(model: Any, kind: str, batch: dict[str, Any], *, contrastive_weight: float = 0.0,
                temperature: float = 0.05, mask_id: int | None = None) -> Any:
    """Mean cross-entropy over labeled tokens; logits are computed at those positions only.

    Masked: a label at position ``t`` is predicted from the state at ``t``. Causal: from the
    state at ``t - 1``. With ``contrastive_weight`` (masked only), adds that times
    ``contrastive_loss`` over the embedding the encoder uses (mean of the states at the mask
    tokens ``mask_id``), grouped by ``batch["groups"]``.
    """
    import torch

    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    extra = None
    if contrastive_weight and kind == "masked" and mask_id is not None and any(batch.get("groups") or ()):
        at_mask = (batch["input_ids"] == mask_id).to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * at_mask).sum(dim=1) / at_mask.sum(dim=1).clamp(min=1)
        extra = contrastive_weight * contrastive_loss(pooled, batch["groups"], temperature)
    labels = batch["labels"]
    if kind == "causal":
        hidden, labels = hidden[:, :-1], labels[:, 1:]
        head = model.get_output_embeddings()
    else:
        head = _masked_head(model)
    selected = labels != IGNORE_INDEX
    logits = head(hidden[selected]).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if kind == "causal" and cap:
        logits = torch.tanh(logits / cap) * cap
    loss = torch.nn.functional.cross_entropy(logits, labels[selected])
    return loss if extra is None else loss + extra
