"""Projectors, by ``projector.kind``: encoder features ``[n, F, d_enc]`` -> LM input vectors ``[n, slots, d_lm]``.

- ``linear``: LLaVA-1's, one Linear; ``slots = F``
- ``mlp``: LLaVA-1.5's, Linear -> GELU -> Linear; ``slots = F``
- ``qformer``: BLIP-2's Q-Former through transformers' ``Blip2QFormerModel``: ``num_queries`` learned queries
  cross-attend to the features (every layer), then a Linear into the LM (BLIP-2's ``language_projection``);
  ``slots = num_queries``, whatever ``F`` is

:func:`projector_config` is the JSON a model saves beside its projector weights; :func:`build_projector` rebuilds it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unimodal.errors import ConfigError

PROJECTORS = ("mlp", "linear", "qformer")
QFORMER_KEYS = ("num_queries", "hidden_size", "num_layers", "num_heads", "intermediate_size", "dropout")


class LinearProjector(nn.Linear):
    def slots(self, num_features: int) -> int:
        return num_features


class MLPProjector(nn.Sequential):
    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(nn.Linear(input_size, output_size), nn.GELU(), nn.Linear(output_size, output_size))

    def slots(self, num_features: int) -> int:
        return num_features


class QFormerProjector(nn.Module):
    """Learned queries through ``Blip2QFormerModel`` (self-attention among queries, cross-attention to features)."""

    def __init__(self, input_size: int, output_size: int, num_queries: int, hidden_size: int, num_layers: int,
                 num_heads: int, intermediate_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        config = Blip2QFormerConfig(hidden_size=int(hidden_size), num_hidden_layers=int(num_layers),
                                    num_attention_heads=int(num_heads), intermediate_size=int(intermediate_size),
                                    encoder_hidden_size=int(input_size), cross_attention_frequency=1,
                                    hidden_dropout_prob=float(dropout), attention_probs_dropout_prob=float(dropout))
        self.num_queries = int(num_queries)
        self.queries = nn.Parameter(torch.randn(1, self.num_queries, int(hidden_size)) * config.initializer_range)
        self.qformer = Blip2QFormerModel(config)
        self.out = nn.Linear(int(hidden_size), int(output_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        queries = self.queries.expand(features.shape[0], -1, -1).to(features.dtype)
        hidden = self.qformer(query_embeds=queries, encoder_hidden_states=features).last_hidden_state
        return self.out(hidden)

    def slots(self, num_features: int) -> int:
        return self.num_queries


def projector_slots(projector_cfg: Any, num_features: int) -> int:
    """LM positions per crop: one per feature, or the Q-Former's queries."""
    return int(projector_cfg.num_queries) if projector_cfg.kind == "qformer" else int(num_features)


def projector_config(projector_cfg: Any, input_size: int, output_size: int) -> dict[str, Any]:
    """What rebuilds a projector: its kind, sizes and (qformer) the Q-Former's keys."""
    kind = str(projector_cfg.kind)
    if kind not in PROJECTORS:
        raise ConfigError(f"projector.kind={kind!r}: choose one of projector={'|'.join(PROJECTORS)}")
    config: dict[str, Any] = {"kind": kind, "input_size": int(input_size), "output_size": int(output_size)}
    if kind == "qformer":
        config.update({key: projector_cfg[key] for key in QFORMER_KEYS})
    return config


def build_projector(config: dict[str, Any]) -> nn.Module:
    """A fresh projector from :func:`projector_config`'s JSON."""
    kind, sizes = config["kind"], (int(config["input_size"]), int(config["output_size"]))
    if kind == "linear":
        return LinearProjector(*sizes)
    if kind == "mlp":
        return MLPProjector(*sizes)
    if kind == "qformer":
        return QFormerProjector(*sizes, **{key: config[key] for key in QFORMER_KEYS})
    raise ConfigError(f"projector kind {kind!r} is not one of {PROJECTORS}")
