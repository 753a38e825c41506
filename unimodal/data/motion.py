"""Motion in the synthetic world: clips of one or two shapes that each move left, right, up or down.

A :class:`Clip` is a scene at frame 0 plus one direction per object; every object travels the same distance
(``travel_px`` at the 32 px reference) in a straight line over the clip's frames. Clips are drawn so that
every object stays inside the image and no two objects touch in any frame, so the image analyzer sees each
object in every frame and :func:`analyze_video` (track objects frame to frame, read the displacement) is
exact on rendered clips. Captions say how each object moves: "a red circle moves left and a blue square
moves up" (objects named left to right at frame 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from unimodal.data.synthetic.analyze import analyze_image
from unimodal.data.synthetic.world import COLORS, SHAPES, SIZES, Scene, SceneObject, World

MOTIONS = ("left", "right", "up", "down")
STILL = "still"  # what the analyzer reports for an object that did not move far enough
_STEP = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
_REF_SIZE = 32.0
_TRAVEL_PX = 8.0      # how far every object moves over a clip, at the 32 px reference
_GAP_PX = 3.0         # as the still world: boxes never closer, so a 3x3 blur cannot bridge two objects
_MARGIN_PX = 1.0
_MIN_DX_PX = 4.0      # frame-0 left-to-right order stays unambiguous (the caption's order)
_BATCH = 2048         # candidate layouts per draw of directions
_DRAWS = 64           # draws of directions before giving up
MAX_OBJECTS = 2       # three objects that each travel a quarter of the image seldom fit apart in 32 px
_MIN_MOVE = 0.4       # of the travel: a tracked object that moved less is reported as still
_FILLER = frozenset({"a", "an", "the", "and", "moves", "moving"})


@dataclass(frozen=True)
class Clip:
    """Objects at frame 0 (left to right) and each one's direction."""

    objects: tuple[SceneObject, ...]
    motions: tuple[str, ...]
    num_frames: int
    travel: float  # pixels each object moves from the first frame to the last

    def offset(self, frame: int) -> float:
        return self.travel * frame / max(self.num_frames - 1, 1)

    def scene_at(self, frame: int) -> Scene:
        shift = self.offset(frame)
        return Scene(tuple(replace(o, x=o.x + _STEP[m][0] * shift, y=o.y + _STEP[m][1] * shift)
                           for o, m in zip(self.objects, self.motions, strict=True)))

    def attributes(self) -> list[tuple[str, str, str]]:
        return [(o.color, o.shape, m) for o, m in zip(self.objects, self.motions, strict=True)]


@dataclass(frozen=True)
class MovingObject:
    color: str
    shape: str
    direction: str  # one of MOTIONS, or STILL
    x: float        # position in the first frame it was seen
    y: float


