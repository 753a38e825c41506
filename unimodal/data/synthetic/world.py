"""The synthetic world: seeded scenes of 1..3 coloured shapes, their captions and the held-out combinations.

Every scene has three exact renderings: its caption (:meth:`World.caption`), an RGB image on black and a
sequence of tones (:meth:`World.render_image`, :meth:`World.render_sound`, drawn with the shapes and tones of
:mod:`unimodal.data.synthetic.render`). :mod:`unimodal.data.synthetic.analyze` goes back from image, sound and
caption to the objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from unimodal.data.synthetic.render import _shape_mask, _tone

SHAPES = ("circle", "square", "triangle", "cross")  # cross = plus sign
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 200, 30),
    "blue": (40, 60, 255),
    "yellow": (235, 220, 30),
    "cyan": (30, 220, 230),
    "magenta": (220, 40, 220),
}
SIZES = ("small", "large")
DEFAULT_HELD_OUT = (("green", "triangle"), ("blue", "cross"), ("yellow", "circle"), ("magenta", "square"))
SPLITS = ("train", "held_out", "all")

# Geometry, in pixels at the 32 px reference; everything scales with image_size / 32.
_REF_SIZE = 32.0
_SIZE_PX = {"small": 8.5, "large": 12.0}
_GAP_PX = 3.0  # min space between object boxes: >= 2 black pixels, so a 3x3 blur cannot bridge two objects
_MARGIN_PX = 1.0  # min space to the image border
_MIN_DX_PX = 4.0  # min horizontal distance between neighbours, so left-to-right order is unambiguous
_LAYOUT_BATCH = 2048  # candidate layouts drawn at once; the densest (3 large objects) accepts ~0.07%
_LAYOUT_BATCHES = 16  # then a deterministic fallback; reached with probability ~1e-10

# Sound.
_GAP_S = 0.06  # silence between neighbouring tones (half at each end of every slot); > 2x a tremolo dip

_FILLER_WORDS = frozenset({"a", "an", "the", "left", "of", "and"})


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    x: float  # centre, pixels from the left edge
    y: float  # centre, pixels from the top edge


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def __post_init__(self) -> None:
        # Captions, sounds and analyzers all read objects left to right; enforce it once here.
        object.__setattr__(self, "objects", tuple(sorted(self.objects, key=lambda o: o.x)))

    def attributes(self) -> list[tuple[str, str]]:
        return [(o.color, o.shape) for o in self.objects]


@dataclass
class WorldConfig:
    image_size: int = 32
    sample_rate: int = 16000
    audio_seconds: float = 0.8
    max_objects: int = 3
    single_object_prob: float = 0.5  # P(exactly one object); the rest is uniform over 2..max_objects
    held_out: tuple = DEFAULT_HELD_OUT


class World:
    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.held_out = frozenset((str(c), str(s)) for c, s in self.config.held_out)
        self._validate()
        combos = [(c, s) for c in COLORS for s in SHAPES]
        self.train_combos = [cs for cs in combos if cs not in self.held_out]
        self.held_out_combos = [cs for cs in combos if cs in self.held_out]
        self.all_combos = combos

    def _validate(self) -> None:
        cfg = self.config
        if cfg.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {cfg.image_size}")
        if cfg.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {cfg.max_objects}")
        if not 0.0 <= cfg.single_object_prob <= 1.0:
            raise ValueError(f"single_object_prob must be in [0, 1], got {cfg.single_object_prob}")
        for color, shape in self.held_out:
            if color not in COLORS or shape not in SHAPES:
                raise ValueError(f"held_out combo ({color!r}, {shape!r}) is not a known colour and shape")

    # ------------------------------------------------------------------ sampling

    def sample_scene(
        self, rng: np.random.Generator, split: str = "train", num_objects: int | None = None
    ) -> Scene:
        n = self._sample_count(rng) if num_objects is None else int(num_objects)
        if not 1 <= n <= self.config.max_objects:
            raise ValueError(f"num_objects must be in 1..{self.config.max_objects}, got {n}")
        combos = self._sample_combos(rng, split, n)
        sizes = [SIZES[i] for i in rng.integers(len(SIZES), size=n)]
        return self._place(rng, [(c, s, z) for (c, s), z in zip(combos, sizes, strict=True)])

    def _sample_count(self, rng: np.random.Generator) -> int:
        single = rng.random() < self.config.single_object_prob
        if single or self.config.max_objects == 1:
            return 1
        return int(rng.integers(2, self.config.max_objects + 1))

    def _sample_combos(self, rng: np.random.Generator, split: str, n: int) -> list[tuple[str, str]]:
        if split == "train":
            return [self.train_combos[i] for i in rng.integers(len(self.train_combos), size=n)]
        if split == "all":
            return [self.all_combos[i] for i in rng.integers(len(self.all_combos), size=n)]
        if split != "held_out":
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if not self.held_out_combos:
            raise ValueError("split='held_out' needs a non-empty WorldConfig.held_out")
        # One guaranteed held-out object at a random position; the others are unconstrained.
        combos = [self.all_combos[i] for i in rng.integers(len(self.all_combos), size=n)]
        combos[int(rng.integers(n))] = self.held_out_combos[int(rng.integers(len(self.held_out_combos)))]
        return combos

    def scene_from_prompt(self, text: str, rng: np.random.Generator) -> Scene:
        """Inverse of caption: "a red circle left of a blue square" -> a matching random layout.

        Colour or size words that are missing are drawn at random; size words ("small"/"large") are
        accepted although captions never contain them.
        """
        specs: list[tuple[str, str, str]] = []
        color: str | None = None
        size: str | None = None
        for word in _words(text):
            if word in COLORS:
                color = word
            elif word in SIZES:
                size = word
            elif word in SHAPES:
                c = color if color is not None else str(rng.choice(list(COLORS)))
                z = size if size is not None else str(rng.choice(SIZES))
                specs.append((c, word, z))
                color, size = None, None
            elif word not in _FILLER_WORDS:
                raise ValueError(f"unknown word {word!r} in prompt {text!r}")
        if color is not None or size is not None:
            raise ValueError(f"prompt {text!r} ends with a colour or size but no shape")
        if not 1 <= len(specs) <= self.config.max_objects:
            limit = self.config.max_objects
            raise ValueError(f"prompt {text!r} names {len(specs)} objects; expected 1..{limit}")
        return self._place(rng, specs)

    def dataset(self, n: int, seed: int, split: str = "train") -> list[Scene]:
        rng = np.random.default_rng(seed)
        return [self.sample_scene(rng, split) for _ in range(n)]

    # ------------------------------------------------------------------ layout

    def size_px(self, size: str) -> float:
        return _SIZE_PX[size] * self.config.image_size / _REF_SIZE

    def _place(self, rng: np.random.Generator, specs: list[tuple[str, str, str]]) -> Scene:
        """Give each (colour, shape, size) a centre in its own horizontal slot, left to right."""
        widths = np.array([self.size_px(z) for _, _, z in specs])
        xs, ys = self._sample_layout(rng, widths)
        objects = tuple(
            SceneObject(shape=s, color=c, size=z, x=float(x), y=float(y))
            for (c, s, z), x, y in zip(specs, xs, ys, strict=True)
        )
        return Scene(objects)

    def _sample_layout(self, rng: np.random.Generator, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Rejection sampling: uniform over valid layouts. Draw counts are fixed per batch, so the
        # stream stays deterministic for a seed.
        x_lo, x_hi, inner_lo, inner_hi = self._layout_bounds(widths)
        for _ in range(_LAYOUT_BATCHES):
            xs = rng.uniform(x_lo, x_hi, size=(_LAYOUT_BATCH, len(widths)))
            ys = rng.uniform(inner_lo, inner_hi, size=(_LAYOUT_BATCH, len(widths)))
            ok = self._layout_ok(xs, ys, widths)
            if ok.any():
                i = int(np.argmax(ok))
                return xs[i], ys[i]
        return self._fallback_layout(widths)

    def _layout_bounds(self, widths: np.ndarray) -> tuple[np.ndarray, ...]:
        """Centre ranges: x inside the object's slot, and both x and y keeping it inside the image."""
        size = float(self.config.image_size)
        margin = _MARGIN_PX * size / _REF_SIZE
        n = len(widths)
        inner_lo = widths / 2 + margin
        inner_hi = size - widths / 2 - margin
        slot = size / n
        x_lo = np.clip(np.arange(n) * slot, inner_lo, inner_hi)
        x_hi = np.clip((np.arange(n) + 1) * slot, inner_lo, inner_hi)
        return x_lo, x_hi, inner_lo, inner_hi

    def _layout_ok(self, xs: np.ndarray, ys: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """Vectorised over candidate rows: boxes never touch, neighbours are clearly left/right."""
        scale = self.config.image_size / _REF_SIZE
        ok = np.ones(xs.shape[0], dtype=bool)
        n = len(widths)
        for i in range(n):
            for j in range(i + 1, n):
                need = (widths[i] + widths[j]) / 2 + _GAP_PX * scale
                apart = (np.abs(xs[:, i] - xs[:, j]) >= need) | (np.abs(ys[:, i] - ys[:, j]) >= need)
                ok &= apart
        if n > 1:
            ok &= (np.diff(xs, axis=1) >= _MIN_DX_PX * scale).all(axis=1)
        return ok

    def _fallback_layout(self, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Deterministic zig-zag: spread evenly from the left-most to the right-most allowed centre,
        # alternating top and bottom. Used only if sampling fails.
        x_lo, x_hi, inner_lo, inner_hi = self._layout_bounds(widths)
        spread = np.linspace(x_lo[0], x_hi[-1], len(widths)) if len(widths) > 1 else (x_lo + x_hi) / 2
        xs = np.clip(spread, x_lo, x_hi)
        ys = np.where(np.arange(len(widths)) % 2 == 0, inner_lo, inner_hi)
        if not self._layout_ok(xs[None], ys[None], widths)[0]:
            raise ValueError(f"cannot fit {len(widths)} objects into a {self.config.image_size} px image")
        return xs, ys

    # ------------------------------------------------------------------ rendering

    def caption(self, scene: Scene) -> str:
        names = [f"a {o.color} {o.shape}" for o in scene.objects]
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} left of {names[1]}"
        return ", ".join(names[:-1]) + " and " + names[-1]

    def render_image(self, scene: Scene) -> np.ndarray:
        size = self.config.image_size
        centres = np.arange(size) + 0.5  # pixel i covers [i, i + 1)
        image = np.zeros((size, size, 3), dtype=np.uint8)
        for o in scene.objects:
            mask = _shape_mask(o.shape, o.x, o.y, self.size_px(o.size), centres[None, :], centres[:, None])
            image[mask] = COLORS[o.color]
        return image

    def render_sound(self, scene: Scene) -> np.ndarray:
        sr = self.config.sample_rate
        total = round(sr * self.config.audio_seconds)
        wave = np.zeros(total, dtype=np.float64)
        n = len(scene.objects)
        half_gap = round(_GAP_S * sr / 2)
        for i, o in enumerate(scene.objects):
            start = round(i * total / n) + half_gap
            end = round((i + 1) * total / n) - half_gap
            if end > start:
                wave[start:end] = _tone(o.color, o.shape, end - start, sr)
        return wave.astype(np.float32)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())
