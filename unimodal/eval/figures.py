"""PNG figures of an evaluation: prompt/generation grid, accuracy bars, codebook usage, spectrograms."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.eval.suite import CATEGORIES, SPLITS

SPLIT_COLOURS = {"seen": "#4c72b0", "held_out": "#dd8452"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def generation_grid(examples: list[dict[str, Any]], path: Path, columns: int = 8,
                    splits: tuple[str, ...] = SPLITS) -> bool:
    """Prompts over their generated images, one block of rows per split; green frame = exact hit."""
    shown = {split: [e for e in examples if e["split"] == split and isinstance(e["media"], np.ndarray)
                     and e["media"].ndim == 3][:2 * columns] for split in splits}
    rows = [(split, items[i:i + columns]) for split, items in shown.items() for i in range(0, len(items), columns)]
    if not rows:
        return False
    plt = _pyplot()
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


def accuracy_bars(directions: dict[str, dict[str, dict[str, dict[str, float]]]], path: Path) -> None:
    """One panel per direction: accuracy per category, seen and held-out bars side by side."""
    plt = _pyplot()
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
    plt = _pyplot()
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
    plt = _pyplot()
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
    plt = _pyplot()
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
