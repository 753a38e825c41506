"""The body of each media span, for :class:`unimodal.sequence.SequenceCodec`: ids in, ids out, and which ids each
position may hold. ``sequence.py`` wraps these in ``<boi>``/``<eoi>`` (``<boa>``/``<eoa>``, ``<bov>``/``<eov>``) and
dispatches to them; nothing here knows a segment.

- K codes per position (audio's K codebooks at each frame, an rvq image's K residual levels at each grid cell), in
  one of three layouts: ``flat`` (position-major, ``c[0,0] c[1,0] .. c[K-1,0] c[0,1] ..``), ``delay`` (level k
  shifted right by k positions, MusicGen's delay pattern; ``<pad>`` where a level has no code; ``(T + K - 1) * K``
  ids) and ``coarse_first`` (all positions of level 0, then all of level 1, ...). Level k's ids are the k-th
  codebook range of the modality, so the layout never confuses one level with another. With K = 1 the three are
  the same: one code per position
- image grid: ``h*w`` cells row-major in the image layout, optionally ``<row>`` after each row (one code per cell)
- AnyRes image: ``thumbnail <tile> tile(0,0) <tile> tile(0,1) <row> <tile> tile(1,0) ...``: the thumbnail's body,
  then each tile as ``<tile>`` and its body, row-major, with ``<row>`` *between* tile rows. The grid is read back
  from the separators alone (rows = ``<row>`` count + 1, cols = tiles in the first row)
- audio ``[K, T]``: T frames of K codebooks in the audio layout
- video ``(t, h, w)``: each frame's cells row-major in the image layout, ``<frame>`` between frames (not after the
  last), so ``t*h*w + t - 1`` tokens with one code per cell

Each ``decode_*`` gives ``(payload, truncated)``, or None when nothing whole is left of a cut-off span.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unimodal.tokenizers.anyres import AnyResImage
from unimodal.vocab import Vocabulary

LAYOUTS = ("flat", "delay", "coarse_first")
Pairs = list[tuple[int, int]]   # allowed [low, high) of each position


def levels(vocab: Vocabulary, modality: str) -> int:
    """Codes per position of ``modality``: its number of codebooks (residual levels)."""
    return vocab.ranges[modality].num_codebooks


def _fits(body: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Per position of ``body`` (at most ``len(pairs)`` long): does its id lie in that position's range?"""
    pairs = pairs[:len(body)]
    return (body >= pairs[:, 0]) & (body < pairs[:, 1])


# --- K codes per position: the three layouts --------------------------------------------
def stack_body(vocab: Vocabulary, modality: str, codes: Any, layout: str) -> np.ndarray:
    """``[K, T]`` local codes (K levels at each of T positions) -> 1-D global ids in ``layout``."""
    codes = np.asarray(codes, dtype=np.int64)
    num_books, positions = codes.shape
    books = np.broadcast_to(np.arange(num_books)[:, None], codes.shape)
    ids = vocab.to_global(modality, codes, books)
    if layout == "flat":
        return ids.T.reshape(-1)
    if layout == "coarse_first":
        return ids.reshape(-1)
    steps = np.full((positions + num_books - 1, num_books), vocab.pad_id, dtype=np.int64)
    for k in range(num_books):
        steps[k:k + positions, k] = ids[k]
    return steps.reshape(-1)


def stack_codes(vocab: Vocabulary, ids: Any, layout: str, num_books: int, positions: int | None = None) -> np.ndarray:
    """Inverse of :func:`stack_body`: the exact ``[K, T]`` local codes."""
    ids = np.asarray(ids, dtype=np.int64)
    if layout == "delay":
        steps = ids.reshape(-1, num_books)
        positions = positions or steps.shape[0] - num_books + 1
        body = np.stack([steps[k:k + positions, k] for k in range(num_books)])
    elif layout == "flat":
        body = ids.reshape(-1, num_books).T
    else:
        body = ids.reshape(num_books, -1)
    return vocab.to_local(body)[2]


