"""Real image data: a small in-memory image+caption set, shared helpers, and the Fashion-MNIST reader.

Every image source (``data=fashion_mnist``, ``data=clipart``, ``data=folder``) returns an
:class:`ImageTextSet` per split: uint8 ``[N, H, W, C]`` images with one caption each. OpenClipart lives in
:mod:`unimodal.data.clipart`, user folders in :mod:`unimodal.data.folder`.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unimodal.errors import ConfigError, DataError
from unimodal.media import images_to_tensor, to_channels

SPLITS = ("train", "val", "test")
HELD_OUT_FRACTION = 0.05       # of a file-based source, to val and to test each (at least one image each)
SKIPPED_NAMES_SHOWN = 5        # how many bad files one log line names

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"   # Debian's dataset-fashion-mnist
FASHION_MNIST_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle boot")
FASHION_MNIST_VAL_START = 55_000   # train = images [0, 55000) of the train file, val = [55000, 60000)
_IDX_MAGIC = {"images": (2051, 16), "labels": (2049, 8)}   # magic number, header bytes


@dataclass
class ImageTextSet:
    """Images with one caption each (optionally a class label and the source file name). ``images`` is one
    uint8 ``[N, H, W, C]`` array, or, where each image keeps its own aspect ratio (AnyRes), a list of uint8
    ``[H_i, W_i, C]`` arrays."""

    images: np.ndarray | list[np.ndarray]
    captions: list[str]
    labels: np.ndarray | None = None         # int64 [N], where the source has classes
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        arrays = self.images if isinstance(self.images, list) else [self.images]
        wanted = 3 if isinstance(self.images, list) else 4
        for array in arrays:
            if array.dtype != np.uint8 or array.ndim != wanted:
                shape = "[H, W, C] arrays" if wanted == 3 else "[N, H, W, C]"
                raise ValueError(f"images must be uint8 {shape}, got {array.dtype} {array.shape}")
        if len(self.captions) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.captions)} captions")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images[0].shape[-1] if isinstance(self.images, list) else self.images.shape[-1])

    @property
    def attributes(self) -> list[list[list[str]]]:
        return []   # (colour, shape) pairs exist for synthetic scenes only

    def subset(self, indices: list[int] | np.ndarray) -> ImageTextSet:
        indices = np.asarray(indices, dtype=np.int64)
        images = [self.images[i] for i in indices] if isinstance(self.images, list) else self.images[indices]
        return ImageTextSet(images, [self.captions[i] for i in indices],
                            None if self.labels is None else self.labels[indices],
                            [self.names[i] for i in indices] if self.names else [])

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor | list[torch.Tensor]:
        """Samples ``[start, stop)`` as a float ``[B, C, H, W]`` batch in [0, 1] (what tokenizers take); images of
        their own sizes as a list of ``[C, H, W]``."""
        if modality != "image":
            raise DataError(f"this data holds images and captions only, not {modality}")
        if isinstance(self.images, list):
            return [images_to_tensor([image])[0] for image in self.images[start:stop]]
        return images_to_tensor(list(self.images[start:stop]))


def images_to_channels(images: np.ndarray | list[np.ndarray], channels: int) -> np.ndarray | list[np.ndarray]:
    """:func:`unimodal.media.to_channels` for a batch or for a list of images of their own sizes."""
    if isinstance(images, list):
        return [to_channels(image[None], channels)[0] for image in images]
    return to_channels(images, channels)


# --- helpers shared by the sources -----------------------------------------------------------
def hash_split(keys: list[str], split: str) -> list[int]:
    """Indices of ``split`` in a deterministic order: sorted by a hash of each key (a file path).

    The first ``HELD_OUT_FRACTION`` of the hash order is test, the next val, the rest train, so even a
    folder of three images has one of each, and a cap (``num_train``) takes a spread-out subset.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {SPLITS}")
    order = sorted(range(len(keys)), key=lambda i: (hashlib.sha1(keys[i].encode()).hexdigest(), i))
    held = max(1, round(len(keys) * HELD_OUT_FRACTION)) if len(keys) >= 3 else 0
    return {"test": order[:held], "val": order[held:2 * held], "train": order[2 * held:]}[split]


def split_limit(data_cfg: Any, split: str) -> int:
    return int({"train": data_cfg.num_train, "val": data_cfg.num_val, "test": data_cfg.num_test}[split])


