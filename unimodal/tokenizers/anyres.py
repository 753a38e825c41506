"""Dynamic resolution (AnyRes): an image of any size as a grid of tokenizer-sized tiles plus a thumbnail.

An image of ``H x W`` pixels and a tokenizer tile size ``T`` (its ``image_size``):

1. :func:`choose_grid` picks ``rows x cols`` (at most ``max_tiles`` tiles) for the aspect ratio;
2. :func:`split_image` resizes the image (aspect kept) into the ``rows*T x cols*T`` canvas, pads it
   centred, cuts the canvas into tiles, and makes a ``T x T`` thumbnail of the whole image the same way;
3. :func:`encode_anyres` tokenizes the thumbnail and every tile with any image tokenizer whose
   ``encode`` maps ``[B, C, T, T]`` in [0, 1] to codes ``[B, h, w]``, giving an :class:`AnyResImage`;
4. :func:`decode_anyres` decodes the tiles, reassembles the canvas, crops the padding and resizes
   back to ``H x W``. The layout (resize and padding) is a pure function of ``(H, W, rows, cols, T)``,
   so knowing the original size is enough to undo it; without it the whole canvas comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from unimodal.errors import ConfigError

DEFAULT_MAX_TILES = 4
Grid = tuple[int, int]


class ImageCodec(Protocol):
    """What AnyRes needs of an image tokenizer (GridImageTokenizer is one)."""

    image_size: int

    def encode(self, images: Tensor) -> Tensor: ...

    def decode(self, codes: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class TileLayout:
    """Where an ``original`` (H, W) image sits in its ``rows*T x cols*T`` canvas: resized to ``resized``
    (aspect kept) and padded with ``offset`` = (top, left) pixels before it, the rest after."""

    rows: int
    cols: int
    tile_size: int
    original: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]

    @property
    def canvas(self) -> tuple[int, int]:
        return self.rows * self.tile_size, self.cols * self.tile_size


def _check_size(height: int, width: int, tile_size: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if tile_size < 1:
        raise ValueError(f"tile size (the image tokenizer's image_size) must be positive, got {tile_size}")


def _fitted(height: int, width: int, canvas_h: int, canvas_w: int) -> tuple[int, int]:
    """Size of an ``height x width`` image scaled (aspect kept) to fit inside the canvas."""
    scale = min(canvas_h / height, canvas_w / width)
    return (min(canvas_h, max(1, round(height * scale))), min(canvas_w, max(1, round(width * scale))))


def candidate_grids(max_tiles: int) -> list[tuple[int, int]]:
    """Every ``(rows, cols)`` with ``rows * cols <= max_tiles``, fewest tiles first, then fewest rows."""
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be at least 1, got {max_tiles} (image_anyres_max_tiles)")
    grids = [(r, c) for r in range(1, max_tiles + 1) for c in range(1, max_tiles // r + 1)]
    return sorted(grids, key=lambda g: (g[0] * g[1], g[0]))


def allowed_grids(max_tiles: int, grids: Iterable[Iterable[int]] | None = None) -> list[Grid]:
    """The grids an image may take: ``grids`` (checked against ``max_tiles``) or, when None, every grid of at most
    ``max_tiles`` tiles; in :func:`candidate_grids` order either way."""
    if grids is None:
        return candidate_grids(max_tiles)
    chosen = []
    for grid in grids:
        pair = tuple(int(n) for n in grid)
        if len(pair) != 2 or min(pair) < 1 or pair[0] * pair[1] > max_tiles:
            raise ConfigError(f"tokenizer.image.anyres.grids: {list(grid)} is not [rows, cols] of at most "
                              f"max_tiles={max_tiles} tiles; list grids like [[1, 1], [1, 2], [2, 1]]")
        chosen.append(pair)
    if not chosen:
        raise ConfigError("tokenizer.image.anyres.grids is empty; list at least one [rows, cols] (or null: all)")
    return sorted(set(chosen), key=lambda g: (g[0] * g[1], g[0]))


def choose_grid(height: int, width: int, tile_size: int, max_tiles: int = DEFAULT_MAX_TILES,
                grids: Iterable[Iterable[int]] | None = None) -> Grid:
    """The grid that keeps the most of the image's resolution, then wastes the least canvas.

    ``grids`` limits the choice (see :func:`allowed_grids`). Ties go to the first grid of :func:`candidate_grids`
    (fewer tiles, then fewer rows), so the choice is deterministic. An image no larger than one tile always gets
    ``(1, 1)`` when that grid is allowed.
    """
    # The criterion is LLaVA-NeXT's `select_best_resolution` (Liu et al., 2024, "LLaVA-NeXT: improved reasoning").
    _check_size(height, width, tile_size)
    options = allowed_grids(max_tiles, grids)
    best, best_key = options[0], (-1, 0)
    for rows, cols in options:
        canvas_h, canvas_w = rows * tile_size, cols * tile_size
        fit_h, fit_w = _fitted(height, width, canvas_h, canvas_w)
        effective = min(fit_h * fit_w, height * width)  # upscaling adds no real resolution
        key = (effective, -(canvas_h * canvas_w - effective))
        if key > best_key:
            best, best_key = (rows, cols), key
    return best


def fit_layout(height: int, width: int, rows: int, cols: int, tile_size: int) -> TileLayout:
    """The resize and centred padding that put an ``height x width`` image into a ``rows x cols`` canvas."""
    _check_size(height, width, tile_size)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must have at least one tile, got {rows}x{cols}")
    canvas_h, canvas_w = rows * tile_size, cols * tile_size
    fit_h, fit_w = _fitted(height, width, canvas_h, canvas_w)
    offset = ((canvas_h - fit_h) // 2, (canvas_w - fit_w) // 2)
    return TileLayout(rows, cols, tile_size, (height, width), (fit_h, fit_w), offset)


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """``[C, H, W]`` -> ``[C, *size]``; torch rather than PIL because images here are float tensors of any C."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0.0, 1.0)


