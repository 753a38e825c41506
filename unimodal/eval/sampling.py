"""How the evaluations sample what they score: greedy text, media sampled with classifier-free guidance.

The media recipe (:data:`MEDIA_SAMPLING`, temperature and guidance scale per modality) is what
``benchmarks/sampling.py`` chose on tuning scenes drawn apart from the evaluation's; conf/generate.yaml and the
demo start from the same values, so what a user generates is what the headline measured.
"""

from __future__ import annotations

from typing import Any

from unimodal.model.generate import SamplingConfig

# (temperature, cfg_scale) per generated media modality; others (video) keep the plain (1.0, 3.0).
MEDIA_SAMPLING: dict[str, tuple[float, float]] = {"image": (0.7, 2.5), "audio": (0.7, 2.0)}
PLAIN_SAMPLING = (1.0, 3.0)


def default_sampling(cfg_scale: float | None = None, temperature: float | None = None,
                     top_k: int = 0) -> SamplingConfig:
    """Greedy text; media sampled with :data:`MEDIA_SAMPLING`, or at one ``temperature`` / guidance ``cfg_scale``
    for every media modality when given."""
    def table(index: int, value: float | None, text: float) -> dict[str, float]:
        if value is not None:
            return {"default": float(value), "text": text}
        return {"default": PLAIN_SAMPLING[index], **{m: pair[index] for m, pair in MEDIA_SAMPLING.items()},
                "text": text}

    return SamplingConfig(temperature=table(0, temperature, 0.0), top_k={"default": top_k},
                          cfg_scale=table(1, cfg_scale, 1.0), max_new_tokens=256)


def sampling_for(pipe: Any, target: str, cfg_scale: float | None = None,
                 temperature: float | None = None) -> SamplingConfig:
    """Greedy captions; media sampled by :func:`default_sampling`, one span long."""
    if target == "text":
        return SamplingConfig(temperature={"default": 0.0}, max_new_tokens=48)
    sampling = default_sampling(cfg_scale, temperature)
    sampling.max_new_tokens = len(pipe.codec.span_plan(target)) + 3  # opener, body, closer, <eos>
    return sampling


def recipe_text(cfg_scale: float | None, media: tuple[str, ...] = tuple(MEDIA_SAMPLING),
                temperature: float | None = None) -> str:
    """How an evaluation sampled ``media`` (``cfg_scale``, ``temperature``: its overrides of every media
    modality's), for reports."""
    pairs = {m: MEDIA_SAMPLING.get(m, PLAIN_SAMPLING) for m in media}
    return "; ".join(f"{m} at temperature {t if temperature is None else temperature}, "
                     f"cfg_scale {c if cfg_scale is None else cfg_scale}" for m, (t, c) in pairs.items())