def stack_span_length(layout: str, num_books: int, positions: int) -> int:
    return (positions + num_books - 1) * num_books if layout == "delay" else positions * num_books


def stack_pairs(vocab: Vocabulary, modality: str, layout: str, num_books: int, positions: int) -> Pairs:
    book_ranges = [vocab.range_of(modality, k) for k in range(num_books)]
    if layout == "flat":
        return book_ranges * positions
    if layout == "coarse_first":
        return [r for r in book_ranges for _ in range(positions)]
    pad = (vocab.pad_id, vocab.pad_id + 1)
    return [book_ranges[k] if 0 <= step - k < positions else pad
            for step in range(positions + num_books - 1) for k in range(num_books)]


def decode_stack(vocab: Vocabulary, modality: str, body: np.ndarray, layout: str, num_books: int,
                 positions: int | None, truncated: bool) -> tuple[np.ndarray, bool] | None:
    """Body ids -> ``[K, T]`` codes; a cut-off span keeps its whole positions (none, in ``coarse_first``)."""
    expected = stack_span_length(layout, num_books, positions) if positions else None
    if expected is not None and len(body) != expected:
        truncated = True
    if layout == "coarse_first" and truncated:
        return None  # a cut coarse-first span lacks whole levels for every position
    usable = (len(body) // num_books) * num_books
    if layout == "delay":
        usable = max(usable - num_books * (num_books - 1), 0)
        body = body[:usable + num_books * (num_books - 1)]
    else:
        body = body[:usable]
    if usable == 0:
        return None
    low, high = vocab.range_of(modality)
    content = body if layout != "delay" else body[body != vocab.pad_id]
    if ((content < low) | (content >= high)).any():
        return None
    return stack_codes(vocab, body, layout, num_books), truncated


# --- image grid --------------------------------------------------------------------------
def cells(codes: Any, num_books: int) -> np.ndarray:
    """Image codes ``[h, w]`` (one level) or ``[h, w, K]`` -> ``[K, h*w]``, the layouts' input."""
    codes = np.asarray(codes, dtype=np.int64)
    wanted = 2 if num_books == 1 else 3
    if codes.ndim != wanted or (num_books > 1 and codes.shape[-1] != num_books):
        shape = "[h, w]" if num_books == 1 else f"[h, w, {num_books}]"
        raise ValueError(f"image codes must be {shape} ({num_books} level(s) per cell), got shape {codes.shape}")
    return codes.reshape(codes.shape[0] * codes.shape[1], num_books).T


def image_body(vocab: Vocabulary, codes: Any, layout: str, row_separators: bool) -> np.ndarray:
    num_books = levels(vocab, "image")
    rows = np.asarray(codes).shape[0]
    ids = stack_body(vocab, "image", cells(codes, num_books), layout)
    if row_separators:  # one level per cell (the codec checks): ids are the grid, row-major
        ids = np.concatenate([ids.reshape(rows, -1), np.full((rows, 1), vocab.special("<row>"))], axis=1)
    return ids.reshape(-1).astype(np.int64)


def image_pairs(vocab: Vocabulary, grid: tuple[int, int], layout: str, row_separators: bool) -> Pairs:
    rows, cols = grid
    pairs = stack_pairs(vocab, "image", layout, levels(vocab, "image"), rows * cols)
    if not row_separators:
        return pairs
    row_id = vocab.special("<row>")
    return [pair for row in range(rows) for pair in [*pairs[row * cols:(row + 1) * cols], (row_id, row_id + 1)]]


def image_codes(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int], layout: str) -> np.ndarray:
    """The exact body of one ``grid`` image (no row separators) -> ``[h, w]`` or ``[h, w, K]`` codes."""
    num_books = levels(vocab, "image")
    codes = stack_codes(vocab, body, layout, num_books, grid[0] * grid[1])
    return codes.reshape(grid) if num_books == 1 else codes.T.reshape(*grid, num_books)


