"""The body of each media span, for :class:`unimodal.sequence.SequenceCodec`: ids in, ids out, and which ids each
position may hold. ``sequence.py`` wraps these in ``<boi>``/``<eoi>`` (``<boa>``/``<eoa>``, ``<bov>``/``<eov>``) and
dispatches to them; nothing here knows a segment.

- image grid: ``h*w`` codes row-major, optionally ``<row>`` after each row
- AnyRes image: ``thumbnail <tile> tile(0,0) <tile> tile(0,1) <row> <tile> tile(1,0) ...``: the thumbnail's codes,
  then each tile as ``<tile>`` and its codes, row-major, with ``<row>`` *between* tile rows. The grid is read back
  from the separators alone (rows = ``<row>`` count + 1, cols = tiles in the first row)
- audio ``[K, T]`` in one of three layouts: ``flat`` (frame-major, ``c[0,0] c[1,0] .. c[K-1,0] c[0,1] ..``),
  ``delay`` (codebook k shifted right by k frames, MusicGen's delay pattern; ``<pad>`` where a codebook has no code;
  ``(T + K - 1) * K`` positions) and ``coarse_first`` (all frames of codebook 0, then all of codebook 1, ...)
- video ``(t, h, w)``: each frame's ``h*w`` codes row-major, ``<frame>`` between frames (not after the last), so
  ``t*h*w + t - 1`` tokens

Each ``decode_*`` gives ``(payload, truncated)``, or None when nothing whole is left of a cut-off span.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unimodal.tokenizers.anyres import AnyResImage
from unimodal.vocab import Vocabulary

LAYOUTS = ("flat", "delay", "coarse_first")
Pairs = list[tuple[int, int]]   # allowed [low, high) of each position


# --- image grid --------------------------------------------------------------------------
def grid_pairs(vocab: Vocabulary, grid: tuple[int, int], row_separators: bool) -> Pairs:
    low_code, high_code = vocab.range_of("image", 0)
    rows, cols = grid
    row = [(low_code, high_code)] * cols
    if row_separators:
        row_id = vocab.special("<row>")
        row = row + [(row_id, row_id + 1)]
    return row * rows


def grid_body(vocab: Vocabulary, codes: Any, row_separators: bool) -> np.ndarray:
    ids = vocab.to_global("image", np.asarray(codes, dtype=np.int64))
    if row_separators:
        row_id = np.full((ids.shape[0], 1), vocab.special("<row>"), dtype=np.int64)
        ids = np.concatenate([ids, row_id], axis=1)
    return ids.reshape(-1)


def decode_grid(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int], row_separators: bool,
                truncated: bool) -> tuple[np.ndarray, bool] | None:
    rows, cols = grid
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
def anyres_body(vocab: Vocabulary, payload: AnyResImage, grid: tuple[int, int], max_tiles: int) -> np.ndarray:
    if payload.thumbnail.shape != grid:
        raise ValueError(f"AnyRes tile codes {payload.thumbnail.shape} do not match image_grid {grid}")
    if payload.num_tiles > max_tiles:
        raise ValueError(f"AnyRes grid {payload.grid} has more than image_anyres_max_tiles={max_tiles} tiles")
    tile_id, row_id = vocab.special("<tile>"), vocab.special("<row>")
    parts = [vocab.to_global("image", payload.thumbnail).reshape(-1)]
    rows, cols = payload.grid
    for row in range(rows):
        if row:
            parts.append(np.array([row_id]))
        for col in range(cols):
            parts.append(np.array([tile_id]))
            parts.append(vocab.to_global("image", payload.tiles[row, col]).reshape(-1))
    return np.concatenate(parts).astype(np.int64)


def decode_anyres(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int],
                  truncated: bool) -> tuple[Any, bool] | None:
    """Thumbnail, then ``<tile>``-led tiles in ``<row>``-separated rows; keeps the largest whole-row prefix that
    forms a rectangle and flags anything dropped as truncated. With no whole tile, the thumbnail (or what is left
    of it) comes back as a plain ``[h, w]`` image."""
    tile_len = grid[0] * grid[1]
    low, high = vocab.range_of("image", 0)
    tile_id, row_id = vocab.special("<tile>"), vocab.special("<row>")
    is_code = (body >= low) & (body < high)
    lead = len(body) if is_code.all() else int(np.argmin(is_code))  # codes before the first other token
    thumbnail_end = tile_len if lead >= tile_len else 0
    rows: list[list[np.ndarray]] = [[]]
    position, clean = thumbnail_end, thumbnail_end > 0
    while clean and position < len(body):
        token = int(body[position])
        if token == tile_id and position + 1 + tile_len <= len(body) \
                and is_code[position + 1:position + 1 + tile_len].all():
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
        thumbnail = body[:min(lead, tile_len)]
        return decode_grid(vocab, thumbnail, grid, False, truncated or len(thumbnail) != len(body))
    truncated = truncated or not clean or len(whole) != len(rows)
    codes = vocab.to_local(np.stack([np.stack(row) for row in whole]))[2]
    thumbnail = vocab.to_local(body[:tile_len])[2].reshape(grid)
    return AnyResImage(thumbnail, codes.reshape(len(whole), cols, *grid)), truncated


# --- audio -------------------------------------------------------------------------------
def audio_body(vocab: Vocabulary, codes: Any, layout: str) -> np.ndarray:
    """``[K, T]`` local codes -> 1-D global ids in ``layout``."""
    codes = np.asarray(codes, dtype=np.int64)
    num_books, frames = codes.shape
    books = np.broadcast_to(np.arange(num_books)[:, None], codes.shape)
    ids = vocab.to_global("audio", codes, books)
    if layout == "flat":
        return ids.T.reshape(-1)
    if layout == "coarse_first":
        return ids.reshape(-1)
    steps = np.full((frames + num_books - 1, num_books), vocab.pad_id, dtype=np.int64)
    for k in range(num_books):
        steps[k:k + frames, k] = ids[k]
    return steps.reshape(-1)


def audio_codes(vocab: Vocabulary, ids: Any, layout: str, num_books: int, frames: int | None = None) -> np.ndarray:
    """Inverse of :func:`audio_body`: the exact ``[K, T]`` local codes."""
    ids = np.asarray(ids, dtype=np.int64)
    if layout == "delay":
        steps = ids.reshape(-1, num_books)
        frames = frames or steps.shape[0] - num_books + 1
        body = np.stack([steps[k:k + frames, k] for k in range(num_books)])
    elif layout == "flat":
        body = ids.reshape(-1, num_books).T
    else:
        body = ids.reshape(num_books, -1)
    return vocab.to_local(body)[2]


def audio_span_length(layout: str, num_books: int, frames: int) -> int:
    return (frames + num_books - 1) * num_books if layout == "delay" else frames * num_books


def audio_pairs(vocab: Vocabulary, layout: str, num_books: int, frames: int) -> Pairs:
    book_ranges = [vocab.range_of("audio", k) for k in range(num_books)]
    if layout == "flat":
        return book_ranges * frames
    if layout == "coarse_first":
        return [r for r in book_ranges for _ in range(frames)]
    pad = (vocab.pad_id, vocab.pad_id + 1)
    return [book_ranges[k] if 0 <= step - k < frames else pad
            for step in range(frames + num_books - 1) for k in range(num_books)]


def decode_audio(vocab: Vocabulary, body: np.ndarray, layout: str, num_books: int, frames: int | None,
                 truncated: bool) -> tuple[np.ndarray, bool] | None:
    """Body ids -> ``[K, T]`` codes; a cut-off span keeps its whole frames (none, in ``coarse_first``)."""
    expected = audio_span_length(layout, num_books, frames) if frames else None
    if expected is not None and len(body) != expected:
        truncated = True
    if layout == "coarse_first" and truncated:
        return None  # a cut coarse-first span lacks whole codebooks for every frame
    usable = (len(body) // num_books) * num_books
    if layout == "delay":
        usable = max(usable - num_books * (num_books - 1), 0)
        body = body[:usable + num_books * (num_books - 1)]
    else:
        body = body[:usable]
    if usable == 0:
        return None
    low, high = vocab.range_of("audio")
    content = body if layout != "delay" else body[body != vocab.pad_id]
    if ((content < low) | (content >= high)).any():
        return None
    return audio_codes(vocab, body, layout, num_books), truncated


# --- video -------------------------------------------------------------------------------
def video_pairs(vocab: Vocabulary, grid: tuple[int, int, int]) -> Pairs:
    """Allowed ``[low, high)`` per position: a frame's codes, then ``<frame>`` between frames."""
    frames, rows, cols = grid
    codes = vocab.range_of("video", 0)
    separator = vocab.special("<frame>")
    frame = [codes] * (rows * cols)
    pairs: Pairs = []
    for index in range(frames):
        if index:
            pairs.append((separator, separator + 1))
        pairs += frame
    return pairs


