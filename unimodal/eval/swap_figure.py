"""A figure of interleaved answers: one row per example, input image | generated text | generated image | target.

PIL draws it (already a dependency): a few labelled panels need no plotting library.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

PANEL = 128          # pixels per image panel (the 32x32 images, upscaled without smoothing)
TEXT_WIDTH = 300     # pixels for the text column
GUTTER = 6


def _panel(image: np.ndarray | None) -> Image.Image:
    if image is None:  # no image came back: a grey panel says so
        return Image.new("RGB", (PANEL, PANEL), (90, 90, 90))
    return Image.fromarray(np.asarray(image, np.uint8)).resize((PANEL, PANEL), Image.NEAREST)


def swap_figure(samples: list[dict[str, Any]], path: Path) -> Path:
    """``samples``: dicts with ``image`` (the input), ``text`` (generated), ``generated`` (image or None),
    ``target`` (the swapped scene's rendering), ``want`` (the caption), optionally ``verdict`` (what the image
    analyzer found). Writes a PNG to ``path``."""
    header = 18
    row_height = PANEL + GUTTER
    width = 3 * PANEL + TEXT_WIDTH + 5 * GUTTER
    sheet = Image.new("RGB", (width, header + row_height * max(len(samples), 1) + GUTTER), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    columns = [GUTTER, 2 * GUTTER + PANEL, 3 * GUTTER + PANEL + TEXT_WIDTH, 4 * GUTTER + 2 * PANEL + TEXT_WIDTH]
    for x, title in zip(columns, ("input", "generated text", "generated image", "target (swapped)"), strict=True):
        draw.text((x, 3), title, fill=(0, 0, 0))
    for row, sample in enumerate(samples):
        top = header + row * row_height
        sheet.paste(_panel(sample["image"]), (columns[0], top))
        sheet.paste(_panel(sample.get("generated")), (columns[2], top))
        sheet.paste(_panel(sample["target"]), (columns[3], top))
        exact = sample["text"].strip() == sample["want"].strip()
        lines = textwrap.wrap(f"got: {sample['text']}", 44) + [""] + textwrap.wrap(f"want: {sample['want']}", 44)
        lines.append("caption exact" if exact else "caption differs")
        if sample.get("verdict"):
            lines += textwrap.wrap(f"image: {sample['verdict']}", 44)
        draw.multiline_text((columns[1], top + 4), "\n".join(lines), fill=(0, 100, 0) if exact else (150, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