def decode_image(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int], layout: str, row_separators: bool,
                 truncated: bool) -> tuple[np.ndarray, bool] | None:
    """Body ids -> image codes; a cut-off or malformed span keeps its whole leading rows."""
    rows, cols = grid
    num_books = levels(vocab, "image")
    if num_books > 1:
        decoded = decode_stack(vocab, "image", body, layout, num_books, rows * cols, truncated)
        if decoded is None:
            return None
        codes, truncated = decoded
        whole = (min(codes.shape[1], rows * cols) // cols) * cols
        if whole == 0:
            return None
        return codes[:, :whole].T.reshape(-1, cols, num_books), truncated or whole != rows * cols
    if row_separators:
        body = body[body != vocab.special("<row>")]
    low, high = vocab.range_of("image")
    if len(body) != rows * cols or ((body < low) | (body >= high)).any():
        truncated = True
        body = body[(body >= low) & (body < high)]
        whole = (len(body) // cols) * cols
        if whole == 0:
            return None
        body = body[:whole]
    return vocab.to_local(body)[2].reshape(-1, cols), truncated


# --- AnyRes image ------------------------------------------------------------------------
def anyres_body(vocab: Vocabulary, payload: AnyResImage, grid: tuple[int, int], layout: str) -> np.ndarray:
    """An AnyRes payload -> its span body (the codec checks its grid against what the run allows)."""
    if payload.thumbnail.shape[:2] != tuple(grid):
        raise ValueError(f"AnyRes tile codes {payload.thumbnail.shape} do not match image_grid {grid}")
    tile_id, row_id = vocab.special("<tile>"), vocab.special("<row>")
    parts = [image_body(vocab, payload.thumbnail, layout, False)]
    rows, cols = payload.grid
    for row in range(rows):
        if row:
            parts.append(np.array([row_id]))
        for col in range(cols):
            parts.append(np.array([tile_id]))
            parts.append(image_body(vocab, payload.tiles[row, col], layout, False))
    return np.concatenate(parts).astype(np.int64)


def anyres_pairs(vocab: Vocabulary, grid: tuple[int, int], layout: str, tiles: tuple[int, int]) -> Pairs:
    """The whole body of an AnyRes span of exactly ``tiles`` = (rows, cols): what a requested size fixes."""
    tile = image_pairs(vocab, grid, layout, False)
    tile_id, row_id = vocab.special("<tile>"), vocab.special("<row>")
    pairs = list(tile)
    for row in range(tiles[0]):
        if row:
            pairs.append((row_id, row_id + 1))
        for _ in range(tiles[1]):
            pairs += [(tile_id, tile_id + 1), *tile]
    return pairs


def decode_anyres(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int], layout: str,
                  truncated: bool) -> tuple[Any, bool] | None:
    """Thumbnail, then ``<tile>``-led tiles in ``<row>``-separated rows; keeps the largest whole-row prefix that
    forms a rectangle and flags anything dropped as truncated. With no whole tile, the thumbnail (or what is left
    of it) comes back as a plain ``[h, w]`` image."""
    tile = np.asarray(image_pairs(vocab, grid, layout, False), dtype=np.int64).reshape(-1, 2)
    tile_len = len(tile)
    tile_id, row_id = vocab.special("<tile>"), vocab.special("<row>")

    def whole_tile(start: int) -> bool:
        part = body[start:start + tile_len]
        return len(part) == tile_len and bool(_fits(part, tile).all())

    rows: list[list[np.ndarray]] = [[]]
    clean = whole_tile(0)
    position = tile_len if clean else 0
    while clean and position < len(body):
        token = int(body[position])
        if token == tile_id and whole_tile(position + 1):
            rows[-1].append(body[position + 1:position + 1 + tile_len])
            position += 1 + tile_len
        elif token == row_id and rows[-1]:
            rows.append([])
            position += 1
        else:
            clean = False
    cols = len(rows[0])
    whole = []
    for row in rows:
        if len(row) != cols:
            break
        whole.append(row)
    if cols == 0:  # no complete tile: the thumbnail (or what is left of it) is a plain image
        fits = _fits(body[:tile_len], tile)
        lead = len(fits) if fits.all() else int(np.argmin(fits))
        return decode_image(vocab, body[:lead], grid, layout, False, truncated or lead != len(body))
    truncated = truncated or not clean or len(whole) != len(rows)
    tiles = np.stack([np.stack([image_codes(vocab, part, grid, layout) for part in row]) for row in whole])
    return AnyResImage(image_codes(vocab, body[:tile_len], grid, layout), tiles), truncated


# --- audio -------------------------------------------------------------------------------
def audio_pairs(vocab: Vocabulary, layout: str, frames: int) -> Pairs:
    return stack_pairs(vocab, "audio", layout, levels(vocab, "audio"), frames)


def decode_audio(vocab: Vocabulary, body: np.ndarray, layout: str, frames: int | None,
                 truncated: bool) -> tuple[np.ndarray, bool] | None:
    """Body ids -> ``[K, T]`` codes; a cut-off span keeps its whole frames (none, in ``coarse_first``)."""
    return decode_stack(vocab, "audio", body, layout, levels(vocab, "audio"), frames, truncated)


# --- video -------------------------------------------------------------------------------
def video_pairs(vocab: Vocabulary, grid: tuple[int, int, int], layout: str = "flat") -> Pairs:
    """Allowed ``[low, high)`` per position: a frame's cells in the image layout, then ``<frame>`` between frames."""
    frames, rows, cols = grid
    separator = vocab.special("<frame>")
    frame = stack_pairs(vocab, "video", layout, levels(vocab, "video"), rows * cols)
    pairs: Pairs = []
    for index in range(frames):
        if index:
            pairs.append((separator, separator + 1))
        pairs += frame
    return pairs


def video_body(vocab: Vocabulary, payload: Any, grid: tuple[int, int, int] | None, layout: str = "flat") -> np.ndarray:
    """``[t, h, w]`` (or ``[t, h, w, K]``) local codes -> the span body's global ids."""
    codes = np.asarray(payload, dtype=np.int64)
    num_books = levels(vocab, "video")
    if codes.ndim != (3 if num_books == 1 else 4):
        raise ValueError(f"video codes must be [t, h, w{'' if num_books == 1 else f', {num_books}'}], "
                         f"got shape {codes.shape}")
    if grid is not None and tuple(codes.shape[:3]) != grid:
        raise ValueError(f"video codes {codes.shape} do not match video_grid {grid}")
    separator = np.array([vocab.special("<frame>")])
    parts = []
    for index, frame in enumerate(codes):
        parts += [separator] if index else []
        parts.append(stack_body(vocab, "video", frame.reshape(-1, num_books).T, layout))
    return np.concatenate(parts).astype(np.int64)


def decode_video(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int, int], layout: str,
                 truncated: bool) -> tuple[np.ndarray, bool] | None:
    """Body ids -> ``[t, h, w]`` (``[t, h, w, K]``) codes; a span cut off or malformed keeps its whole leading
    frames only."""
    _, rows, cols = grid
    num_books = levels(vocab, "video")
    frame_pairs = np.asarray(stack_pairs(vocab, "video", layout, num_books, rows * cols), dtype=np.int64)
    frame_len = len(frame_pairs)
    separator = vocab.special("<frame>")
    frames: list[np.ndarray] = []
    position = 0
    while position + frame_len <= len(body):
        frame = body[position:position + frame_len]
        if not _fits(frame, frame_pairs).all():
            break
        codes = stack_codes(vocab, frame, layout, num_books, rows * cols)
        frames.append(codes.reshape(rows, cols) if num_books == 1 else codes.T.reshape(rows, cols, num_books))
        position += frame_len
        if position < len(body) and body[position] != separator:
            break
        position += 1
    clean = position >= len(body) and len(frames) == grid[0]
    if not frames:
        return None
    return np.stack(frames), truncated or not clean
