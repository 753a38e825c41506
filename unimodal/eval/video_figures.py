"""Frame strips: generated clips under their prompts, and a video tokenizer's reconstructions under the originals."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.eval.figures import _pyplot
from unimodal.eval.suite import SPLITS


def _frames(clip: np.ndarray, count: int) -> list[np.ndarray]:
    index = np.unique(np.round(np.linspace(0, len(clip) - 1, min(count, len(clip)))).astype(int))
    return [clip[i] for i in index]


def _strips(rows: list[tuple[str, np.ndarray, bool | None]], path: Path, frames: int) -> None:
    """One row per (label, clip, hit): ``frames`` evenly spaced frames; green/red frame = hit/miss."""
    plt = _pyplot()
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


def frame_strip(examples: list[dict[str, Any]], path: Path, per_split: int = 4, frames: int = 5) -> bool:
    """text->video prompts (left, with their split) and frames of the generated clips; False if none."""
    rows = [(f"{e['prompt']} ({split})", e["media"], e["hit"]) for split in SPLITS
            for e in [e for e in examples if e["split"] == split and isinstance(e["media"], np.ndarray)
                      and e["media"].ndim == 4][:per_split]]
    if not rows:
        return False
    _strips(rows, path, frames)
    return True


def reconstruction_strip(originals: list[np.ndarray], reconstructions: list[np.ndarray], path: Path,
                         frames: int = 5) -> None:
    """Each clip's frames over its reconstruction's (uint8 ``[T, H, W, 3]``; a framewise tokenizer's
    reconstruction has only the frames it keeps, so its strip samples those)."""
    rows: list[tuple[str, np.ndarray, bool | None]] = []
    for i, (original, rebuilt) in enumerate(zip(originals, reconstructions, strict=True)):
        rows += [(f"clip {i}", original, None), (f"clip {i} decoded", rebuilt, None)]
    _strips(rows, path, frames)