def to_canvas(image: Tensor, layout: TileLayout, fill: float = 0.0) -> Tensor:
    """``[C, H, W]`` -> the padded ``[C, rows*T, cols*T]`` canvas of ``layout``."""
    channels = image.shape[0]
    canvas = torch.full((channels, *layout.canvas), float(fill), dtype=torch.float32, device=image.device)
    top, left = layout.offset
    fit_h, fit_w = layout.resized
    canvas[:, top:top + fit_h, left:left + fit_w] = _resize(image, layout.resized)
    return canvas


def from_canvas(canvas: Tensor, layout: TileLayout, size: tuple[int, int] | None = None) -> Tensor:
    """Inverse of :func:`to_canvas`: crop the padding, resize to ``size`` (default: the original size)."""
    top, left = layout.offset
    fit_h, fit_w = layout.resized
    return _resize(canvas[:, top:top + fit_h, left:left + fit_w], tuple(size or layout.original))


def canvas_to_tiles(canvas: Tensor, rows: int, cols: int) -> Tensor:
    """``[C, rows*T, cols*T]`` -> ``[rows*cols, C, T, T]``, row-major (tile (0,0), (0,1), ..., (1,0), ...)."""
    channels, height, width = canvas.shape
    tile_h, tile_w = height // rows, width // cols
    tiles = canvas.reshape(channels, rows, tile_h, cols, tile_w).permute(1, 3, 0, 2, 4)
    return tiles.reshape(rows * cols, channels, tile_h, tile_w)


def tiles_to_canvas(tiles: Tensor, rows: int, cols: int) -> Tensor:
    """Inverse of :func:`canvas_to_tiles`."""
    count, channels, tile_h, tile_w = tiles.shape
    if count != rows * cols:
        raise ValueError(f"{count} tiles cannot fill a {rows}x{cols} grid")
    grid = tiles.reshape(rows, cols, channels, tile_h, tile_w).permute(2, 0, 3, 1, 4)
    return grid.reshape(channels, rows * tile_h, cols * tile_w)


@dataclass
class TiledImage:
    """One image cut for AnyRes: ``tiles`` ``[rows*cols, C, T, T]`` row-major, ``thumbnail`` ``[C, T, T]``."""

    tiles: Tensor
    thumbnail: Tensor
    layout: TileLayout
    thumbnail_layout: TileLayout


def split_image(image: Tensor, tile_size: int, max_tiles: int = DEFAULT_MAX_TILES, fill: float = 0.0,
                grids: Iterable[Iterable[int]] | None = None) -> TiledImage:
    """``[C, H, W]`` in [0, 1] -> tiles of the best grid plus a global thumbnail (padding value ``fill``)."""
    if image.ndim != 3:
        raise ValueError(f"expected one image [C, H, W], got shape {tuple(image.shape)}")
    height, width = int(image.shape[1]), int(image.shape[2])
    rows, cols = choose_grid(height, width, tile_size, max_tiles, grids)
    layout = fit_layout(height, width, rows, cols, tile_size)
    thumbnail_layout = fit_layout(height, width, 1, 1, tile_size)
    tiles = canvas_to_tiles(to_canvas(image, layout, fill), rows, cols)
    return TiledImage(tiles, to_canvas(image, thumbnail_layout, fill), layout, thumbnail_layout)


