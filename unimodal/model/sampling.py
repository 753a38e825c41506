"""Turning one step's logits into the next ids: constraints, guidance, penalties, temperature, top-k/top-p.

Every knob is set per output modality (a ``default`` entry covers the rest), because one answer can hold
text, an image and a sound that want different settings. Classifier-free guidance mixes each row's
conditional logits with its unconditional twin's, ``uncond + s * (cond - uncond)``, where ``s`` is the row's
modality scale, optionally scheduled over the span (``cfg_schedule``):

- ``constant``: ``s`` at every position
- ``linear``: from 1 (no guidance) at the span's first code up to ``s`` at its last (a ramp, as in MUSE)
- ``cosine``: the same ramp with a cosine shape

Sampling stays on the CPU with one seeded generator, so a seed gives the same ids on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from unimodal.errors import ConfigError
from unimodal.model.constraints import SpanState

SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class SamplingConfig:
    """Per-modality sampling knobs; a modality missing from a dict uses the ``default`` entry.

    ``min_text_tokens``: a requested text output holds at least this many tokens before it ends (unless the
    budget forces it to), so ``output=["text", "image"]`` really starts with text.
    """

    temperature: dict[str, float] = field(default_factory=lambda: {"default": 1.0, "text": 0.7})
    top_k: dict[str, int] = field(default_factory=lambda: {"default": 0})
    top_p: dict[str, float] = field(default_factory=lambda: {"default": 1.0})
    cfg_scale: dict[str, float] = field(default_factory=lambda: {"default": 1.0})
    cfg_schedule: dict[str, str] = field(default_factory=lambda: {"default": "constant"})
    repetition_penalty: float = 1.0
    max_new_tokens: int = 256
    min_text_tokens: int = 1

    def __post_init__(self) -> None:
        for modality, name in self.cfg_schedule.items():
            if name not in SCHEDULES:
                raise ConfigError(f"cfg_schedule.{modality}={name!r} is not a guidance schedule; "
                                  f"choose one of {list(SCHEDULES)}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens={self.max_new_tokens}: generate at least one token")

    def get(self, name: str, modality: str) -> float:
        table = getattr(self, name)
        return table.get(modality, table.get("default", 0 if name == "top_k" else 1.0))

    def schedule(self, modality: str) -> str:
        return self.cfg_schedule.get(modality, self.cfg_schedule.get("default", "constant"))

    def guided(self, outputs: list[str]) -> bool:
        """Whether any requested output uses guidance (then every prompt gets its unconditional twin)."""
        return any(self.get("cfg_scale", m) != 1.0 for m in outputs)


def guidance_scale(sampling: SamplingConfig, state: SpanState) -> float:
    """The scale for ``state``'s next token, after its modality's schedule."""
    modality = state.modality
    scale = float(sampling.get("cfg_scale", modality))
    kind = sampling.schedule(modality)
    if kind == "constant" or not state.in_span:
        return scale
    ramp = state.span_progress if kind == "linear" else 0.5 - 0.5 * math.cos(math.pi * state.span_progress)
    return 1.0 + (scale - 1.0) * ramp


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k then nucleus (top-p) filtering of a 1-D row; filtered entries become ``-inf``."""
    if top_k and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keep the smallest prefix whose mass reaches top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


def _allowed_spans(state: SpanState) -> list[tuple[int, int]]:
    allowed = state.allowed()
    return [allowed] if isinstance(allowed, tuple) else allowed


def choose_tokens(cond: torch.Tensor, uncond: torch.Tensor | None, states: list[SpanState],
                  sampling: SamplingConfig, history: list[list[int]], generator: torch.Generator) -> list[int]:
    """One next id per row. ``cond`` / ``uncond``: ``[B, V]`` logits of the prompts and their twins
    (``uncond`` None without guidance); ``history``: each row's generated ids so far (for the penalty)."""
    cond = cond.float().cpu()
    uncond = uncond.float().cpu() if uncond is not None else None
    chosen: list[int] = []
    for row, state in enumerate(states):
        spans = _allowed_spans(state)
        if len(spans) == 1 and spans[0][1] - spans[0][0] == 1:  # forced: nothing to sample
            chosen.append(spans[0][0])
            continue
        logits = cond[row]
        scale = guidance_scale(sampling, state) if uncond is not None else 1.0
        if scale != 1.0:  # at 1.0 the conditional logits stay bit-exact
            logits = uncond[row] + scale * (logits - uncond[row])
        mask = torch.full_like(logits, float("-inf"))
        for low, high in spans:
            mask[low:high] = 0.0
        logits = logits + mask
        modality = state.modality
        penalty = sampling.repetition_penalty
        if modality == "text" and penalty != 1.0 and history[row]:  # CTRL's penalty, text only
            seen = torch.tensor(sorted(set(history[row])))
            values = logits[seen]
            logits[seen] = torch.where(values > 0, values / penalty, values * penalty)
        temperature = float(sampling.get("temperature", modality))
        if temperature <= 0:
            chosen.append(int(logits.argmax()))
            continue
        logits = filter_logits(logits / temperature, int(sampling.get("top_k", modality)),
                               float(sampling.get("top_p", modality)))
        chosen.append(int(torch.multinomial(logits.softmax(-1), 1, generator=generator)))
    return chosen
