"""The LM loss for ``trainer.compile``: the whole step as one compiled graph.

``masked_lm_loss`` (lm_module.py) runs the output head only on target positions, picked by a boolean
mask: the cheapest in eager mode on a CPU, but a data-dependent shape, so torch.compile can take only
the transformer stack and every step waits for the device to learn the number of targets. Here the head
runs on every position and non-targets are ignored by the cross-entropy: fixed shapes, one graph (head
and loss fused by the compiler), and the device is asked for nothing but the logged numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from unimodal.model.lm import embed_ids
from unimodal.sequence import MODALITY_CODES

IGNORE = -100
Reduce = Callable[[torch.Tensor], torch.Tensor] | None   # sums a tensor over data-parallel ranks
_NAME_OF = {code: name for name, code in MODALITY_CODES.items()}


def _loss_graph(model: torch.nn.Module, ids: torch.Tensor, targets: torch.Tensor,
                attention_mask: torch.Tensor | None,
                position_ids: torch.Tensor | None = None,
                images: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    hidden = model.model(inputs_embeds=embed_ids(model, ids, images=images), attention_mask=attention_mask,
                         position_ids=position_ids, use_cache=False).last_hidden_state
    # Logits at every position, the last one ignored, rather than of hidden[:, :-1]: a strided slice sends
    # the head's matmul (and its gradient) down slower kernels.
    logits = model.lm_head(hidden).float()
    per_token = F.cross_entropy(logits.flatten(0, 1), F.pad(targets, (0, 1), value=IGNORE).flatten(),
                                ignore_index=IGNORE, reduction="none")
    per_row = per_token.view(targets.shape[0], -1)[:, :-1]
    if weights is not None:  # zero where there is no target
        return (per_row * weights).sum() / weights.sum().clamp(min=1e-9), per_row
    count = (targets != IGNORE).sum().clamp(min=1)
    return per_token.sum() / count, per_row


_compiled_loss_graph = torch.compile(_loss_graph)


def dense_lm_loss(model: torch.nn.Module, ids: torch.Tensor, loss_mask: torch.Tensor,
                  attention_mask: torch.Tensor | None = None, modality: torch.Tensor | None = None,
                  position_ids: torch.Tensor | None = None, compile: bool = True,
                  reduce: Reduce = None, images: torch.Tensor | None = None,
                  target_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """``masked_lm_loss``'s loss and per-modality parts, computed densely (and compiled unless told not to)."""
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None  # no padding: attention takes its plain causal path
    targets = ids[:, 1:].masked_fill(~loss_mask[:, 1:], IGNORE)
    graph = _compiled_loss_graph if compile else _loss_graph
    weights = None
    if target_weights is not None and modality is not None:
        weights = target_weights[modality[:, 1:]] * loss_mask[:, 1:]
    # Packed rows: positions restart at every document.
    loss, per_token = graph(model, ids, targets, attention_mask, position_ids, images, weights)
    parts = modality_means(per_token.detach(), modality[:, 1:], loss_mask[:, 1:], reduce) if modality is not None \
        else {}
    return loss, parts


def modality_means(per_token: torch.Tensor, target_modality: torch.Tensor, weights: torch.Tensor | None = None,
                   reduce: Reduce = None) -> dict[str, float]:
    """Mean loss per target modality, read back from the device in one sync (not two per modality). ``reduce``
    sums the per-modality sums and counts over data-parallel ranks first: every rank then has the same means,
    and the same modalities (a rank's slice may hold targets of fewer)."""
    per_token, target_modality = per_token.flatten(), target_modality.flatten()
    weights = torch.ones_like(per_token) if weights is None else weights.flatten().to(per_token.dtype)
    size = max(_NAME_OF) + 1
    sums = torch.zeros(size, device=per_token.device).index_add_(0, target_modality, per_token * weights)
    counts = torch.zeros(size, device=per_token.device).index_add_(0, target_modality, weights)
    both = torch.stack([sums, counts], dim=1)
    if reduce is not None:
        both = reduce(both)
    return {_NAME_OF[code]: total / count for code, (total, count) in enumerate(both.tolist())
            if count and code in _NAME_OF}
