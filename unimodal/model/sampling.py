"""Turning one step's logits into the next ids: constraints, guidance, penalties, temperature, top-k/top-p.

Every knob is set per output modality (a ``default`` entry covers the rest), because one answer can hold
text, an image and a sound that want different settings. Classifier-free guidance mixes each row's
conditional logits with its unconditional twin's, ``uncond + s * (cond - uncond)``, where ``s`` is the row's
modality scale, optionally scheduled over the span (``cfg_schedule``):

- ``constant``: ``s`` at every position
- ``linear``: from 1 (no guidance) at the span's first code up to ``s`` at its last (a ramp, as in MUSE)
- ``cosine``: the same ramp with a cosine shape

:class:`Sampler` draws for the whole batch at once on the logits' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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
    fast: str = "auto"  # static KV cache + compiled step: auto (on CUDA), true, false (unimodal/model/fast_decode.py)

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
    """Top-k then nucleus (top-p) filtering of one row or a batch; filtered entries become ``-inf``."""
    rows = logits.reshape(-1, logits.shape[-1])
    count = rows.shape[0]
    out = filter_rows(rows, torch.full((count,), int(top_k)), torch.full((count,), float(top_p)))
    return out.reshape(logits.shape)


def filter_rows(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """:func:`filter_logits` with a ``top_k`` and ``top_p`` per row (``[B]`` on the CPU; 0 and 1 switch them off)."""
    largest = int(top_k.clamp(max=logits.shape[-1]).max()) if bool((top_k > 0).any()) else 0
    nucleus = bool(((top_p > 0) & (top_p < 1)).any())
    return _filter(logits, top_k.to(logits.device), top_p.to(logits.device), largest, nucleus)


def _filter(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor, largest: int,
            nucleus: bool) -> torch.Tensor:
    """``filter_rows`` with what needs the host decided already (``largest``: the greatest top-k, 0 when none;
    ``nucleus``: whether any row filters by top-p), so that nothing is read back from the device."""
    if largest:
        values = torch.topk(logits, largest, dim=-1).values
        index = (top_k.clamp(min=1, max=values.shape[-1]) - 1)[:, None]
        kth = torch.where(top_k[:, None] > 0, values.gather(-1, index), float("-inf"))
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if nucleus:
        rows = (top_p > 0) & (top_p < 1)
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        limit = torch.where(rows, top_p, float("inf"))[:, None]
        drop = probs.cumsum(-1) - probs > limit  # keep the smallest prefix whose mass reaches top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


class Sampler:
    """Chooses each row's next id on the logits' own device: one batched pass per step, whatever the rows'
    modalities (no per-row kernels, which would dominate a fast decode step), and nothing read back: the ids
    come back as a device tensor, and every per-row setting (allowed ids, guidance scale, temperature, top-k,
    top-p, forced ids) is a device tensor made once per distinct value and reused, so a step queues its kernels
    without waiting for the device. Draws come from one generator seeded with ``seed`` on that device (the
    exponential race that ``torch.multinomial`` runs for one sample, minus its host-side check), so a seed
    reproduces its output on the same device."""

    def __init__(self, sampling: SamplingConfig, vocab_size: int, seed: int) -> None:
        self.sampling, self.vocab_size, self.seed = sampling, vocab_size, seed
        self.masks: dict[tuple[tuple[int, int], ...], torch.Tensor] = {}
        self.constants: dict[tuple[Any, ...], torch.Tensor] = {}
        self.generator: torch.Generator | None = None
        self.seen: torch.Tensor | None = None   # [B, V]: ids each row has emitted (the repetition penalty)

    def _mask(self, spans: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor:
        if spans not in self.masks:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            for low, high in spans:
                mask[low:high] = True
            self.masks[spans] = to_device(mask, device)
        return self.masks[spans]

    def _constant(self, values: tuple[Any, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``values`` as a device tensor, made once and reused."""
        key = (dtype, values)
        if key not in self.constants:
            if len(self.constants) > 4096:   # e.g. a long cosine ramp in many row phases: start over
                self.constants.clear()
            self.constants[key] = to_device(torch.tensor(values, dtype=dtype), device)
        return self.constants[key]

    def __call__(self, cond: torch.Tensor, uncond: torch.Tensor | None, states: list[SpanState],
                 spans: list[tuple[tuple[int, int], ...]] | None = None) -> torch.Tensor:
        """One next id per row, ``[B]`` on the logits' device. ``cond`` / ``uncond``: ``[B, V]`` logits of the
        prompts and their twins (``uncond`` None without guidance); ``spans``: each row's allowed intervals
        (``allowed_spans(state)``), when the caller has them already."""
        sampling, device = self.sampling, cond.device
        spans = spans or [allowed_spans(state) for state in states]
        forced = [s[0][0] if len(s) == 1 and s[0][1] - s[0][0] == 1 else None for s in spans]
        if all(token is not None for token in forced):  # nothing to sample (a separator, a closer, <eos>)
            chosen = self._constant(tuple(forced), torch.long, device)
            self._remember(chosen)
            return chosen
        if self.generator is None:
            self.generator = torch.Generator(device=device).manual_seed(self.seed)
        modalities = [state.modality for state in states]
        logits = cond.float()
        if uncond is not None:
            scales = tuple(guidance_scale(sampling, state) for state in states)
            if any(scale != 1.0 for scale in scales):  # at 1.0 a row's conditional logits stay bit-exact
                scale = self._constant(scales, torch.float32, device)[:, None]
                logits = torch.where(scale != 1.0, uncond.float() + scale * (logits - uncond.float()), logits)
        allowed = torch.stack([self._mask(s, device) for s in spans])
        logits = logits.masked_fill(~allowed, float("-inf"))
        penalty = sampling.repetition_penalty
        if penalty != 1.0 and self.seen is not None and "text" in modalities:  # CTRL's penalty, text rows only
            text_rows = self._constant(tuple(m == "text" for m in modalities), torch.bool, device)[:, None]
            hit = self.seen & text_rows
            logits = torch.where(hit, torch.where(logits > 0, logits / penalty, logits * penalty), logits)
        temperatures = tuple(float(sampling.get("temperature", m)) for m in modalities)
        chosen = logits.argmax(-1)
        if any(t > 0 for t in temperatures):
            temperature = self._constant(temperatures, torch.float32, device)
            top_k = tuple(int(sampling.get("top_k", m)) for m in modalities)
            top_p = tuple(float(sampling.get("top_p", m)) for m in modalities)
            largest = min(max(top_k), logits.shape[-1]) if any(k > 0 for k in top_k) else 0
            scaled = _filter(logits / temperature.clamp(min=1e-6)[:, None], self._constant(top_k, torch.long, device),
                             self._constant(top_p, torch.float32, device), largest,
                             any(0 < p < 1 for p in top_p))
            race = torch.empty_like(scaled).exponential_(1, generator=self.generator)
            drawn = (scaled.softmax(-1) / race).argmax(-1)
            chosen = torch.where(temperature > 0, drawn, chosen)
        if any(token is not None for token in forced):
            is_forced = self._constant(tuple(token is not None for token in forced), torch.bool, device)
            chosen = torch.where(is_forced, self._constant(tuple(t or 0 for t in forced), torch.long, device), chosen)
        self._remember(chosen)
        return chosen

    def _remember(self, chosen: torch.Tensor) -> None:
        if self.sampling.repetition_penalty == 1.0:
            return
        if self.seen is None:
            self.seen = torch.zeros((chosen.shape[0], self.vocab_size), dtype=torch.bool, device=chosen.device)
        self.seen.scatter_(1, chosen[:, None], True)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without waiting for the device: a copy from pageable memory would wait for
    every queued kernel; one from pinned memory is queued behind them."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def allowed_spans(state: SpanState) -> tuple[tuple[int, int], ...]:
    allowed = state.allowed()
    return (allowed,) if isinstance(allowed, tuple) else tuple(allowed)
