"""A seeded procedural world: scenes of 1..3 coloured shapes rendered as caption, image and sound.

Every scene has three exact renderings (text, RGB image on black, a sequence of tones) and two analyzers
that go back from image -> objects and sound -> objects. Model outputs (blurry, noisy reconstructions
from learned codecs) are scored with the same analyzers, so the analyzers rely on cues that survive
blur, noise and colour shifts: hue direction and template overlap for images, fundamental frequency and
the loudness envelope for sounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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

# Fundamentals (Hz), ~1.29x apart: far apart on a log scale, and no pitch is within 5% of 2x or 3x
# another, so a stray harmonic cannot land on a palette pitch.
PITCHES: dict[str, float] = {
    "red": 240.0,
    "yellow": 310.0,
    "green": 400.0,
    "cyan": 520.0,
    "blue": 670.0,
    "magenta": 870.0,
}

# Geometry, in pixels at the 32 px reference; everything scales with image_size / 32.
_REF_SIZE = 32.0
_SIZE_PX = {"small": 8.5, "large": 12.0}
_GAP_PX = 3.0  # min space between object boxes: >= 2 black pixels, so a 3x3 blur cannot bridge two objects
_MARGIN_PX = 1.0  # min space to the image border
_MIN_DX_PX = 4.0  # min horizontal distance between neighbours, so left-to-right order is unambiguous
_LAYOUT_BATCH = 2048  # candidate layouts drawn at once; the densest (3 large objects) accepts ~0.07%
_LAYOUT_BATCHES = 16  # then a deterministic fallback; reached with probability ~1e-10

# Sound.
_AMPLITUDE = 0.8
_GAP_S = 0.06  # silence between neighbouring tones (half at each end of every slot); > 2x a tremolo dip
_FADE_S = 0.005
_TREMOLO_HZ = 10.0  # slow enough for a codec with 20 ms frames to keep
_TREMOLO_FLOOR = 0.3  # square never goes silent, so its dips are not mistaken for gaps between tones
_RAMP_END = 0.2  # triangle decays to, and cross rises from, this fraction of full amplitude

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


@dataclass(frozen=True)
class DetectedObject:
    shape: str
    color: str
    x: float
    y: float
    area: int  # pixels in the detected component


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


# ---------------------------------------------------------------------- shared geometry / synthesis


def _shape_mask(shape: str, cx, cy, w, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Pixels whose centres (px, py) fall inside the shape; all arguments broadcast together."""
    dx, dy, h = px - cx, py - cy, np.asarray(w) / 2
    if shape == "circle":
        return dx * dx + dy * dy <= h * h
    if shape == "square":
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if shape == "triangle":  # apex up, base along the bottom of the box
        return (dy >= -h) & (dy <= h) & (np.abs(dx) <= (dy + h) / 2)
    if shape == "cross":  # arms one third of the box wide
        t = h / 3
        return ((np.abs(dx) <= t) & (np.abs(dy) <= h)) | ((np.abs(dy) <= t) & (np.abs(dx) <= h))
    raise ValueError(f"unknown shape {shape!r}")


def _envelope(shape: str, t: np.ndarray, duration: float) -> np.ndarray:
    """Loudness over tone time t in [0, duration): the shape's timbre.

    Codecs keep the loudness envelope and the fundamental far better than harmonics, so shape lives in
    the envelope: steady, 10 Hz tremolo, decaying pluck, rising swell. Pluck and swell are exponential,
    i.e. straight lines in log-loudness, which the analyzer fits.
    """
    u = t / duration
    if shape == "circle":
        return np.ones_like(t)
    if shape == "square":
        return _TREMOLO_FLOOR + (1 - _TREMOLO_FLOOR) * (0.5 + 0.5 * np.cos(2 * np.pi * _TREMOLO_HZ * t))
    if shape == "triangle":
        return _RAMP_END**u
    if shape == "cross":
        return _RAMP_END ** (1.0 - u)
    raise ValueError(f"unknown shape {shape!r}")


