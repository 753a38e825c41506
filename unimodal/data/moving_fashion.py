"""``data=moving_fashion_mnist``: one or two Fashion-MNIST items move and bounce on a 64x64 canvas.

In the manner of Moving MNIST (Srivastava et al., 2015): each item starts at a random place with a random
direction (left, right, up or down) and speed, and bounces off the canvas edges; overlapping items take the
brighter pixel. The caption names each item and the direction it moves in for most of the clip ("a sneaker
moves left and a bag moves up"). The canvas is resized to ``data.image_size`` (box filter). Items come from
the train file's first 55,000 images for train, the next 5,000 for val, and the t10k file for test; the clips
of a split are seeded by ``data.seed`` and the split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unimodal.data.images import FASHION_MNIST_CLASSES, load_fashion_mnist
from unimodal.errors import DataError
from unimodal.media import images_to_tensor, videos_to_tensor

CANVAS = 64
SPEED = (1.5, 3.5)          # pixels per frame on the 64 px canvas
_NAMES = {(-1, 0): "left", (1, 0): "right", (0, -1): "up", (0, 1): "down"}
_SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


class VideoTextSet:
    """uint8 clips ``[N, T, H, W, C]`` with one caption each (the ``Samples`` interface)."""

    def __init__(self, videos: np.ndarray, captions: list[str]) -> None:
        if videos.dtype != np.uint8 or videos.ndim != 5 or len(videos) != len(captions):
            raise ValueError(f"need uint8 clips [N, T, H, W, C] and one caption each, got {videos.dtype} "
                             f"{videos.shape} and {len(captions)} captions")
        self.videos, self.captions = videos, captions

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def attributes(self) -> list[list[list[str]]]:
        return []

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor:
        if modality == "video":
            return videos_to_tensor(list(self.videos[start:stop]))
        if modality == "image":
            return images_to_tensor(list(self.videos[start:stop, 0]))
        raise DataError(f"this data holds clips and captions only, not {modality}")


def item_path(rng: np.random.Generator, num_frames: int) -> tuple[np.ndarray, str]:
    """Top-left corners ``[T, 2]`` of one bouncing 28 px item, and the direction it moves in most."""
    axis_step = [(-1, 0), (1, 0), (0, -1), (0, 1)][int(rng.integers(4))]
    velocity = np.array(axis_step, dtype=np.float64) * rng.uniform(*SPEED)
    limit = CANVAS - 28
    position = rng.uniform(0, limit, size=2)
    corners, moves = [], []
    for _ in range(num_frames):
        corners.append(position.copy())
        position = position + velocity
        for axis in range(2):  # bounce: reflect the overshoot and turn around
            if position[axis] < 0 or position[axis] > limit:
                position[axis] = -position[axis] if position[axis] < 0 else 2 * limit - position[axis]
                velocity[axis] = -velocity[axis]
        moves.append(_NAMES[tuple(int(v) for v in np.sign(velocity))])
    direction = max(set(moves[:-1] or moves), key=(moves[:-1] or moves).count)
    return np.rint(np.array(corners)).astype(np.int64), direction


def moving_clips(items: np.ndarray, labels: np.ndarray, count: int, num_frames: int, size: int,
                 rng: np.random.Generator) -> VideoTextSet:
    """``count`` clips from grey 28x28 ``items``: uint8 ``[count, T, size, size, 1]`` and their captions."""
    videos = np.zeros((count, num_frames, size, size, 1), dtype=np.uint8)
    captions = []
    for n in range(count):
        canvas = np.zeros((num_frames, CANVAS, CANVAS), dtype=np.uint8)
        parts = []
        for _ in range(1 if rng.random() < 0.5 else 2):
            index = int(rng.integers(len(items)))
            corners, direction = item_path(rng, num_frames)
            for t, (x, y) in enumerate(corners):
                window = canvas[t, y:y + 28, x:x + 28]
                np.maximum(window, items[index], out=window)
            name = FASHION_MNIST_CLASSES[int(labels[index])]
            parts.append(f"{'an' if name[0] in 'aeiou' else 'a'} {name} moves {direction}")
        videos[n, ..., 0] = _resize(canvas, size)
        captions.append(" and ".join(parts))
    return VideoTextSet(videos, captions)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    if size == CANVAS:
        return frames
    if CANVAS % size == 0:  # a box filter by reshaping: exact and fast for 32 or 16
        f = CANVAS // size
        return frames.reshape(len(frames), size, f, size, f).mean(axis=(2, 4)).round().astype(np.uint8)
    from PIL import Image
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BOX)) for im in frames])


def load_moving_fashion_mnist(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, VideoTextSet]:
    from omegaconf import OmegaConf

    result = {}
    for split in splits:
        # The items at their own 28 px: read with image_size 28 and one channel, whatever the clip size.
        items_cfg = OmegaConf.merge(data_cfg, {"image_size": 28, "channels": 1, "num_train": 55_000,
                                               "num_val": 5_000, "num_test": 10_000})
        items = load_fashion_mnist(items_cfg, split)
        count = int({"train": data_cfg.num_train, "val": data_cfg.num_val, "test": data_cfg.num_test}[split])
        rng = np.random.default_rng((int(data_cfg.seed), _SPLIT_SEEDS[split]))
        clips = moving_clips(items.images[..., 0], items.labels, count, int(data_cfg.video_frames),
                             int(data_cfg.image_size), rng)
        if int(data_cfg.channels) == 3:
            clips.videos = np.repeat(clips.videos, 3, axis=-1)
        result[split] = clips
    return result
