"""A tokenizer folder's report: ``metrics.json``, ``card.md`` and the figures the card links.

- ``reconstructions.png`` (images: originals over reconstructions), ``spectrograms.png`` and ``samples/`` WAV pairs
  (sounds), ``frames.png`` (clips over their reconstructions), each drawn from a
  :mod:`unimodal.eval.tokenizers.measure` evaluation that kept examples
- :func:`save_tokenizer`: the tokenizer's own files (config, weights) and then its report, the way stage 0 of
  training and the tokenizer benchmarks export a tokenizer
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unimodal.data.audio_sets import write_wav
from unimodal.eval.plots import frame_strips
from unimodal.eval.tokenizers.measure import AudioEvaluation, ImageEvaluation, VideoEvaluation
from unimodal.tokenizers.base import ModalityTokenizer

CARD_FILE = "card.md"
METRICS_FILE = "metrics.json"
GRID_FILE = "reconstructions.png"
SPECTROGRAM_FILE = "spectrograms.png"
FRAMES_FILE = "frames.png"
SAMPLES_DIR = "samples"
# Pictures an evaluation may leave in a tokenizer folder; the card links those present.
FIGURE_FILES = {"frames.png": "Frame strips: each clip (upper row) over its reconstruction (lower row).",
                "reconstructions.png": "Reconstructions: originals (top row) and the same images decoded from "
                                       "their codes (bottom row).",
                "spectrograms.png": "Log-mel spectrograms of held-out clips (top row) and of their reconstructions "
                                    "(bottom row); the WAV pairs are in samples/."}


def save_tokenizer(tokenizer: ModalityTokenizer, directory: str | Path, metrics: dict[str, Any] | None = None,
                   evaluation: Any = None) -> Path:
    """Save ``tokenizer`` into ``directory`` with its report; pictures of older weights are removed first."""
    directory = tokenizer.save(directory)
    for name in FIGURE_FILES:  # pictures of the old weights would now be wrong
        (directory / name).unlink(missing_ok=True)
    return write_card(tokenizer, directory, dict(metrics or {}), evaluation)


def write_card(tokenizer: ModalityTokenizer, directory: str | Path, metrics: dict[str, Any],
               evaluation: Any = None) -> Path:
    """The figures of ``evaluation`` (when it kept examples), then ``metrics.json`` and ``card.md`` linking every
    ``FIGURE_FILES`` picture in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(evaluation, ImageEvaluation) and len(evaluation.originals):
        from PIL import Image

        grid = reconstruction_grid(evaluation.originals, evaluation.reconstructions)
        Image.fromarray(grid).save(directory / GRID_FILE)
    if isinstance(evaluation, AudioEvaluation) and evaluation.originals:
        from PIL import Image

        Image.fromarray(spectrogram_grid(tokenizer, evaluation.originals, evaluation.reconstructions)).save(
            directory / SPECTROGRAM_FILE)
        samples = directory / SAMPLES_DIR
        samples.mkdir(exist_ok=True)
        for index, (original, recon) in enumerate(zip(evaluation.originals, evaluation.reconstructions,
                                                      strict=True)):
            write_wav(samples / f"{index:02d}_original.wav", original, evaluation.sample_rate)
            write_wav(samples / f"{index:02d}_reconstruction.wav", recon, evaluation.sample_rate)
    if isinstance(evaluation, VideoEvaluation) and evaluation.originals:
        reconstruction_strip(evaluation.originals, evaluation.reconstructions, directory / FRAMES_FILE)
    (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True))
    figures = [name for name in FIGURE_FILES if (directory / name).is_file()]
    (directory / CARD_FILE).write_text(render_card(tokenizer, metrics, figures))
    return directory


# Shown first, in this order, when measured (image tokenizers); everything else follows sorted.
CARD_ORDER = ("psnr", "ssim", "codebook_usage", "perplexity", "tokens_per_image", "bits_per_image")


