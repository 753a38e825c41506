"""PNG figures of an evaluation: prompt/generation grid, accuracy bars, codebook usage, spectrograms, frames of
generated clips, a plain sheet of images, and interleaved answers (input | text | image | target)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from unimodal.eval.plots import frame_strips, pyplot
from unimodal.eval.world.suite import CATEGORIES, SPLITS

SPLIT_COLOURS = {"seen": "#4c72b0", "held_out": "#dd8452"}
# swap_figure: drawn with PIL (a few labelled panels need no plotting library)
PANEL = 128          # pixels per image panel (the 32x32 images, upscaled without smoothing)
TEXT_WIDTH = 300     # pixels for the text column
GUTTER = 6


def generation_grid(examples: list[dict[str, Any]], path: Path, columns: int = 8,
                    splits: tuple[str, ...] = SPLITS) -> bool:
    """Prompts over their generated images, one block of rows per split; green frame = exact hit."""
    shown = {split: [e for e in examples if e["split"] == split and isinstance(e["media"], np.ndarray)
                     and e["media"].ndim == 3][:2 * columns] for split in splits}
    rows = [(split, items[i:i + columns]) for split, items in shown.items() for i in range(0, len(items), columns)]
    if not rows:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * 1.3, len(rows) * 1.6), squeeze=False)
    for r, (split, items) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(items):
                ax.axis("off")
                continue
            item = items[c]
            image = item["media"]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_edgecolor({True: "#2ca02c", False: "#d62728"}.get(item["hit"], "#888888"))
                spine.set_linewidth(2)
            ax.set_title(textwrap.fill(item["prompt"], 22), fontsize=5)
            if c == 0:
                ax.set_ylabel(split, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return True


def image_grid(images: list[np.ndarray], columns: int = 10, scale: int = 4) -> np.ndarray:
    """Tile uint8 images into one picture (black gutters), upscaled for viewing."""
    if not images:
        return np.zeros((8, 8, 3), np.uint8)
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    sheet = np.zeros((rows * (h + 2), columns * (w + 2), 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = image
    return sheet.repeat(scale, 0).repeat(scale, 1)


def accuracy_bars(directions: dict[str, dict[str, dict[str, dict[str, float]]]], path: Path) -> None:
    """One panel per direction: accuracy per category, seen and held-out bars side by side."""
    plt = pyplot()
    names = list(directions)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        splits = directions[name]
        cats = [c for c in CATEGORIES if any(c in splits[s] for s in splits)]
        x = np.arange(len(cats))
        width = 0.8 / max(len(splits), 1)
        for i, split in enumerate(splits):
            values = [splits[split].get(c, {}).get("accuracy", 0.0) for c in cats]
            ax.bar(x + (i - (len(splits) - 1) / 2) * width, values, width, label=split,
                   color=SPLIT_COLOURS.get(split))
        ax.set_xticks(x, cats, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def codebook_histograms(usage: dict[str, np.ndarray], path: Path) -> None:
    """Per target modality: how often each code was generated (codes sorted by id)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(usage), 1, figsize=(8, 2.2 * len(usage)), squeeze=False)
    for ax, (name, counts) in zip(axes[:, 0], usage.items(), strict=True):
        used = int((counts > 0).sum())
        ax.bar(np.arange(len(counts)), counts, width=1.0, color="#4c72b0")
        ax.set_title(f"{name}: {used}/{len(counts)} codes used", fontsize=9)
        ax.set_xlabel("code")
        ax.set_ylabel("count")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def spectrograms(examples: list[dict[str, Any]], sample_rate: int, path: Path, count: int = 6) -> bool:
    """Spectrograms of generated sounds, each titled with its prompt."""
    audio = [e for e in examples if isinstance(e["media"], np.ndarray) and e["media"].ndim == 1]
    sounds = [e for split in SPLITS for e in [e for e in audio if e["split"] == split][:count // 2]]
    if not sounds:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(sounds), figsize=(2.2 * len(sounds), 2.4), squeeze=False)
    for ax, item in zip(axes[0], sounds, strict=True):
        ax.specgram(item["media"], NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma")
        ax.set_ylim(0, 2000)
        mark = "hit" if item["hit"] else "miss"
        ax.set_title(textwrap.fill(f"{item['prompt']} ({item['split']}, {mark})", 26), fontsize=6)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def compare_bars(runs: dict[str, dict[str, Any]], path: Path) -> None:
    """Per-category accuracy of several runs side by side: one row of panels per direction, one column per split."""
    plt = pyplot()
    directions = list(dict.fromkeys(d for m in runs.values() for d in m["directions"]))
    fig, axes = plt.subplots(len(directions), len(SPLITS), figsize=(6 * len(SPLITS), 2.6 * len(directions)),
                             squeeze=False)
    for r, direction in enumerate(directions):
        for ax, split in zip(axes[r], SPLITS, strict=True):
            tables = {name: m["directions"].get(direction, {}).get(split, {}) for name, m in runs.items()}
            cats = [c for c in CATEGORIES if any(c in t for t in tables.values())]
            x = np.arange(len(cats))
            width = 0.8 / max(len(tables), 1)
            for i, (name, table) in enumerate(tables.items()):
                values = [table.get(c, {}).get("accuracy", 0.0) for c in cats]
                ax.bar(x + (i - (len(tables) - 1) / 2) * width, values, width, label=name)
            ax.set_xticks(x, cats, fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_title(f"{direction}, {split}", fontsize=9)
            ax.set_ylabel("accuracy", fontsize=8)
            ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def frame_strip(examples: list[dict[str, Any]], path: Path, per_split: int = 4, frames: int = 5) -> bool:
    """text->video prompts (left, with their split) and frames of the generated clips; False if none."""
    rows = [(f"{e['prompt']} ({split})", e["media"], e["hit"]) for split in SPLITS
            for e in [e for e in examples if e["split"] == split and isinstance(e["media"], np.ndarray)
                      and e["media"].ndim == 4][:per_split]]
    if not rows:
        return False
    frame_strips(rows, path, frames)
    return True


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
