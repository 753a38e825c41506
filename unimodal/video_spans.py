"""The video span of :class:`unimodal.sequence.SequenceCodec`: ``<bov> frame <frame> frame ... <eov>``.

A frame is its ``h*w`` codes, row-major; ``<frame>`` sits between frames (not after the last), so the span
of a ``(t, h, w)`` grid is ``t*h*w + t - 1`` tokens. Kept beside sequence.py so that file only dispatches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from unimodal.sequence import Segment, SequenceCodec


def _grid(codec: SequenceCodec) -> tuple[int, int, int]:
    if codec.video_grid is None:
        raise ValueError("video_grid is not set for this codec")
    return codec.video_grid


def video_span_pairs(codec: SequenceCodec) -> list[tuple[int, int]]:
    """Allowed ``[low, high)`` per position: a frame's codes, then ``<frame>`` between frames."""
    frames, rows, cols = _grid(codec)
    codes = codec.vocab.range_of("video", 0)
    separator = codec.vocab.special("<frame>")
    frame = [codes] * (rows * cols)
    pairs: list[tuple[int, int]] = []
    for index in range(frames):
        if index:
            pairs.append((separator, separator + 1))
        pairs += frame
    return pairs


def video_body(codec: SequenceCodec, payload: object) -> np.ndarray:
    """``[t, h, w]`` local codes -> the span body's global ids."""
    codes = np.asarray(payload, dtype=np.int64)
    if codes.ndim != 3:
        raise ValueError(f"video codes must be [t, h, w], got shape {codes.shape}")
    if codec.video_grid is not None and tuple(codes.shape) != codec.video_grid:
        raise ValueError(f"video codes {codes.shape} do not match video_grid {codec.video_grid}")
    ids = codec.vocab.to_global("video", codes).reshape(codes.shape[0], -1)
    separator = np.full((codes.shape[0], 1), codec.vocab.special("<frame>"), dtype=np.int64)
    return np.concatenate([separator, ids], axis=1).reshape(-1)[1:]


def decode_video_span(codec: SequenceCodec, body: np.ndarray, truncated: bool) -> Segment | None:
    """Body ids -> ``[t, h, w]`` codes; a span cut off or malformed keeps its whole leading frames only."""
    from unimodal.sequence import Segment

    _, rows, cols = _grid(codec)
    frame_len = rows * cols
    low, high = codec.vocab.range_of("video")
    separator = codec.vocab.special("<frame>")
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
    clean = position >= len(body) and len(frames) == codec.video_grid[0]
    if not frames:
        return None
    codes = codec.vocab.to_local(np.stack(frames))[2].reshape(len(frames), rows, cols)
    return Segment("video", codes, truncated=truncated or not clean)