def skipped_line(count_of: str, where: Path | str, skipped: list[tuple[str, str]]) -> str:
    """One log line naming the first few bad files: ``skipped 3 unreadable files in d: a.png (empty), ...``."""
    shown = ", ".join(f"{name} ({reason})" for name, reason in skipped[:SKIPPED_NAMES_SHOWN])
    more = f", and {len(skipped) - SKIPPED_NAMES_SHOWN} more" if len(skipped) > SKIPPED_NAMES_SHOWN else ""
    return f"[data] skipped {len(skipped)} {count_of} in {where}: {shown}{more}"


def empty_split_error(name: str, split: str, usable: int, hint: str) -> DataError:
    return DataError(f"data={name}: the {split} split is empty ({usable} usable images); {hint}")


# --- Fashion-MNIST ---------------------------------------------------------------------------
def hash_splits(everything: ImageTextSet, data_cfg: Any, splits: tuple[str, ...], name: str,
                hint: str) -> dict[str, ImageTextSet]:
    """Each split of ``everything`` by a hash of its file names, capped by the split's ``num_*`` key."""
    result = {}
    for split in splits:
        indices = hash_split(everything.names, split)[:split_limit(data_cfg, split)]
        if not indices:
            raise empty_split_error(name, split, len(everything), hint)
        result[split] = everything.subset(indices)
    return result


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """One gzipped IDX file (LeCun's MNIST format): a big-endian header, then uint8 data."""
    magic, header = _IDX_MAGIC[kind]
    try:
        with gzip.open(path, "rb") as handle:
            blob = handle.read()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err}); reinstall it with "
                        f"`sudo apt-get install --reinstall dataset-fashion-mnist`") from None
    found = int.from_bytes(blob[:4], "big")
    if found != magic:
        raise DataError(f"{path}: not an IDX {kind} file (magic number {found}, expected {magic})")
    count = int.from_bytes(blob[4:8], "big")
    if kind == "labels":
        return np.frombuffer(blob, dtype=np.uint8, count=count, offset=header).astype(np.int64)
    rows, cols = int.from_bytes(blob[8:12], "big"), int.from_bytes(blob[12:16], "big")
    return np.frombuffer(blob, dtype=np.uint8, count=count * rows * cols, offset=header).reshape(count, rows, cols)


def fit_grey(images: np.ndarray, size: int) -> np.ndarray:
    """``[N, h, w]`` -> ``[N, size, size]``: zero padding (centred) when ``size >= h``, else a resize."""
    count, height, width = images.shape
    if size >= max(height, width):
        top, left = (size - height) // 2, (size - width) // 2
        out = np.zeros((count, size, size), dtype=np.uint8)
        out[:, top:top + height, left:left + width] = images
        return out
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.LANCZOS))
                     for im in images]) if count else np.zeros((0, size, size), np.uint8)


def fashion_caption(label: int) -> str:
    name = FASHION_MNIST_CLASSES[label]
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def load_fashion_mnist(data_cfg: Any, split: str) -> ImageTextSet:
    """Fashion-MNIST from Debian's IDX files. train/val: fixed slices of the 60k train file; test: t10k."""
    root = Path(data_cfg.root or FASHION_MNIST_ROOT)
    prefix = "t10k" if split == "test" else "train"
    paths = {kind: root / f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz" for kind in _IDX_MAGIC}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"Fashion-MNIST file {path} is missing (data.root={root}); install it with "
                            f"`sudo apt-get install dataset-fashion-mnist` or point data.root at its folder")
    images, labels = _read_idx(paths["images"], "images"), _read_idx(paths["labels"], "labels")
    if len(images) != len(labels):
        raise DataError(f"{root}: {len(images)} images but {len(labels)} labels in the {prefix} files")
    start, stop = {"train": (0, FASHION_MNIST_VAL_START), "val": (FASHION_MNIST_VAL_START, len(images)),
                   "test": (0, len(images))}[split]
    stop = min(stop, start + split_limit(data_cfg, split))
    images = fit_grey(images[start:stop], int(data_cfg.image_size))[..., None]
    labels = labels[start:stop]
    if not len(images):
        raise empty_split_error("fashion_mnist", split, 0, f"raise data.num_{split}")
    return ImageTextSet(to_channels(images, int(data_cfg.channels)), [fashion_caption(int(i)) for i in labels],
                        labels)
