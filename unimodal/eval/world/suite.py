"""The evaluation scenes and the categories they are scored by, shared by every direction.

Two splits: ``seen`` scenes hold only colour-shape combinations the training data holds; ``held_out``
scenes hold at least one combination training never shows (``data.held_out``), so they measure composition
rather than memory. Half of each split is single-object scenes, balanced over the split's colours so that
chance on ``colour`` is exactly one over the number of colours; the rest is split evenly over 2..max objects.

A direction's output is read back as an ordered list of (colour, shape): the caption parsed, the image's
objects left to right, the sound's tones in time order. GenEval-style categories compare it to the scene's:

- ``single_object`` (1-object scenes): exactly one object, of the requested shape
- ``colour`` (1-object scenes): at least one object, all of the requested colour. An output that never changes
  therefore hits only the prompts of its own colour(s): at most chance, never above it
- ``count`` (all scenes): as many objects as requested
- ``two_objects`` (2-object scenes): both requested objects present, anywhere
- ``position`` (2-object scenes): both present and the first left of (before) the second. The world's captions
  only say "left of", so "above" cannot be asked and is not scored
- ``exact`` (all scenes): the whole ordered list equals the scene's
- ``attributes`` (per object, all scenes): object i has the requested colour and shape

Clips (``modality=video`` runs) stand on the same footing: ``seen`` clips hold only colour-shape pairs training
holds, ``held_out`` clips at least one pair it never shows. Half of a split is one-object clips (colours balanced
as for images, directions in turn), the rest two objects. A clip's output is read back as an ordered list of
(colour, shape, direction): the motion analyzer on a generated clip (objects left to right at first sighting), the
motion caption parsed. Categories (:func:`motion_categories`):

- ``object``: every requested (colour, shape) is there, whatever it does
- ``motion``: every requested object is there moving the requested way
- ``direction``: the directions, in order, are the requested ones (for captions: each object's direction named)
- ``one_object`` / ``two_objects``: ``motion`` on clips of that many objects
- ``left``, ``right``, ``up``, ``down`` (per object): an object asked to move that way is there, moving so
- ``exact``: the whole ordered list equals the clip's

The benchmarks ask single objects of seen pairs (:func:`seen_single_object_prompts`, :func:`motion_prompts`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from unimodal.data.motion import MOTIONS, MotionWorld
from unimodal.data.synthetic.world import COLORS, SHAPES

SPLITS = ("seen", "held_out")
WORLD_SPLIT = {"seen": "train", "held_out": "held_out"}
GENEVAL = ("single_object", "colour", "count", "position", "two_objects")
# Clips are scored by these; listed here so every report and compare table has them.
MOTION_CATEGORIES = ("object", "direction", "motion", "one_object", "left", "right", "up", "down")
CATEGORIES = (*GENEVAL, "exact", "attributes", *MOTION_CATEGORIES)
EVAL_SEED_OFFSET = 200  # training splits use data.seed + 0..2, instruction evaluation + 100


@dataclass(frozen=True)
class EvalScene:
    split: str
    scene: Any  # unimodal.data.synthetic.world.Scene

    @property
    def want(self) -> list[tuple[str, str]]:
        return self.scene.attributes()


def split_colours(world: Any, split: str) -> dict[str, list[str]]:
    """Colour -> shapes of that colour a single-object scene of ``split`` may have."""
    combos = world.train_combos if split == "seen" else world.held_out_combos
    colours: dict[str, list[str]] = {}
    for colour, shape in combos:
        colours.setdefault(colour, []).append(shape)
    return colours


def single_object_count(world: Any, split: str, count: int) -> int:
    """Single-object scenes in a split of ``count``: half, rounded down to a whole number per colour."""
    k = len(split_colours(world, split))
    return max(k, (count // 2) // k * k) if k else 0


def make_scenes(world: Any, split: str, count: int, seed: int = 0) -> list[EvalScene]:
    """``count`` scenes of ``split`` (``seen`` or ``held_out``), deterministic for ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    colours = split_colours(world, split)
    names = sorted(colours)
    singles = min(count, single_object_count(world, split, count))
    rng = np.random.default_rng((seed + EVAL_SEED_OFFSET, SPLITS.index(split)))
    scenes = []
    for i in range(singles):  # colour i mod k, then that colour's shapes in turn: balanced colours
        colour = names[i % len(names)]
        shape = colours[colour][(i // len(names)) % len(colours[colour])]
        scenes.append(EvalScene(split, world.scene_from_prompt(f"a {colour} {shape}", rng)))
    sizes = list(range(2, world.config.max_objects + 1)) or [1]
    for i in range(count - singles):
        scene = world.sample_scene(rng, WORLD_SPLIT[split], num_objects=sizes[i % len(sizes)])
        scenes.append(EvalScene(split, scene))
    return scenes


@dataclass(frozen=True)
class EvalClip:
    split: str
    scene: Any  # unimodal.data.motion.Clip; named ``scene`` so the scoring engine takes clips as scenes

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


def colour_chance(world: Any, split: str) -> float:
    """Accuracy on ``colour`` of an output that never changes, at best: one over the split's colours."""
    k = len(split_colours(world, split))
    return 1.0 / k if k else 0.0


def _ordered_pair(found: list[tuple[str, str]], first: tuple[str, str], second: tuple[str, str]) -> bool:
    if first not in found:
        return False
    return second in found[found.index(first) + 1:]


def categories(want: list[tuple[str, str]], found: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """(hits, total) per category that applies to a scene of ``len(want)`` objects."""
    want = [tuple(pair) for pair in want]
    found = [tuple(pair) for pair in found]
    scores = {"count": (int(len(found) == len(want)), 1), "exact": (int(found == want), 1),
              "attributes": (sum(int(i < len(found) and found[i] == w) for i, w in enumerate(want)), len(want))}
    if len(want) == 1:
        colour, shape = want[0]
        scores["single_object"] = (int(len(found) == 1 and found[0][1] == shape), 1)
        scores["colour"] = (int(bool(found) and all(c == colour for c, _ in found)), 1)
    if len(want) == 2:
        both = all(w in found for w in want) and (want[0] != want[1] or found.count(want[0]) > 1)
        scores["two_objects"] = (int(both), 1)
        scores["position"] = (int(_ordered_pair(found, want[0], want[1])), 1)
    return scores


def object_found(want: list[tuple], found: list[tuple]) -> dict[str, tuple[int, int]]:
    """``object``: every requested (colour, shape) is among the objects found, anywhere, whatever else is there
    (what the benchmarks count for single-object prompts; clips score the same in :func:`motion_categories`)."""
    pairs = [tuple(f)[:2] for f in found]
    return {"object": (int(all(tuple(w)[:2] in pairs for w in want)), 1)}


def motion_categories(want: list[tuple[str, str, str]], found: list[tuple]) -> dict[str, tuple[int, int]]:
    """(hits, total) per category that applies to a clip of ``len(want)`` objects."""
    want = [tuple(w) for w in want]
    found = [tuple(f) for f in found]
    moving = all(w in found for w in want)
    scores = {"object": (int(all(w[:2] in [f[:2] for f in found] for w in want)), 1),
              "motion": (int(moving), 1),
              "direction": (int([f[2] for f in found] == [w[2] for w in want]), 1),
              "exact": (int(found == want), 1)}
    scores["one_object" if len(want) == 1 else "two_objects"] = (int(moving), 1)
    for name in MOTIONS:
        asked = [w for w in want if w[2] == name]
        if asked:
            scores[name] = (sum(int(w in found) for w in asked), len(asked))
    return scores


def seen_single_object_prompts(held_out: list[list[str]] | list[tuple[str, str]], count: int = 20) -> list[tuple]:
    """(colour, shape) pairs seen in training, in a fixed order, repeated to ``count`` if needed."""
    held = {tuple(pair) for pair in held_out}
    seen = [(c, s) for c, s in itertools.product(COLORS, SHAPES) if (c, s) not in held]
    return [seen[i % len(seen)] for i in range(count)]


def motion_prompts(held_out: list[list[str]] | list[tuple[str, str]], count: int = 20) -> list[tuple[str, str, str]]:
    """(colour, shape, direction) of seen colour-shape pairs, directions in turn."""
    return [(c, s, MOTIONS[i % len(MOTIONS)]) for i, (c, s) in enumerate(seen_single_object_prompts(held_out, count))]
