"""The synthetic world's exact analyzers: image -> objects, sound -> objects, caption -> objects.

Model outputs (blurry, noisy reconstructions from learned codecs) are scored with the same analyzers, so
the analyzers rely on cues that survive blur, noise and colour shifts: hue direction and template overlap
for images, fundamental frequency and the loudness envelope for sounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from unimodal.data.synthetic.render import PITCHES, _shape_mask
from unimodal.data.synthetic.world import _REF_SIZE, _SIZE_PX, COLORS, SHAPES, _words


@dataclass(frozen=True)
class DetectedObject:
    shape: str
    color: str
    x: float
    y: float
    area: int  # pixels in the detected component


# ---------------------------------------------------------------------- text


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
