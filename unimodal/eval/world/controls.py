"""The chance rates every score is shown beside, measured in the same run on the same scenes.

- ``shuffled``: the run's own outputs judged against *other* prompts of the same split (a derangement drawn from
  the seed). What an output that ignores its prompt would score; free, no generation.
- ``noise``: noise where the direction's information comes from. A direction from media (``image->text``,
  ``audio->image``, ...) gets noise media as its input and the model's answer is judged against the scene: what
  a model that cannot see its input scores. A direction from text (``text->image``, ...) has its outputs replaced
  by noise media (:mod:`unimodal.data.synthetic.noise`) for the analyzer to judge: what junk scores.

Both are tables like a score's (split -> category -> hits, total), pooled over seeds like it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from unimodal.data.synthetic.noise import noise_clips, noise_images, noise_sounds
from unimodal.eval.world.engine import DirectionResult, Producer, media_prompts, sampling_for
from unimodal.pipeline.rerank import rerank_ids

Judge = Callable[[list, list], dict[str, tuple[int, int]]]


def shuffled(result: DirectionResult, judge: Judge, seed: int) -> dict[str, dict[str, dict[str, int]]]:
    """The outputs of ``result`` judged against another example's request, within each split."""
    rng = np.random.default_rng((seed, 7))
    table: dict[str, dict[str, dict[str, int]]] = {}
    for split in result.scores:
        examples = [e for e in result.examples if e["split"] == split]
        order = rng.permutation(len(examples))
        others = np.roll(order, 1)  # example order[j] is judged against order[j-1]'s request: never its own
        for mine, other in zip(order, others, strict=True):
            if len(examples) < 2:
                break
            for name, (hits, total) in judge(examples[other]["want"], examples[mine]["found"]).items():
                cell = table.setdefault(split, {}).setdefault(name, {"hits": 0, "total": 0})
                cell["hits"] += hits
                cell["total"] += total
    return table


def noise_media(world: Any, modality: str, count: int, seed: int) -> list[np.ndarray]:
    """``count`` noise inputs shaped as ``world`` renders ``modality`` (``world`` a MotionWorld for clips)."""
    rng = np.random.default_rng((seed, 11))
    if modality == "image":
        return noise_images(rng, count, world.config.image_size)
    if modality == "video":
        return noise_clips(rng, count, world.num_frames, world.world.config.image_size)
    return noise_sounds(rng, count, world.config.sample_rate, world.config.audio_seconds)


def noise_producer(pipe: Any, world: Any, direction: str, cfg_scale: float | None = None,
                   seed: int = 0, temperature: float | None = None, rerank: int = 1) -> Producer:
    """Generations of ``direction`` when the information is noise: noise prompts for a media source, noise outputs
    for a text source (see the module's doc)."""
    from unimodal.pipeline import Generation

    source, _, target = direction.partition("->")
    if source == "text":
        field = {"image": "images", "audio": "audio", "video": "videos"}[target]

        def replace_outputs(scenes: list[Any], start: int) -> list[Any]:
            media = noise_media(world, target, len(scenes), seed + start)
            return [Generation(ids=np.zeros(0, np.int64), segments=[], **{field: [m]}) for m in media]

        return replace_outputs
    sampling = sampling_for(pipe, target, cfg_scale, temperature)

    def from_noise(scenes: list[Any], start: int) -> list[Any]:
        prompts = media_prompts(pipe, noise_media(world, source, len(scenes), seed + start), source)
        new_ids = rerank_ids(pipe, prompts, target, sampling, rerank, seed=seed + start)  # decoded as scenes are
        return [pipe.decode(ids) for ids in new_ids]

    return from_noise