def video_body(vocab: Vocabulary, payload: Any, grid: tuple[int, int, int] | None) -> np.ndarray:
    """``[t, h, w]`` local codes -> the span body's global ids."""
    codes = np.asarray(payload, dtype=np.int64)
    if codes.ndim != 3:
        raise ValueError(f"video codes must be [t, h, w], got shape {codes.shape}")
    if grid is not None and tuple(codes.shape) != grid:
        raise ValueError(f"video codes {codes.shape} do not match video_grid {grid}")
    ids = vocab.to_global("video", codes).reshape(codes.shape[0], -1)
    separator = np.full((codes.shape[0], 1), vocab.special("<frame>"), dtype=np.int64)
    return np.concatenate([separator, ids], axis=1).reshape(-1)[1:]


def decode_video(vocab: Vocabulary, body: np.ndarray, grid: tuple[int, int, int],
                 truncated: bool) -> tuple[np.ndarray, bool] | None:
    """Body ids -> ``[t, h, w]`` codes; a span cut off or malformed keeps its whole leading frames only."""
    _, rows, cols = grid
    frame_len = rows * cols
    low, high = vocab.range_of("video")
    separator = vocab.special("<frame>")
    frames: list[np.ndarray] = []
    position = 0
    while position + frame_len <= len(body):
        frame = body[position:position + frame_len]
        if ((frame < low) | (frame >= high)).any():
            break
        frames.append(frame)
        position += frame_len
        if position < len(body) and body[position] != separator:
            break
        position += 1
    clean = position >= len(body) and len(frames) == grid[0]
    if not frames:
        return None
    codes = vocab.to_local(np.stack(frames))[2].reshape(len(frames), rows, cols)
    return codes, truncated or not clean
