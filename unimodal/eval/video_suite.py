"""Clips for the evaluation harness: text->video and video->text on the same seen / held-out footing as images.

``seen`` clips hold only colour-shape pairs training holds; ``held_out`` clips hold at least one pair training
never shows (``data.held_out``), exactly as the still scenes (:mod:`unimodal.eval.suite`). Half of a split is
one-object clips (colours balanced as for images, directions in turn), the rest two objects.

A direction's output is read back as an ordered list of (colour, shape, direction): the motion analyzer on a
generated clip (objects left to right at first sighting), the motion caption parsed. Categories:

- ``object``: every requested (colour, shape) is there, whatever it does
- ``motion``: every requested object is there moving the requested way
- ``direction``: the directions, in order, are the requested ones (for captions: each object's direction named)
- ``one_object`` / ``two_objects``: ``motion`` on clips of that many objects
- ``left``, ``right``, ``up``, ``down`` (per object): an object asked to move that way is there, moving so
- ``exact``: the whole ordered list equals the clip's
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unimodal.data.motion import MOTIONS, MotionWorld, motions_in, parse_motion_caption
from unimodal.eval.suite import (
    EVAL_SEED_OFFSET,
    SPLITS,
    WORLD_SPLIT,
    single_object_count,
    split_colours,
    strict_hit,
)


@dataclass(frozen=True)
class EvalClip:
    split: str
    scene: Any  # unimodal.data.motion.Clip; named ``scene`` so the harness's scoring loop takes clips as scenes

    @property
    def want(self) -> list[tuple[str, str, str]]:
        return self.scene.attributes()


def motion_world(world: Any, cfg: Any) -> MotionWorld:
    return MotionWorld(world, int(cfg.data.video_frames))


def make_clips(motion: MotionWorld, split: str, count: int, seed: int = 0) -> list[EvalClip]:
    """``count`` clips of ``split`` (``seen`` or ``held_out``), deterministic for ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    world = motion.world
    colours = split_colours(world, split)
    names = sorted(colours)
    singles = min(count, single_object_count(world, split, count))
    rng = np.random.default_rng((seed + EVAL_SEED_OFFSET, SPLITS.index(split), 1))  # 1: not the still scenes' stream
    clips = []
    for i in range(singles):
        colour = names[i % len(names)]
        shape = colours[colour][(i // len(names)) % len(colours[colour])]
        prompt = f"a {colour} {shape} moves {MOTIONS[i % len(MOTIONS)]}"
        clips.append(EvalClip(split, motion.clip_from_prompt(prompt, rng)))
    most = min(world.config.max_objects, 2)
    for _ in range(count - singles):
        clips.append(EvalClip(split, motion.sample_clip(rng, WORLD_SPLIT[split], num_objects=most)))
    return clips


def read_motion(generation: Any, target: str) -> list[tuple[str, str, str | None]]:
    """A generated clip through the motion analyzer, or a generated caption parsed."""
    if target == "video":
        return motions_in(generation.videos[0]) if generation.videos else []
    return parse_motion_caption(generation.text)


def motion_categories(want: list[tuple[str, str, str]], found: list[tuple]) -> dict[str, tuple[int, int]]:
    """(hits, total) per category that applies to a clip of ``len(want)`` objects."""
    want = [tuple(w) for w in want]
    found = [tuple(f) for f in found]
    moving = all(w in found for w in want)
    scores = {"object": (int(all(w[:2] in [f[:2] for f in found] for w in want)), 1),
              "motion": (int(moving), 1),
              "direction": (int([f[2] for f in found] == [w[2] for w in want]), 1),
              "exact": (int(strict_hit(want, found)), 1)}
    scores["one_object" if len(want) == 1 else "two_objects"] = (int(moving), 1)
    for name in MOTIONS:
        asked = [w for w in want if w[2] == name]
        if asked:
            scores[name] = (sum(int(w in found) for w in asked), len(asked))
    return scores