def _shown(key: str, value: Any) -> str:
    if key.endswith("codebook_usage") and isinstance(value, float):
        return f"{100 * value:.1f}% of codes used"
    if key == "psnr" and isinstance(value, float):
        return f"{value:.2f} dB"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_card(tokenizer: ModalityTokenizer, metrics: dict[str, Any], figures: list[str] | tuple[str, ...] = ()
                ) -> str:
    lines = [f"# {tokenizer.modality} tokenizer: {tokenizer.kind}", "",
             f"- fingerprint: `{tokenizer.fingerprint}`",
             f"- codebooks: {tokenizer.num_codebooks} x {tokenizer.codebook_size} codes", "",
             "## Config", "", "```json", json.dumps(tokenizer.get_config(), indent=2, sort_keys=True),
             "```", "", "## Measured", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        keys = [k for k in CARD_ORDER if k in metrics] + sorted(k for k in metrics if k not in CARD_ORDER)
        lines += [f"| {key} | {_shown(key, metrics[key])} |" for key in keys]
    else:
        lines.append("(nothing measured yet)")
    for name in figures:
        lines += ["", f"![{Path(name).stem}]({name})", "", FIGURE_FILES.get(name, "")]
    return "\n".join(lines) + "\n"


def reconstruction_grid(originals: Tensor, reconstructions: Tensor, scale: int | None = None,
                        pad: int = 2) -> np.ndarray:
    """Originals in the top row, reconstructions below: uint8 ``[H, W, 3]``, upscaled (nearest) for viewing.

    Grey images are shown grey. (torchvision's ``make_grid`` does the layout, but torchvision is not a
    dependency of this project.)
    """
    from PIL import Image

    if originals.shape != reconstructions.shape or originals.ndim != 4 or len(originals) == 0:
        raise ValueError(f"need two equal image batches [n, C, H, W], got {tuple(originals.shape)} and "
                         f"{tuple(reconstructions.shape)}")
    count, channels, height, width = originals.shape
    rows = []
    for batch in (originals, reconstructions):
        pixels = (batch.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        rows.append(np.repeat(pixels, 3, axis=-1) if channels == 1 else pixels[..., :3])
    canvas = np.full((2 * height + 3 * pad, count * width + (count + 1) * pad, 3), 128, dtype=np.uint8)
    for row, pixels in enumerate(rows):
        top = pad + row * (height + pad)
        for index in range(count):
            left = pad + index * (width + pad)
            canvas[top:top + height, left:left + width] = pixels[index]
    scale = scale or max(1, 128 // max(height, width))
    image = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    return np.asarray(image)


def _colour(values: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 [H, W, 3]: black -> blue -> red -> yellow -> white (a magma-like ramp)."""
    stops = np.array([[0, 0, 0], [40, 20, 120], [190, 40, 90], [250, 170, 40], [255, 255, 230]], np.float64)
    position = np.clip(values, 0.0, 1.0) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    frac = (position - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def spectrogram_grid(tokenizer: Any, originals: list[np.ndarray], reconstructions: list[np.ndarray],
                     pad: int = 4) -> np.ndarray:
    """Log-mel spectrograms, each original above its reconstruction, clips side by side: uint8 ``[H, W, 3]``.
    Drawn with numpy: matplotlib is not a dependency of this project."""
    mel = tokenizer.mel
    n_fft = mel.n_ffts[-1]
    rows = []
    for pair in (originals, reconstructions):
        tiles = []
        for wave in pair:
            window = getattr(mel, f"window_{n_fft}")
            spec = torch.stft(torch.as_tensor(wave).float()[None], n_fft, hop_length=n_fft // 4, window=window,
                              center=True, return_complex=True).abs() / window.sum()
            tile = torch.log10(torch.einsum("bft,fm->bmt", spec, getattr(mel, f"fbank_{n_fft}"))[0] + 1e-5)
            tiles.append(((tile.numpy() + 5.0) / 5.0)[::-1])   # -100 dB .. 0 dB re full scale, low pitch at the bottom
        rows.append(tiles)
    height = rows[0][0].shape[0] * 2
    widths = [t.shape[1] * 2 for t in rows[0]]
    canvas = np.full((2 * height + 3 * pad, sum(widths) + (len(widths) + 1) * pad, 3), 128, np.uint8)
    for row, tiles in enumerate(rows):
        left = pad
        for tile, width in zip(tiles, widths, strict=True):
            top = pad + row * (height + pad)
            canvas[top:top + height, left:left + width] = _colour(np.kron(tile, np.ones((2, 2))))
            left += width + pad
    return canvas


def reconstruction_strip(originals: list[np.ndarray], reconstructions: list[np.ndarray], path: Path,
                         frames: int = 5) -> None:
    """Each clip's frames over its reconstruction's (uint8 ``[T, H, W, 3]``; a framewise tokenizer's
    reconstruction has only the frames it keeps, so its strip samples those)."""
    rows: list[tuple[str, np.ndarray, bool | None]] = []
    for i, (original, rebuilt) in enumerate(zip(originals, reconstructions, strict=True)):
        rows += [(f"clip {i}", original, None), (f"clip {i} decoded", rebuilt, None)]
    frame_strips(rows, path, frames)
