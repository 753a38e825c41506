"""Images the LM reads as features (``model.vision_input=features``): the crops an encoder sees, and their span.

An image in the *input* becomes ``<boi> slots <eoi>``: each slot is a position whose input vector is a projected
encoder feature, not a token embedding (the LM still *writes* images as tokens). The ids hold :data:`FEATURE_SLOT`
there. No embedding row has that id, so a path that does not fill the slots fails at the lookup instead of reading
a wrong row; :func:`unimodal.model.lm.embed_ids` fills them, in order, from the encoder.

One image is one crop (the encoder's own image processor resizes it), or with AnyRes (``max_tiles > 0``) a thumbnail
plus a grid of tiles chosen as for tokens (:func:`unimodal.tokenizers.anyres.split_image`: the grid that keeps the
most resolution, the image resized with its aspect kept and padded, never stretched). The span is then the token
AnyRes layout with slots for codes (LLaVA-NeXT's: features of the thumbnail and of every tile, with separators)::

    <boi> thumbnail slots <tile> tile(0,0) slots <tile> tile(0,1) slots <row> <tile> tile(1,0) slots ... <eoi>

each crop taking ``slots`` positions (the projector's output count: every patch feature for ``mlp`` and ``linear``,
the learned queries for ``qformer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from unimodal.media import tensor_to_images
from unimodal.tokenizers.anyres import split_image
from unimodal.vocab import Vocabulary

FEATURE_SLOT = -1


@dataclass(eq=False)
class FeatureImage:
    """An image to read as features: ``crops`` (uint8 ``[H, W, C]``, what the encoder's image processor receives, in
    span order: the whole image, or the thumbnail then the tiles row-major), the AnyRes ``grid`` (rows, cols) or None,
    and ``codes``, the image's tokens, used where it is a target (the LM writes images as tokens)."""

    crops: list[np.ndarray] = field(default_factory=list)
    grid: tuple[int, int] | None = None
    codes: Any = None

    @property
    def num_crops(self) -> int:
        return len(self.crops)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureImage):
            return NotImplemented
        return (self.grid == other.grid and len(self.crops) == len(other.crops)
                and all(np.array_equal(a, b) for a, b in zip(self.crops, other.crops, strict=True)))


def feature_image(pixels: Any, crop_size: int, max_tiles: int = 0, codes: Any = None) -> FeatureImage:
    """One uint8 ``[H, W, C]`` image as the crops its encoder reads: itself (``max_tiles`` 0), or the AnyRes thumbnail
    and tiles of ``crop_size`` pixels (at most ``max_tiles`` tiles)."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3:
        raise ValueError(f"an image to read as features is [H, W, C] uint8, got shape {pixels.shape}")
    if not max_tiles:
        return FeatureImage([pixels], None, codes)
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255.0
    tiled = split_image(tensor, int(crop_size), int(max_tiles))
    crops = tensor_to_images(torch.cat([tiled.thumbnail[None], tiled.tiles]))
    return FeatureImage(crops, (tiled.layout.rows, tiled.layout.cols), codes)


def feature_span_length(grid: tuple[int, int] | None, slots: int) -> int:
    """Positions between ``<boi>`` and ``<eoi>``: slots of every crop, plus the ``<tile>`` and ``<row>`` separators."""
    if grid is None:
        return slots
    rows, cols = grid
    return slots + rows * cols * (1 + slots) + rows - 1


def feature_body(vocab: Vocabulary, image: FeatureImage, slots: int) -> np.ndarray:
    """The span body of ``image`` (module docstring): :data:`FEATURE_SLOT` ids and the AnyRes separators."""
    run = np.full(slots, FEATURE_SLOT, dtype=np.int64)
    if image.grid is None:
        if image.num_crops != 1:
            raise ValueError(f"a feature image without a tile grid has one crop, got {image.num_crops}")
        return run
    rows, cols = image.grid
    if image.num_crops != 1 + rows * cols:
        raise ValueError(f"an AnyRes feature image of grid {image.grid} has {1 + rows * cols} crops (thumbnail and "
                         f"tiles), got {image.num_crops}")
    tile, row = np.array([vocab.special("<tile>")]), np.array([vocab.special("<row>")])
    parts = [run]
    for r in range(rows):
        parts += [row] if r else []
        parts += [piece for _ in range(cols) for piece in (tile, run)]
    return np.concatenate(parts).astype(np.int64)
