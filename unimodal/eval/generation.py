"""Score generations with the synthetic world's exact analyzers (no learned judge involved)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unimodal.data.synthetic.analyze import analyze_image, analyze_sound, parse_caption
from unimodal.data.synthetic.world import COLORS, SHAPES
from unimodal.model.generate import SamplingConfig


@dataclass
class Score:
    """Hits of one direction (``text->image``) or one question kind, with examples."""

    name: str
    hits: int = 0
    total: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.hits / max(self.total, 1)


def seen_single_object_prompts(held_out: list[list[str]] | list[tuple[str, str]], count: int = 20) -> list[tuple]:
    """(colour, shape) pairs seen in training, in a fixed order, repeated to ``count`` if needed."""
    held = {tuple(pair) for pair in held_out}
    seen = [(c, s) for c, s in itertools.product(COLORS, SHAPES) if (c, s) not in held]
    return [seen[i % len(seen)] for i in range(count)]


def score_text_to_media(pipeline: Any, modality: str, prompts: list[tuple[str, str]], sampling: SamplingConfig,
                        seed: int = 0, progress: bool = True) -> Score:
    """Generate one ``modality`` sample per prompt; a hit when the analyzer finds that colour and shape."""
    score = Score(f"text->{modality}")
    for index, (color, shape) in enumerate(tqdm(prompts, desc=f"text->{modality}", disable=not progress)):
        result = pipeline.generate(f"a {color} {shape}", output=modality, seed=seed + index, sampling=sampling)[0]
        if modality == "image":
            found = [(o.color, o.shape) for o in analyze_image(result.images[0])] if result.images else []
        else:
            found = analyze_sound(result.audio[0], pipeline.sample_rate) if result.audio else []
        hit = (color, shape) in found
        score.hits += int(hit)
        score.total += 1
        score.examples.append({"prompt": f"a {color} {shape}", "found": found, "hit": hit,
                               "media": (result.images or result.audio or [None])[0]})
    return score


def score_media_to_text(pipeline: Any, world: Any, modality: str, scenes: list[Any], sampling: SamplingConfig,
                        progress: bool = True) -> Score:
    """Caption rendered media; a hit when the parsed caption names exactly the scene's objects in order."""
    score = Score(f"{modality}->text")
    for scene in tqdm(scenes, desc=f"{modality}->text", disable=not progress):
        media = world.render_image(scene) if modality == "image" else world.render_sound(scene)
        text = pipeline.generate(media, output="text", sampling=sampling)[0].text
        hit = parse_caption(text) == scene.attributes()
        score.hits += int(hit)
        score.total += 1
        score.examples.append({"want": world.caption(scene), "got": text, "hit": hit})
    return score


def default_sampling(cfg_scale: float = 3.0, temperature: float = 1.0, top_k: int = 0) -> SamplingConfig:
    return SamplingConfig(temperature={"default": temperature, "text": 0.0}, top_k={"default": top_k},
                          cfg_scale={"default": cfg_scale, "text": 1.0}, max_new_tokens=256)


def image_grid(images: list[np.ndarray], columns: int = 10, scale: int = 4) -> np.ndarray:
    """Tile uint8 images into one picture (black gutters), upscaled for viewing."""
    if not images:
        return np.zeros((8, 8, 3), np.uint8)
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    sheet = np.zeros((rows * (h + 2), columns * (w + 2), 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = image
    return sheet.repeat(scale, 0).repeat(scale, 1)