class MotionWorld:
    """Clips of ``num_frames`` frames over a :class:`World` (its palette, shapes, sizes and held-out pairs)."""

    def __init__(self, world: World, num_frames: int = 9) -> None:
        if int(num_frames) < 2:
            raise ValueError(f"a clip needs at least 2 frames, got num_frames={num_frames}")
        self.world = world
        self.num_frames = int(num_frames)
        self.scale = world.config.image_size / _REF_SIZE
        self.travel = _TRAVEL_PX * self.scale

    # ------------------------------------------------------------------ sampling
    def sample_clip(self, rng: np.random.Generator, split: str = "train", num_objects: int | None = None) -> Clip:
        limit = min(self.world.config.max_objects, MAX_OBJECTS)
        n = min(self.world._sample_count(rng), limit) if num_objects is None else int(num_objects)
        if not 1 <= n <= limit:
            raise ValueError(f"num_objects must be in 1..{limit} for clips, got {n}")
        combos = self.world._sample_combos(rng, split, n)
        sizes = [SIZES[i] for i in rng.integers(len(SIZES), size=n)]
        return self._place(rng, [(c, s, z) for (c, s), z in zip(combos, sizes, strict=True)])

    def dataset(self, n: int, seed: int, split: str = "train") -> list[Clip]:
        rng = np.random.default_rng(seed)
        return [self.sample_clip(rng, split) for _ in range(n)]

    def clip_from_prompt(self, text: str, rng: np.random.Generator) -> Clip:
        """Inverse of :meth:`caption`: "a red circle moves left" -> a matching random clip (a missing
        direction is drawn at random)."""
        specs = parse_motion_caption(text)
        limit = min(self.world.config.max_objects, MAX_OBJECTS)
        if not 1 <= len(specs) <= limit:
            raise ValueError(f"prompt {text!r} names {len(specs)} objects; expected 1..{limit}")
        sizes = [SIZES[i] for i in rng.integers(len(SIZES), size=len(specs))]
        return self._place(rng, [(c, s, z) for (c, s, _), z in zip(specs, sizes, strict=True)],
                           [m if m in MOTIONS else None for _, _, m in specs])

    def _place(self, rng: np.random.Generator, specs: list[tuple[str, str, str]],
               fixed: list[str | None] | None = None) -> Clip:
        # Rejection sampling over start positions for one draw of directions at a time: every frame must
        # keep the objects inside the image and apart. Draw counts are fixed, so a seed gives one stream.
        widths = np.array([self.world.size_px(z) for _, _, z in specs])
        for _ in range(_DRAWS):
            motions = [m if fixed and fixed[i] else MOTIONS[int(rng.integers(len(MOTIONS)))]
                       for i, m in enumerate(fixed or [None] * len(specs))]
            found = self._sample_starts(rng, widths, motions)
            if found is not None:
                xs, ys = found
                order = np.argsort(xs, kind="stable")
                objects = tuple(SceneObject(shape=specs[i][1], color=specs[i][0], size=specs[i][2],
                                            x=float(xs[i]), y=float(ys[i])) for i in order)
                return Clip(objects, tuple(motions[i] for i in order), self.num_frames, self.travel)
        raise ValueError(f"cannot fit {len(specs)} moving objects into a {self.world.config.image_size} px image")

    def _sample_starts(self, rng: np.random.Generator, widths: np.ndarray,
                       motions: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        size = float(self.world.config.image_size)
        margin = _MARGIN_PX * self.scale
        step = np.array([_STEP[m] for m in motions]) * self.travel   # [n, 2] displacement over the clip
        lo = widths[:, None] / 2 + margin - np.minimum(step, 0)     # start so that the end stays inside
        hi = size - widths[:, None] / 2 - margin - np.maximum(step, 0)
        if (hi < lo).any():
            return None
        n = len(widths)
        starts = rng.uniform(lo, hi, size=(_BATCH, n, 2))
        fractions = np.linspace(0.0, 1.0, self.num_frames)
        paths = starts[:, :, None, :] + fractions[None, None, :, None] * step[None, :, None, :]  # [K, n, T, 2]
        ok = np.ones(_BATCH, dtype=bool)
        for i in range(n):
            for j in range(i + 1, n):
                need = (widths[i] + widths[j]) / 2 + _GAP_PX * self.scale
                apart = (np.abs(paths[:, i] - paths[:, j]) >= need).any(axis=-1)  # [K, T]
                ok &= apart.all(axis=1)
        if n > 1:
            ok &= (np.diff(np.sort(starts[:, :, 0], axis=1), axis=1) >= _MIN_DX_PX * self.scale).all(axis=1)
        if not ok.any():
            return None
        k = int(np.argmax(ok))
        return starts[k, :, 0], starts[k, :, 1]

    # ------------------------------------------------------------------ rendering
    def caption(self, clip: Clip) -> str:
        names = [f"a {o.color} {o.shape} moves {m}" for o, m in zip(clip.objects, clip.motions, strict=True)]
        if len(names) == 1:
            return names[0]
        return ", ".join(names[:-1]) + " and " + names[-1]

    def render_video(self, clip: Clip) -> np.ndarray:
        """uint8 ``[T, H, W, 3]``."""
        return np.stack([self.world.render_image(clip.scene_at(t)) for t in range(clip.num_frames)])


# ---------------------------------------------------------------------- text


def parse_motion_caption(text: str) -> list[tuple[str, str, str | None]]:
    """[(colour, shape, direction or None)] in order: a direction word belongs to the shape before it."""
    found: list[list] = []
    color: str | None = None
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in COLORS:
            color = word
        elif word in SHAPES and color is not None:
            found.append([color, word, None])
            color = None
        elif word in MOTIONS and found and found[-1][2] is None:
            found[-1][2] = word
    return [tuple(item) for item in found]


# ---------------------------------------------------------------------- analysis


def analyze_video(frames: np.ndarray, travel: float | None = None, max_frames: int = 5) -> list[MovingObject]:
    """Objects of a clip ``[T, H, W, 3]`` and how each moves, left to right at their first sighting.

    Up to ``max_frames`` evenly spaced frames (first and last always; the image analyzer is the cost) go
    through :func:`~unimodal.data.synthetic.analyze.analyze_image`; detections are chained frame
    to frame (same colour, nearest centre), shape is the majority over the frames, and the direction is the
    larger axis of the displacement from first to last sighting (``still`` when it is under ``_MIN_MOVE``
    of the travel, which defaults to the world's at this image size).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected a clip [T, H, W, 3], got shape {frames.shape}")
    travel = _TRAVEL_PX * frames.shape[2] / _REF_SIZE if travel is None else float(travel)
    reach = max(travel, 6.0 * frames.shape[2] / _REF_SIZE)  # a step between frames is far shorter
    tracks: list[dict] = []
    chosen = np.unique(np.round(np.linspace(0, len(frames) - 1, min(len(frames), max(2, max_frames)))).astype(int))
    for frame in frames[chosen]:
        detections = analyze_image(frame)
        taken: set[int] = set()
        for track in tracks:
            last = track["points"][-1]
            best, best_distance = None, reach
            for k, d in enumerate(detections):
                distance = float(np.hypot(d.x - last[0], d.y - last[1]))
                if k not in taken and d.color == track["color"] and distance <= best_distance:
                    best, best_distance = k, distance
            if best is not None:
                taken.add(best)
                track["points"].append((detections[best].x, detections[best].y))
                track["shapes"].append(detections[best].shape)
        if not tracks:  # objects are those of the first frame that shows any
            tracks = [{"color": d.color, "points": [(d.x, d.y)], "shapes": [d.shape]} for d in detections]
    found = []
    for track in tracks:
        (x0, y0), (x1, y1) = track["points"][0], track["points"][-1]
        dx, dy = x1 - x0, y1 - y0
        if max(abs(dx), abs(dy)) < _MIN_MOVE * travel:
            direction = STILL
        elif abs(dx) >= abs(dy):
            direction = "right" if dx > 0 else "left"
        else:
            direction = "down" if dy > 0 else "up"
        shape = max(SHAPES, key=track["shapes"].count)
        found.append(MovingObject(track["color"], shape, direction, float(x0), float(y0)))
    return sorted(found, key=lambda o: o.x)


def motions_in(frames: np.ndarray) -> list[tuple[str, str, str]]:
    """:func:`analyze_video` as (colour, shape, direction) per object, left to right: what captions say."""
    return [(o.color, o.shape, o.direction) for o in analyze_video(frames)]
