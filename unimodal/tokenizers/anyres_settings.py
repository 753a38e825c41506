"""A run's AnyRes settings (``tokenizer.image.anyres``) and what follows from them: the grids an image may take,
the size an image is kept at, the grid a requested size or aspect ratio asks for, the tiles a tokenizer trains
on, and the codes token shards store.

``max_tiles`` null is off: every image is one square grid, as before AnyRes existed. :mod:`.anyres` does the
tiling itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unimodal.errors import ConfigError
from unimodal.tokenizers.anyres import (
    AnyResImage,
    Grid,
    allowed_grids,
    choose_grid,
    encode_anyres,
    fit_layout,
    split_image,
)


@dataclass(frozen=True)
class AnyResSettings:
    """At most ``max_tiles`` tiles per image, in one of ``grids`` ((rows, cols), fewest tiles first)."""

    max_tiles: int
    grids: tuple[Grid, ...]

    @classmethod
    def create(cls, max_tiles: int, grids: Iterable[Iterable[int]] | None = None) -> AnyResSettings:
        if int(max_tiles) < 1:
            raise ConfigError(f"tokenizer.image.anyres.max_tiles={max_tiles}: give at least 1 (or null: AnyRes off)")
        return cls(int(max_tiles), tuple(allowed_grids(int(max_tiles), grids)))

    @classmethod
    def from_config(cls, node: Any) -> AnyResSettings | None:
        """``tokenizer.image.anyres`` (or ``run.json``'s ``image_anyres``) -> settings, or None when off."""
        if node is None:
            return None
        grids = node.get("grids")
        if node.get("max_tiles") is None:
            if grids is not None:
                raise ConfigError("tokenizer.image.anyres.grids is set but max_tiles is null (AnyRes off); "
                                  "set tokenizer.image.anyres.max_tiles too")
            return None
        return cls.create(int(node["max_tiles"]), None if grids is None else [list(g) for g in grids])

    def to_json(self) -> dict[str, Any]:
        return {"max_tiles": self.max_tiles, "grids": [list(g) for g in self.grids]}

    def grid_for(self, height: int, width: int, tile_size: int) -> Grid:
        """The allowed grid an ``height x width`` image is cut into."""
        return choose_grid(height, width, tile_size, self.max_tiles, self.grids)

    def kept_size(self, height: int, width: int, tile_size: int) -> tuple[int, int]:
        """The size an image is kept at, aspect ratio unchanged: scaled to fit its grid's canvas, the most pixels
        its tiles can hold (data sources store images at this size)."""
        rows, cols = self.grid_for(height, width, tile_size)
        return fit_layout(height, width, rows, cols, tile_size).resized

    def size_for_aspect(self, aspect_width: float, aspect_height: float, tile_size: int) -> tuple[int, int]:
        """``(height, width)`` of the largest image of that aspect ratio that an allowed grid holds."""
        if aspect_width <= 0 or aspect_height <= 0:
            raise ConfigError(f"aspect={aspect_width}:{aspect_height}: both sides must be positive, like aspect=2:1")
        scale = tile_size * self.max_tiles   # large enough that every grid's canvas limits the fitted size
        height = max(1, round(scale * aspect_height / max(aspect_width, aspect_height)))
        width = max(1, round(scale * aspect_width / max(aspect_width, aspect_height)))
        return self.kept_size(height, width, tile_size)

    def training_tiles(self, images: Iterable[Tensor], tile_size: int) -> Tensor:
        """Each ``[C, H, W]`` image's thumbnail and tiles, as one ``[N, C, T, T]`` batch: what an image tokenizer
        meets in an AnyRes run, so what it trains and is measured on."""
        parts = []
        for image in images:
            tiled = split_image(image, tile_size, self.max_tiles, 0.0, self.grids)
            parts += [tiled.thumbnail[None], tiled.tiles]
        return torch.cat(parts)


class AnyResEncoder:
    """An image tokenizer seen through AnyRes: ``encode`` maps images (a ``[B, C, H, W]`` batch or a list of
    ``[C, H, W]`` of any sizes) to one :class:`AnyResImage` each. Token shards store these codes."""

    def __init__(self, tokenizer: Any, settings: AnyResSettings) -> None:
        self.tokenizer = tokenizer
        self.settings = settings

    @property
    def fingerprint(self) -> str:
        return self.tokenizer.fingerprint

    def eval(self) -> AnyResEncoder:
        self.tokenizer.eval()
        return self

    @torch.no_grad()
    def encode(self, images: Iterable[Tensor]) -> list[AnyResImage]:
        return [encode_anyres(self.tokenizer, image, self.settings.max_tiles, 0.0, self.settings.grids)
                for image in images]


def flatten_anyres(payload: AnyResImage) -> np.ndarray:
    """Thumbnail codes, then every tile's, row-major: how a token shard stores one AnyRes image."""
    return np.concatenate([payload.thumbnail.reshape(-1), payload.tiles.reshape(-1)])


def unflatten_anyres(flat: np.ndarray, tile_shape: list[int], grid: Grid) -> AnyResImage:
    """Inverse of :func:`flatten_anyres`, given the code shape of one tile and the grid."""
    size = int(np.prod(tile_shape))
    return AnyResImage(flat[:size].reshape(tile_shape), flat[size:].reshape(*grid, *tile_shape))