def merge_tiles(tiles: Tensor, layout: TileLayout, size: tuple[int, int] | None = None) -> Tensor:
    """Tiles ``[rows*cols, C, T, T]`` (e.g. decoded) -> the image ``[C, H, W]`` at ``size`` or the original size."""
    return from_canvas(tiles_to_canvas(tiles, layout.rows, layout.cols), layout, size)


class AnyResImage:
    """The codes of one AnyRes image: ``thumbnail`` ``[h, w]``, ``tiles`` ``[rows, cols, h, w]``.

    ``original_size`` (H, W) is metadata that token ids do not carry: it is ``None`` for a payload read
    back from a sequence, and equality ignores it (two payloads are equal when their codes are).
    """

    def __init__(self, thumbnail: Any, tiles: Any, original_size: tuple[int, int] | None = None) -> None:
        self.thumbnail = np.asarray(thumbnail, dtype=np.int64)
        self.tiles = np.asarray(tiles, dtype=np.int64)
        if self.tiles.ndim != self.thumbnail.ndim + 2 or self.tiles.shape[2:] != self.thumbnail.shape:
            raise ValueError(f"AnyRes tiles must be [rows, cols, *thumbnail shape]; got tiles "
                             f"{self.tiles.shape} and thumbnail {self.thumbnail.shape}")
        if self.tiles.shape[0] < 1 or self.tiles.shape[1] < 1:
            raise ValueError(f"an AnyRes image needs at least one tile, got a {self.tiles.shape[:2]} grid")
        self.original_size = None if original_size is None else (int(original_size[0]), int(original_size[1]))

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.tiles.shape[0]), int(self.tiles.shape[1])

    @property
    def num_tiles(self) -> int:
        return self.grid[0] * self.grid[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnyResImage):
            return NotImplemented
        return np.array_equal(self.thumbnail, other.thumbnail) and np.array_equal(self.tiles, other.tiles)

    __hash__ = None  # mutable arrays inside

    def __repr__(self) -> str:
        return (f"AnyResImage(grid={self.grid}, tile codes {self.thumbnail.shape}, "
                f"original_size={self.original_size})")


def _device(tokenizer: Any) -> torch.device:
    parameters = getattr(tokenizer, "parameters", None)
    if parameters is None:
        return torch.device("cpu")
    return next(iter(parameters()), torch.zeros(0)).device


def encode_anyres(tokenizer: ImageCodec, image: Tensor, max_tiles: int = DEFAULT_MAX_TILES,
                  fill: float = 0.0, grids: Iterable[Iterable[int]] | None = None) -> AnyResImage:
    """One ``[C, H, W]`` image in [0, 1] -> its :class:`AnyResImage` (thumbnail and tiles in one batch)."""
    tiled = split_image(image, int(tokenizer.image_size), max_tiles, fill, grids)
    batch = torch.cat([tiled.thumbnail[None], tiled.tiles]).to(_device(tokenizer))
    codes = tokenizer.encode(batch).cpu().numpy()
    rows, cols = tiled.layout.rows, tiled.layout.cols
    return AnyResImage(codes[0], codes[1:].reshape(rows, cols, *codes.shape[1:]), tiled.layout.original)


def decode_anyres(tokenizer: ImageCodec, payload: AnyResImage, size: tuple[int, int] | None = None) -> Tensor:
    """Codes -> image ``[C, H, W]`` in [0, 1].

    The output is ``size`` if given, else ``payload.original_size``, else the whole ``rows*T x cols*T``
    canvas (padding included: without the original size the padding cannot be located).
    """
    tile_size = int(tokenizer.image_size)
    rows, cols = payload.grid
    codes = torch.as_tensor(payload.tiles.reshape(rows * cols, *payload.thumbnail.shape)).to(_device(tokenizer))
    tiles = tokenizer.decode(codes).float().cpu()
    target = size or payload.original_size
    if target is None:
        return tiles_to_canvas(tiles, rows, cols)
    return merge_tiles(tiles, fit_layout(int(target[0]), int(target[1]), rows, cols, tile_size), target)


def decode_thumbnail(tokenizer: ImageCodec, payload: AnyResImage, size: tuple[int, int] | None = None) -> Tensor:
    """The thumbnail alone -> image ``[C, H, W]``: cropped and resized when a size is known, else ``T x T``."""
    codes = torch.as_tensor(payload.thumbnail[None]).to(_device(tokenizer))
    thumbnail = tokenizer.decode(codes).float().cpu()[0]
    target = size or payload.original_size
    if target is None:
        return thumbnail
    layout = fit_layout(int(target[0]), int(target[1]), 1, 1, int(tokenizer.image_size))
    return from_canvas(thumbnail, layout, target)
