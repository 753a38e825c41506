"""Synthetic instruction data from the world: conversations whose answers are exact.

Every question is asked of a scene whose objects are known, so its answer is computed, not annotated:

- ``count``: "how many circles are there?" -> "two"
- ``colour``: "what colour is the object on the left?" -> "red"
- ``shape``: "what shape is the red object?" -> "circle"
- ``describe``: "describe the image." -> the scene's caption
- ``edit``: "draw the same scene with the square in blue" -> the edited scene's image
- ``sound`` (with audio): "which shape sounds first?" -> the left-most object's shape (tones play left to right)
- ``compare`` (two images in one turn): "how many objects are there in the two images together?" -> "three"
- ``paired``: a plain pretraining sample (caption->image, ...), mixed in so generation is not forgotten
- ``swap``: "describe this image, then draw it with the colours swapped" -> an interleaved answer: the caption,
  then the image of the scene with its two objects' colours exchanged (see :func:`swap_scene` for which scenes)

A conversation holds one scene's medium in its first user turn and one to ``max_turns`` question/answer
turns about it, of kinds drawn by the ``instruct.mix`` weights. Evaluation asks the same kinds of questions
about scenes of another seed (:func:`held_out_scenes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from unimodal.data.chat import Turn, encode_chat
from unimodal.data.synthetic.world import COLORS, SHAPES, Scene, SceneObject
from unimodal.data.tasks import draw_drop, task_segments
from unimodal.data.tokens import TokenizedSet
from unimodal.errors import ConfigError
from unimodal.sequence import Segment, SequenceCodec

# New kinds go at the end: evaluation seeds each question with its kind's index here.
KINDS = ("count", "colour", "shape", "describe", "edit", "sound", "compare", "paired", "swap")
VISUAL = ("count", "colour", "shape")        # the short-answer visual questions (the accuracy bar)
IMAGE_KINDS = ("count", "colour", "shape", "describe", "edit", "swap")   # asked about one image, any turn
TWIN_KINDS = ("edit", "swap")                # answered with the image of a changed twin of the scene
SWAP_QUESTION = "describe this image, then draw it with the colours swapped."
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")
HELD_OUT_SEED_OFFSET = 100   # train, val and test scenes use data.seed + 0, 1, 2


Objects = list[tuple[str, str]]   # (colour, shape) per object, left to right


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith("s") else "s")


def _place_word(index: int, count: int) -> str:
    return "on the left" if index == 0 else "on the right" if index == count - 1 else "in the middle"


def _unique(values: list[str]) -> list[str]:
    return [v for v in values if values.count(v) == 1]


def ask(kind: str, objects: Objects, rng: np.random.Generator, caption: str = "") -> tuple[str, str] | None:
    """One question of ``kind`` about a scene and its exact answer; None when the kind does not fit the scene
    (e.g. "what shape is the red object?" needs exactly one red object)."""
    colours, shapes = [c for c, _ in objects], [s for _, s in objects]
    count = len(objects)
    if kind == "count":
        if rng.random() < 0.4:
            return "how many objects are there?", NUMBERS[count]
        present = rng.random() < 0.8
        shape = str(rng.choice(shapes if present else list(SHAPES)))
        return f"how many {plural(shape)} are there?", NUMBERS[shapes.count(shape)]
    if kind == "colour":
        by_shape = _unique(shapes)
        if count == 1:
            return ("what colour is the object?" if rng.random() < 0.5 else f"what colour is the {shapes[0]}?",
                    colours[0])
        if by_shape and rng.random() < 0.3:
            shape = str(rng.choice(by_shape))
            return f"what colour is the {shape}?", colours[shapes.index(shape)]
        index = int(rng.integers(count))
        return f"what colour is the object {_place_word(index, count)}?", colours[index]
    if kind == "shape":
        by_colour = _unique(colours)
        if count > 1 and rng.random() < 0.3:
            index = int(rng.integers(count))
            return f"what shape is the object {_place_word(index, count)}?", shapes[index]
        if not by_colour:
            return None
        colour = str(rng.choice(by_colour))
        return f"what shape is the {colour} object?", shapes[colours.index(colour)]
    if kind == "describe":
        return "describe the image.", caption
    if kind == "sound":
        roll = rng.random()
        if roll < 0.4:
            return "which shape sounds first?", shapes[0]
        if roll < 0.7:
            return "which shape sounds last?", shapes[-1]
        return "how many tones are there?", NUMBERS[count]
    raise ValueError(f"no single-scene question of kind {kind!r}")


def compare_question(first: Objects, second: Objects) -> tuple[str, str]:
    return "how many objects are there in the two images together?", NUMBERS[len(first) + len(second)]


def edit_scene(scene: Scene, rng: np.random.Generator,
               held_out: frozenset[tuple[str, str]] = frozenset()) -> tuple[str, Scene] | None:
    """"draw the same scene with the square in blue": one object recoloured, everything else kept. The object
    is named by its shape when that is unique, else by colour and shape; no held-out combination is made."""
    objects = scene.objects
    shapes = [o.shape for o in objects]
    pairs = [(o.color, o.shape) for o in objects]
    candidates = [i for i in range(len(objects)) if pairs.count(pairs[i]) == 1]
    if not candidates:
        return None
    index = int(rng.choice(candidates))
    target = objects[index]
    colours = [c for c in COLORS if c != target.color and (c, target.shape) not in held_out]
    colour = str(rng.choice(colours))
    name = target.shape if shapes.count(target.shape) == 1 else f"{target.color} {target.shape}"
    edited = SceneObject(target.shape, colour, target.size, target.x, target.y)
    new_objects = tuple(edited if i == index else o for i, o in enumerate(objects))
    return f"draw the same scene with the {name} in {colour}.", Scene(new_objects)


def swap_scene(scene: Scene, held_out: frozenset[tuple[str, str]] = frozenset()) -> Scene | None:
    """The scene with its two objects' colours exchanged (shapes, sizes and places kept), or None when the
    question does not fit: only a scene of exactly two objects of different colours has one clear swap (one
    object has nothing to swap with, and three have no single natural permutation), and no swap makes a
    held-out combination, which training must never show."""
    if len(scene.objects) != 2 or scene.objects[0].color == scene.objects[1].color:
        return None
    left, right = scene.objects
    swapped = (SceneObject(left.shape, right.color, left.size, left.x, left.y),
               SceneObject(right.shape, left.color, right.size, right.x, right.y))
    if any((o.color, o.shape) in held_out for o in swapped):
        return None
    return Scene(swapped)


def held_out_scenes(world: Any, data_cfg: Any, count: int) -> list[Scene]:
    """Evaluation scenes: combinations seen in training, drawn with a seed no split of training uses."""
    return world.dataset(int(count), seed=int(data_cfg.seed) + HELD_OUT_SEED_OFFSET, split="train")


@dataclass
class Edit:
    instruction: str
    codes: np.ndarray            # image codes of the edited scene
    objects: Objects             # what the edited image holds, left to right


def make_edits(world: Any, scenes: list[Scene], image_tokenizer: Any, seed: int, batch_size: int = 64,
               held_out: frozenset[tuple[str, str]] = frozenset()) -> dict[int, Edit]:
    """An edit of each scene (where one fits), rendered and encoded once: ``scene index -> Edit``."""
    rng = np.random.default_rng((seed, 7))
    chosen = [(i, edit_scene(scene, rng, held_out)) for i, scene in enumerate(scenes)]
    return _encode_twins(world, [(i, e) for i, e in chosen if e is not None], image_tokenizer, batch_size)


def make_swaps(world: Any, scenes: list[Scene], image_tokenizer: Any, batch_size: int = 64,
               held_out: frozenset[tuple[str, str]] = frozenset()) -> dict[int, Edit]:
    """The colour-swapped twin of each scene where one fits (:func:`swap_scene`): ``scene index -> Edit``
    (its instruction is :data:`SWAP_QUESTION`; the answer's text part, the caption, comes with the scene)."""
    chosen = [(i, swap_scene(scene, held_out)) for i, scene in enumerate(scenes)]
    twins = [(i, (SWAP_QUESTION, new)) for i, new in chosen if new is not None]
    return _encode_twins(world, twins, image_tokenizer, batch_size)


def _encode_twins(world: Any, chosen: list[tuple[int, tuple[str, Scene]]], image_tokenizer: Any,
                  batch_size: int) -> dict[int, Edit]:
    """``(scene index, (instruction, new scene))`` -> the new scenes rendered and encoded once, in batches."""
    from unimodal.data.tokens import images_to_tensor

    edits: dict[int, Edit] = {}
    for start in range(0, len(chosen), batch_size):
        part = chosen[start:start + batch_size]
        images = images_to_tensor([world.render_image(new) for _, (_, new) in part])
        with torch.no_grad():
            codes = image_tokenizer.eval().encode(images).cpu().numpy()
        for (index, (text, new)), scene_codes in zip(part, codes, strict=True):
            edits[index] = Edit(text, scene_codes, new.attributes())
    return edits


class ChatDataset(Dataset):
    """Conversations over a tokenized split: item ``i`` is drawn from a generator seeded by ``(seed, i)``, so
    an index always gives the same conversation (a resumed run sees the same data)."""

    def __init__(self, tokens: TokenizedSet, codec: SequenceCodec, encode_text: Callable[[str], list[int]],
                 mix: dict[str, float], max_turns: int, context_length: int, edits: dict[int, Edit] | None = None,
                 tasks: list[str] | None = None, cond_drop_prob: float = 0.0, seed: int = 0,
                 length: int | None = None, swaps: dict[int, Edit] | None = None) -> None:
        self.tokens, self.codec, self.context_length = tokens, codec, context_length
        self.max_turns, self.seed = int(max_turns), seed
        self.twins = {"edit": edits or {}, "swap": swaps or {}}   # kind -> {scene index -> its changed twin}
        self.twin_indices = {kind: sorted(twins) for kind, twins in self.twins.items()}
        self.tasks, self.cond_drop_prob = list(tasks or []), cond_drop_prob
        self.size = int(length or len(tokens))
        self._text_cache: dict[str, np.ndarray] = {}
        self._encode_text = encode_text
        media = set(tokens.payloads(0)) - {"text"} if len(tokens) else set()  # token shard or in-memory set
        usable = {"count", "colour", "shape", "describe", "compare"} if "image" in media else set()
        usable |= {kind for kind, twins in self.twins.items() if "image" in media and twins}
        if "audio" in media:
            usable.add("sound")
        if self.tasks:
            usable.add("paired")
        self.kinds = [k for k in KINDS if k in usable and mix.get(k, 0.0) > 0]
        if not self.kinds:
            raise ConfigError(f"instruct.mix gives no weight to a kind this run can ask ({sorted(usable)}); "
                              f"raise one of them above 0")
        weights = np.array([mix[k] for k in self.kinds], dtype=np.float64)
        self.probs = weights / weights.sum()
        image_kinds = [k for k in IMAGE_KINDS if k in self.kinds]
        self.follow_up = {"image": image_kinds, "audio": ["sound"] if "sound" in self.kinds else []}
        self.mix = mix

    def __len__(self) -> int:
        return self.size

    def text(self, value: str) -> np.ndarray:
        if value not in self._text_cache:
            self._text_cache[value] = np.asarray(self._encode_text(value), dtype=np.int64)
        return self._text_cache[value]

    def conversation(self, index: int) -> tuple[list[Turn] | list[Segment], list[str]]:
        """The turns of item ``index`` and the kind of each answer (a plain segment list for ``paired``)."""
        rng = np.random.default_rng((self.seed, int(index)))
        kind = self.kinds[int(rng.choice(len(self.kinds), p=self.probs))]
        n = len(self.tokens)
        if kind == "paired":
            sample, task = int(rng.integers(n)), self.tasks[int(rng.integers(len(self.tasks)))]
            drop = draw_drop(rng, self.cond_drop_prob)
            return task_segments(self.tokens.payloads(sample), task, drop_condition=drop), ["paired"]
        if kind == "compare":
            first, second = (int(i) for i in rng.integers(n, size=2))
            question, answer = compare_question(self._objects(first), self._objects(second))
            user = [Segment("image", self.tokens.payloads(first)["image"]),
                    Segment("image", self.tokens.payloads(second)["image"]), Segment("text", self.text(question))]
            return [Turn("user", user), Turn("assistant", [Segment("text", self.text(answer))])], ["compare"]
        sample = int(rng.choice(self.twin_indices[kind])) if kind in TWIN_KINDS else int(rng.integers(n))
        medium = "audio" if kind == "sound" else "image"
        turns = [Turn("user", [Segment(medium, self.tokens.payloads(sample)[medium])])]
        kinds: list[str] = []
        options = [k for k in self.follow_up[medium] if k not in TWIN_KINDS or sample in self.twins[k]]
        weights = np.array([self.mix[k] for k in options], dtype=np.float64)
        for turn in range(int(rng.integers(1, self.max_turns + 1))):
            this = kind if turn == 0 else options[int(rng.choice(len(options), p=weights / weights.sum()))]
            if this in TWIN_KINDS and this in kinds:  # a scene has one twin: asked twice it would teach nothing
                continue
            if this in TWIN_KINDS:
                twin = self.twins[this][sample]
                question, answer = twin.instruction, [Segment("image", twin.codes)]
                if this == "swap":  # interleaved: describe the scene, then draw its twin
                    answer.insert(0, Segment("text", self.text(self.tokens.captions[sample])))
            else:
                qa = ask(this, self._objects(sample), rng, self.tokens.captions[sample])
                if qa is None:
                    continue
                question, answer = qa[0], [Segment("text", self.text(qa[1]))]
            if turns[-1].role == "user":
                turns[-1].segments.append(Segment("text", self.text(question)))
            else:
                turns.append(Turn("user", [Segment("text", self.text(question))]))
            turns.append(Turn("assistant", answer))
            kinds.append(this)
        if not kinds:  # every question drawn was one the scene cannot answer: describing always fits
            qa = ask("describe", self._objects(sample), rng, self.tokens.captions[sample])
            turns[-1].segments.append(Segment("text", self.text(qa[0])))
            turns.append(Turn("assistant", [Segment("text", self.text(qa[1]))]))
            kinds.append("describe")
        return turns, kinds

    def _objects(self, sample: int) -> Objects:
        return [(str(c), str(s)) for c, s in self.tokens.attributes[sample]]

    def encode(self, index: int) -> tuple[Any, list[str]]:
        """Item ``index`` as ids; question/answer turns that would not fit the context are left off the end."""
        turns, kinds = self.conversation(index)
        if kinds == ["paired"]:
            return self.codec.encode(turns), kinds
        encoded = encode_chat(self.codec, turns)
        while len(encoded) > self.context_length and len(kinds) > 1:
            turns, kinds = turns[:-2], kinds[:-1]
            encoded = encode_chat(self.codec, turns)
        return encoded, kinds

    def length_of(self, index: int) -> int:
        return len(self.encode(index)[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        encoded, kinds = self.encode(index)
        if len(encoded) > self.context_length:
            raise ConfigError(f"an instruction conversation ({kinds}) needs {len(encoded)} tokens but "
                              f"model.context_length is {self.context_length}; raise it or lower "
                              f"instruct.max_turns")
        return {"ids": torch.from_numpy(encoded.ids), "loss_mask": torch.from_numpy(encoded.loss_mask),
                "modality": torch.from_numpy(encoded.modality_of_position.astype(np.int64)),
                "task": torch.tensor(KINDS.index(kinds[0]))}