def _tone(color: str, shape: str, length: int, sample_rate: int) -> np.ndarray:
    t = np.arange(length) / sample_rate
    fade_len = max(1, round(_FADE_S * sample_rate))
    ramp = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / fade_len)
    fade = 0.5 - 0.5 * np.cos(np.pi * ramp)  # raised cosine avoids clicks
    envelope = _envelope(shape, t, length / sample_rate)
    return _AMPLITUDE * envelope * fade * np.sin(2 * np.pi * PITCHES[color] * t)


# ---------------------------------------------------------------------- text


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def parse_caption(text: str) -> list[tuple[str, str]]:
    """[(colour, shape)] in order; a shape counts only after a colour, other words are ignored."""
    pairs: list[tuple[str, str]] = []
    color: str | None = None
    for word in _words(text):
        if word in COLORS:
            color = word
        elif word in SHAPES and color is not None:
            pairs.append((color, word))
            color = None
    return pairs


# ---------------------------------------------------------------------- image analysis

_PALETTE_NAMES = tuple(COLORS)
_PALETTE_DIRS = np.array([COLORS[c] for c in _PALETTE_NAMES], dtype=np.float64)
_PALETTE_DIRS /= np.linalg.norm(_PALETTE_DIRS, axis=1, keepdims=True)
_CORE_FRACTION = 0.4  # of the brightest pixels; a 3x3 blur leaves halos at <= 1/3, inner corners at 4/9
_MIN_AREA_FRACTION = 0.1  # of a small object's box: smaller components are noise or fragments
_SEARCH = ((0.75, 1.0, 2), (0.25, 0.5, 1))  # (centre step, width step, steps each way): coarse, then fine
_BLUR_LEVELS = 3  # templates are also tried after 1..3 box blurs, to match blurry reconstructions


def _as_float_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    return np.clip(img.astype(np.float64), 0.0, 1.0)


def _nearest_color(rgb: np.ndarray) -> np.ndarray:
    """Palette index by hue direction (cosine), so dimmed or blurred pixels keep their colour."""
    norm = np.linalg.norm(rgb, axis=-1, keepdims=True)
    return np.argmax((rgb / np.maximum(norm, 1e-9)) @ _PALETTE_DIRS.T, axis=-1)


def analyze_image(image: np.ndarray) -> list[DetectedObject]:
    """Objects in an image, left to right: colour by hue, shape by best-matching template.

    Pixels well above the background are labelled with the nearest palette hue; connected components
    per colour (minus tiny fragments) are objects.
    """
    img = _as_float_image(image)
    # Remove a uniform background tint (per channel) so dim pixels keep their hue and shapes their contrast.
    img = np.clip(img - np.median(img.reshape(-1, 3), axis=0), 0.0, 1.0)
    bright = img.max(axis=2)
    peak = float(np.quantile(bright, 0.995))
    if peak < 0.1:
        return []
    scale = min(img.shape[:2]) / _REF_SIZE
    min_area = _MIN_AREA_FRACTION * (_SIZE_PX["small"] * scale) ** 2
    core = bright >= _CORE_FRACTION * peak
    color_idx = _nearest_color(img)
    comps: list[tuple[str, np.ndarray]] = []
    for ci, name in enumerate(_PALETTE_NAMES):
        labels, count = ndimage.label(core & (color_idx == ci), structure=np.ones((3, 3)))
        for k in range(1, count + 1):
            comp = labels == k
            if comp.sum() >= min_area:
                comps.append((name, comp))
    all_cores = np.zeros_like(core)
    for _, comp in comps:
        all_cores |= comp
    found = [_describe(name, comp, bright, all_cores & ~comp, scale) for name, comp in comps]
    return sorted(found, key=lambda d: d.x)


def _describe(
    color: str, comp: np.ndarray, bright: np.ndarray, others: np.ndarray, scale: float
) -> DetectedObject:
    """Position from the half-brightness box; shape from template matching in a window around it."""
    local_peak = float(np.quantile(bright[comp], 0.8))
    half = comp & (bright >= 0.5 * local_peak)  # ~ the object's true extent, even after a blur
    if not half.any():
        half = comp
    rows, cols = np.nonzero(half)
    cx = (cols.min() + cols.max() + 1) / 2
    cy = (rows.min() + rows.max() + 1) / 2
    width = float(max(cols.max() - cols.min() + 1, rows.max() - rows.min() + 1))
    pad = int(np.ceil(2 * scale)) + 2
    region = ndimage.binary_dilation(comp, iterations=int(np.ceil(2 * scale))) & ~others
    soft = np.clip(bright / max(local_peak, 1e-9), 0.0, 1.0) * region
    shape = _match_shape(soft, cx, cy, width, pad)
    return DetectedObject(shape=shape, color=color, x=float(cx), y=float(cy), area=int(comp.sum()))


