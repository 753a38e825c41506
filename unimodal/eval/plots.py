"""Plotting shared by the run and tokenizer evaluations: matplotlib without a display, and strips of video frames."""

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
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(shown):
                ax.axis("off")
                continue
            ax.imshow(shown[c], interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_edgecolor({True: "#2ca02c", False: "#d62728"}.get(hit, "#888888"))
                spine.set_linewidth(1.5)
        axes[r][0].set_ylabel(textwrap.fill(label, 18), fontsize=5, rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
