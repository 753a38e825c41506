"""Pixels for runs that read images as features (``model.vision_input=features``).

Token shards hold codes only; a features run also needs each sample's image to hand its encoder. :func:`pixel_store`
writes a split's images once, as one uint8 ``[N, H, W, C]`` ``.npy`` file read back through a memmap, under
``<paths.cache_dir>/pixels/<data fingerprint>/<split>.npy`` (written to a partial file and renamed, as shards are).
:class:`FeatureTokens` puts the two together: a token set whose image payloads are
:class:`~unimodal.feature_spans.FeatureImage` (the crops to read, and the codes to write when the image is a target).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.errors import DataError
from unimodal.feature_spans import FeatureImage, feature_image
from unimodal.media import tensor_to_images


def pixel_store(path: str | Path, samples: Any, batch_size: int = 256) -> np.ndarray:
    """The images of ``samples`` (a split: ``len`` and ``media("image", start, stop)``) as a read-only uint8 memmap
    ``[N, H, W, C]``, written to ``path`` the first time."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.partial-{os.getpid()}.npy")
        first = tensor_to_images(samples.media("image", 0, min(1, len(samples))))[0]
        array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(samples), *first.shape))
        for start in range(0, len(samples), batch_size):
            stop = min(start + batch_size, len(samples))
            array[start:stop] = np.stack(tensor_to_images(samples.media("image", start, stop)))
        array.flush()
        del array
        os.replace(partial, path)
    pixels = np.load(path, mmap_mode="r")
    if len(pixels) != len(samples):
        raise DataError(f"{path}: {len(pixels)} images for a split of {len(samples)} samples; delete it to rebuild")
    return pixels


class FeatureTokens:
    """A token set (a :class:`~unimodal.data.shards.TokenShard` or an in-memory one) whose ``image`` payloads are
    :class:`FeatureImage`: the sample's pixels cut into the crops the encoder reads, with the image's codes."""

    def __init__(self, tokens: Any, pixels: np.ndarray, crop_size: int, max_tiles: int = 0) -> None:
        if len(pixels) != len(tokens):
            raise DataError(f"{len(pixels)} images for {len(tokens)} token samples: the pixel store and the shard "
                            f"were built from different data; delete the pixel store to rebuild it")
        self.tokens, self.pixels = tokens, pixels
        self.crop_size, self.max_tiles = int(crop_size), int(max_tiles)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def captions(self) -> list[str]:
        return self.tokens.captions

    @property
    def attributes(self) -> list[list[list[str]]]:
        return self.tokens.attributes

    def image(self, index: int, codes: Any = None) -> FeatureImage:
        return feature_image(np.array(self.pixels[index]), self.crop_size, self.max_tiles, codes)  # a copy: writable

    def payloads(self, index: int) -> dict[str, Any]:
        payloads = dict(self.tokens.payloads(index))
        payloads["image"] = self.image(index, payloads.get("image"))
        return payloads