def _match_shape(soft: np.ndarray, cx: float, cy: float, width: float, pad: int) -> str:
    """Shape whose template (position, size and blur fitted) best matches the soft mask."""
    h, w = soft.shape
    x0, x1 = max(0, int(np.floor(cx - width / 2)) - pad), min(w, int(np.ceil(cx + width / 2)) + pad)
    y0, y1 = max(0, int(np.floor(cy - width / 2)) - pad), min(h, int(np.ceil(cy + width / 2)) + pad)
    window = soft[y0:y1, x0:x1]
    px = np.arange(x0, x1) + 0.5
    py = np.arange(y0, y1) + 0.5
    scores = [_fit_template(shape, window, px, py, cx, cy, width) for shape in SHAPES]
    return SHAPES[int(np.argmax(scores))]


def _fit_template(
    shape: str, window: np.ndarray, px: np.ndarray, py: np.ndarray, cx: float, cy: float, width: float
) -> float:
    """Coarse-to-fine search over centre and width; blur moves a shape's apparent centre and extent."""
    best, params = -1.0, (cx, cy, width)
    for step, wstep, reach in _SEARCH:
        grid = np.arange(-reach, reach + 1, dtype=np.float64)
        cxs = params[0] + step * grid
        cys = params[1] + step * grid
        ws = params[2] + wstep * grid
        gx, gy, gw = (a.ravel() for a in np.meshgrid(cxs, cys, ws, indexing="ij"))
        gx, gy, gw = gx[:, None, None], gy[:, None, None], gw[:, None, None]
        template = _shape_mask(shape, gx, gy, gw, px[None, None, :], py[None, :, None]).astype(np.float32)
        scores = _cosine(template, window)
        for _ in range(_BLUR_LEVELS):
            template = _box_blur(template)
            scores = np.maximum(scores, _cosine(template, window))
        i = int(np.argmax(scores))
        if scores[i] > best:
            best, params = float(scores[i]), (float(gx[i, 0, 0]), float(gy[i, 0, 0]), float(gw[i, 0, 0]))
    return best


def _box_blur(stack: np.ndarray) -> np.ndarray:
    """Separable 3x3 box blur of every image in a [N, H, W] stack, zeros outside the window."""
    rows = stack.copy()
    rows[:, 1:] += stack[:, :-1]
    rows[:, :-1] += stack[:, 1:]
    out = rows.copy()
    out[:, :, 1:] += rows[:, :, :-1]
    out[:, :, :-1] += rows[:, :, 1:]
    return out  # unnormalised: the cosine score ignores scale


