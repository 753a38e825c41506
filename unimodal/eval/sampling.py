"""How the evaluations sample what they score: greedy text, media sampled with classifier-free guidance."""

from __future__ import annotations

from typing import Any

from unimodal.model.generate import SamplingConfig


def default_sampling(cfg_scale: float = 3.0, temperature: float = 1.0, top_k: int = 0) -> SamplingConfig:
    """Greedy text; media sampled at ``temperature`` with classifier-free guidance ``cfg_scale``."""
    return SamplingConfig(temperature={"default": temperature, "text": 0.0}, top_k={"default": top_k},
                          cfg_scale={"default": cfg_scale, "text": 1.0}, max_new_tokens=256)


def sampling_for(pipe: Any, target: str, cfg_scale: float = 3.0) -> SamplingConfig:
    """Greedy captions; media sampled at temperature 1 with classifier-free guidance, one span long."""
    if target == "text":
        return SamplingConfig(temperature={"default": 0.0}, max_new_tokens=48)
    sampling = default_sampling(cfg_scale)
    sampling.max_new_tokens = len(pipe.codec.span_plan(target)) + 3  # opener, body, closer, <eos>
    return sampling
