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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SPLITS = ("seen", "held_out")
WORLD_SPLIT = {"seen": "train", "held_out": "held_out"}
GENEVAL = ("single_object", "colour", "count", "position", "two_objects")
# Clips (unimodal.eval.video_suite) are scored by these; listed here so every report and compare table has them.
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
