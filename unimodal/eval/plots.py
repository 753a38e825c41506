"""Plotting shared by the evaluations: matplotlib without a display, prompts over generated images, and strips
of video frames."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


HIT_COLOURS = {True: "#2ca02c", False: "#d62728"}   # a panel's frame: hit, miss (grey: not judged)


def show_panel(ax: Any, image: np.ndarray | None, hit: bool | None, linewidth: float, cmap: str | None = None) -> None:
    """One panel of a figure: ``image`` framed by whether it was a hit, or an empty panel when None."""
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.axis("off")
        return
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    for spine in ax.spines.values():
        spine.set_edgecolor(HIT_COLOURS.get(hit, "#888888"))
        spine.set_linewidth(linewidth)


def _frames(clip: np.ndarray, count: int) -> list[np.ndarray]:
    index = np.unique(np.round(np.linspace(0, len(clip) - 1, min(count, len(clip)))).astype(int))
    return [clip[i] for i in index]


def frame_strips(rows: list[tuple[str, np.ndarray, bool | None]], path: Path, frames: int) -> None:
    """One row per (label, clip, hit): ``frames`` evenly spaced frames; green/red frame = hit/miss."""
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), frames, figsize=(frames * 1.1, len(rows) * 1.25), squeeze=False)
    for r, (label, clip, hit) in enumerate(rows):
        shown = _frames(clip, frames)
        for c in range(frames):
            show_panel(axes[r][c], shown[c] if c < len(shown) else None, hit, 1.5)
        axes[r][0].set_ylabel(textwrap.fill(label, 18), fontsize=5, rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def generation_grid(examples: list[dict[str, Any]], path: Path, columns: int = 8,
                    splits: tuple[str, ...] = ("seen", "held_out")) -> bool:
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
            if c >= len(items):
                show_panel(ax, None, None, 2)
                continue
            item = items[c]
            image = item["media"]
            show_panel(ax, image[..., 0] if image.shape[-1] == 1 else image, item["hit"], 2, cmap="gray")
            ax.set_title(textwrap.fill(item["prompt"], 22), fontsize=5)
            if c == 0:
                ax.set_ylabel(split, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return True