def _cosine(templates: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Cosine similarity of each template with the window: blind to the object's overall brightness."""
    flat = templates.reshape(len(templates), -1)
    target = window.ravel()
    norms = np.sqrt(np.einsum("ij,ij->i", flat, flat) * (target @ target))
    return (flat @ target) / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------------- sound analysis

_HOP_S = 0.005
_WIN_HOPS = 4  # 20 ms analysis window: spans several periods of the lowest pitch
_REL_THRESHOLD = 0.15  # of the loud frames; the quietest designed part of a tone sits at 0.2-0.3
_NOISE_FACTOR = 2.0  # threshold also stays above twice the noise floor (quietest frames)
_MAX_NOISE = 0.35  # of the loud frames: above this, the "floor" is part of a tone, not noise
_MIN_GAP_S = 0.03  # shorter quiet stretches are dips inside a tone (tremolo valleys, noise)
_MIN_TONE_S = 0.04
_PITCH_BAND = (150.0, 1300.0)  # palette pitches +-35%
_TREMOLO_RESIDUAL = 0.15  # log-loudness wobble left after a straight-line fit: only the square has it
_SLOPE = 0.5  # log-loudness change over a tone: pluck ~ -1.3, swell ~ +1.3, steady ~ 0


def analyze_sound(
    wave: np.ndarray, sample_rate: int, num_objects: int | None = None
) -> list[tuple[str, str]]:
    """[(colour, shape)] in time order: colour from the fundamental, shape from the loudness envelope."""
    x = np.asarray(wave, dtype=np.float64).ravel()
    hop = max(1, round(sample_rate * _HOP_S))
    win = _WIN_HOPS * hop
    env = _frame_rms(x, hop, win)
    if env.size == 0 or env.max() < 1e-6:
        return []
    loud = float(np.percentile(env, 95))
    # The quietest frames lie in the gaps between tones; the cap keeps a gapless sound from reading as noise.
    noise = min(float(np.percentile(env, 2)), _MAX_NOISE * loud)
    active = env > max(_REL_THRESHOLD * loud, _NOISE_FACTOR * noise)
    if num_objects is None:
        segments = _find_segments(active, round(_MIN_GAP_S / _HOP_S), round(_MIN_TONE_S / _HOP_S))
    else:
        segments = _slot_segments(active, len(x), hop, win, int(num_objects))
    return [
        (_classify_pitch(x[a * hop : b * hop + win], sample_rate), _classify_envelope(env[a : b + 1], noise))
        for a, b in segments
    ]


def _frame_rms(x: np.ndarray, hop: int, win: int) -> np.ndarray:
    if len(x) < win:
        return np.zeros(0)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, len(x) - win + 1, hop)
    return np.sqrt(np.maximum(csum[starts + win] - csum[starts], 0.0) / win)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) frame of every run of True."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1, strict=True))


def _find_segments(active: np.ndarray, min_gap: int, min_len: int) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in _runs(active):
        if merged and a - merged[-1][1] - 1 < min_gap:  # a short dip, not a gap between tones
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if b - a + 1 >= min_len]


def _slot_segments(active: np.ndarray, length: int, hop: int, win: int, n: int) -> list[tuple[int, int]]:
    """Equal time slots; inside each, trim to the frames that carry sound."""
    segments = []
    for i in range(n):
        first = int(np.ceil(i * length / n / hop))
        last = max(first, min(len(active) - 1, int(np.floor(((i + 1) * length / n - win) / hop))))
        on = np.nonzero(active[first : last + 1])[0]
        segments.append((first + int(on[0]), first + int(on[-1])) if on.size else (first, last))
    return segments


def _classify_pitch(segment: np.ndarray, sample_rate: int) -> str:
    n_fft = max(16384, 1 << int(np.ceil(np.log2(max(len(segment), 2)))))
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs >= _PITCH_BAND[0]) & (freqs <= _PITCH_BAND[1])
    if not band.any():
        band = freqs > 0
    peak = freqs[band][int(np.argmax(spectrum[band]))]
    names = list(PITCHES)
    distance = [abs(np.log(peak / PITCHES[c])) for c in names]
    return names[int(np.argmin(distance))]


def _classify_envelope(env: np.ndarray, noise: float) -> str:
    """Straight-line fit to log-loudness: slope -> pluck/swell/steady, residual wobble -> tremolo."""
    if len(env) > 3 * _WIN_HOPS:
        env = env[_WIN_HOPS:-_WIN_HOPS]  # frames straddling the fades and the segment edges
    if len(env) < 3:
        return "circle"
    # Subtract the noise power: a noise floor would flatten the quiet end of a pluck or swell.
    env = np.sqrt(np.maximum(env**2 - noise**2, 0.0))
    log_env = np.log(env + 0.02 * env.max() + 1e-12)
    u = np.linspace(0.0, 1.0, len(env))
    slope, intercept = np.polyfit(u, log_env, 1)
    residual = float(np.std(log_env - (slope * u + intercept)))
    if residual > _TREMOLO_RESIDUAL:
        return "square"
    if slope < -_SLOPE:
        return "triangle"
    if slope > _SLOPE:
        return "cross"
    return "circle"
