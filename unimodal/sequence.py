"""Segment lists <-> global id sequences, with loss masks and the modality of each position.

A sample is a list of :class:`Segment`. Text segments are runs of text ids; media segments are
spans wrapped in their opener and closer:

- image: ``<boi> h*w codes (with <row> after each row when row_separators) <eoi>``
- audio: ``<boa> K*T codes in the chosen layout <eoa>``

Multi-codebook audio ``[K, T]`` goes into one stream by one of three layouts:

- ``flat``: frame-major, ``c[0,0] c[1,0] .. c[K-1,0] c[0,1] ..``
- ``delay``: codebook k shifted right by k frames (MusicGen's delay pattern); steps where a
  codebook has no code hold ``<pad>``; ``(T + K - 1) * K`` positions
- ``coarse_first``: all frames of codebook 0, then all of codebook 1, ...

:meth:`SequenceCodec.span_plan` says, for each position of a span, which ids it may hold: the
generation constraints use exactly that, so every generated span decodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unimodal.vocab import CLOSERS, OPENERS, Vocabulary

LAYOUTS = ("flat", "delay", "coarse_first")
MODALITY_CODES = {"special": 0, "text": 1, "image": 2, "audio": 3, "video": 4}


@dataclass
class Segment:
    """One piece of a sample. ``payload``: text -> list of text ids; image -> ``[h, w]`` codes;
    audio -> ``[K, T]`` codes. ``loss`` marks segments the model is trained to produce."""

    modality: str
    payload: Any
    role: str = "user"
    loss: bool = False
    truncated: bool = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segment):
            return NotImplemented
        return (self.modality == other.modality and self.role == other.role and self.loss == other.loss
                and np.array_equal(np.asarray(self.payload), np.asarray(other.payload)))


@dataclass
class Encoded:
    ids: np.ndarray            # int64 [L]
    loss_mask: np.ndarray      # bool [L]: positions whose token is a training target
    modality_of_position: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # MODALITY_CODES

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class SpanPlan:
    """Allowed id interval ``[low[i], high[i])`` at each position of a media span's body."""

    modality: str
    low: np.ndarray
    high: np.ndarray

    def __len__(self) -> int:
        return len(self.low)


class SequenceCodec:
    """Encodes and decodes samples for one vocabulary and fixed media shapes."""

    def __init__(self, vocab: Vocabulary, image_grid: tuple[int, int] | None = None,
                 audio_frames: int | None = None, audio_layout: str = "flat",
                 row_separators: bool = False) -> None:
        if audio_layout not in LAYOUTS:
            raise ValueError(f"audio_layout must be one of {LAYOUTS}, got {audio_layout!r}")
        self.vocab = vocab
        self.image_grid = tuple(image_grid) if image_grid else None
        self.audio_frames = audio_frames
        self.audio_layout = audio_layout
        self.row_separators = row_separators
        self._closer_of = {vocab.special(CLOSERS[m]): m for m in vocab.media}
        self._opener_of = {vocab.special(OPENERS[m]): m for m in vocab.media}

    @property
    def num_audio_codebooks(self) -> int:
        return self.vocab.ranges["audio"].num_codebooks

    # --- layouts of multi-codebook audio -------------------------------------------------
    def flatten_audio(self, codes: np.ndarray) -> np.ndarray:
        """``[K, T]`` local codes -> 1-D global ids in the configured layout."""
        codes = np.asarray(codes, dtype=np.int64)
        num_books, frames = codes.shape
        books = np.broadcast_to(np.arange(num_books)[:, None], codes.shape)
        ids = self.vocab.to_global("audio", codes, books)
        if self.audio_layout == "flat":
            return ids.T.reshape(-1)
        if self.audio_layout == "coarse_first":
            return ids.reshape(-1)
        grid = np.full((frames + num_books - 1, num_books), self.vocab.pad_id, dtype=np.int64)
        for k in range(num_books):
            grid[k:k + frames, k] = ids[k]
        return grid.reshape(-1)

    def unflatten_audio(self, ids: np.ndarray, frames: int | None = None) -> np.ndarray:
        """Inverse of :meth:`flatten_audio`; gives back the exact ``[K, T]`` local codes."""
        ids = np.asarray(ids, dtype=np.int64)
        num_books = self.num_audio_codebooks
        if self.audio_layout == "delay":
            steps = ids.reshape(-1, num_books)
            frames = frames or steps.shape[0] - num_books + 1
            body = np.stack([steps[k:k + frames, k] for k in range(num_books)])
        elif self.audio_layout == "flat":
            body = ids.reshape(-1, num_books).T
        else:
            body = ids.reshape(num_books, -1)
        return self.vocab.to_local(body)[2]

    def audio_span_length(self, frames: int | None = None) -> int:
        frames = frames or self.audio_frames
        if frames is None:
            raise ValueError("audio_frames is not set for this codec")
        num_books = self.num_audio_codebooks
        return (frames + num_books - 1) * num_books if self.audio_layout == "delay" else frames * num_books

    # --- constraints ---------------------------------------------------------------------
    def span_plan(self, modality: str) -> SpanPlan:
        if modality == "image":
            if self.image_grid is None:
                raise ValueError("image_grid is not set for this codec")
            low_code, high_code = self.vocab.range_of("image", 0)
            rows, cols = self.image_grid
            row = [(low_code, high_code)] * cols
            if self.row_separators:
                row_id = self.vocab.special("<row>")
                row = row + [(row_id, row_id + 1)]
            pairs = row * rows
        elif modality == "audio":
            num_books = self.num_audio_codebooks
            frames = self.audio_frames
            book_ranges = [self.vocab.range_of("audio", k) for k in range(num_books)]
            if self.audio_layout == "flat":
                pairs = book_ranges * frames
            elif self.audio_layout == "coarse_first":
                pairs = [r for r in book_ranges for _ in range(frames)]
            else:
                pad = (self.vocab.pad_id, self.vocab.pad_id + 1)
                pairs = [book_ranges[k] if 0 <= step - k < frames else pad
                         for step in range(frames + num_books - 1) for k in range(num_books)]
        else:
            raise ValueError(f"no span plan for modality {modality!r}")
        arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return SpanPlan(modality, arr[:, 0], arr[:, 1])

    # --- whole samples -------------------------------------------------------------------
    def _body(self, segment: Segment) -> np.ndarray:
        if segment.modality == "text":
            ids = np.asarray(segment.payload, dtype=np.int64).reshape(-1)
            if ids.size and (ids.min() < 0 or ids.max() >= self.vocab.text_size):
                raise ValueError(f"text ids must lie in [0, {self.vocab.text_size})")
            return ids
        if segment.modality == "image":
            codes = np.asarray(segment.payload, dtype=np.int64)
            ids = self.vocab.to_global("image", codes)
            if self.row_separators:
                row_id = np.full((ids.shape[0], 1), self.vocab.special("<row>"), dtype=np.int64)
                ids = np.concatenate([ids, row_id], axis=1)
            return ids.reshape(-1)
        if segment.modality == "audio":
            return self.flatten_audio(segment.payload)
        raise ValueError(f"unknown segment modality {segment.modality!r}")

    def encode(self, segments: list[Segment], add_bos: bool = True, add_eos: bool = True) -> Encoded:
        """Segments -> ids, loss mask (targets) and modality per position.

        ``loss_mask[i]`` is True where ``ids[i]`` is predicted with loss: every token of a segment
        with ``loss=True`` (its opener excluded: generation forces openers) and the final ``<eos>``
        when the last segment carries loss.
        """
        ids: list[np.ndarray] = []
        mask: list[np.ndarray] = []
        kinds: list[np.ndarray] = []

        def put(chunk: np.ndarray, loss: bool, kind: str) -> None:
            ids.append(chunk)
            mask.append(np.full(len(chunk), loss))
            kinds.append(np.full(len(chunk), MODALITY_CODES[kind], dtype=np.int8))

        if add_bos:
            put(np.array([self.vocab.bos_id]), False, "special")
        for segment in segments:
            body = self._body(segment)
            if segment.modality == "text":
                put(body, segment.loss, "text")
                continue
            put(np.array([self.vocab.special(OPENERS[segment.modality])]), False, "special")
            put(body, segment.loss, segment.modality)
            put(np.array([self.vocab.special(CLOSERS[segment.modality])]), segment.loss, "special")
        if add_eos:
            put(np.array([self.vocab.eos_id]), bool(segments) and segments[-1].loss, "special")
        return Encoded(np.concatenate(ids), np.concatenate(mask), np.concatenate(kinds))

    def decode(self, ids: Any) -> list[Segment]:
        """Ids -> segments. A span cut off before its closer is kept with ``truncated=True``
        (trimmed to whole rows / frames); stray specials are dropped."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        segments: list[Segment] = []
        text: list[int] = []
        i = 0

        def flush_text() -> None:
            if text:
                segments.append(Segment("text", list(text)))
                text.clear()

        while i < len(ids):
            token = ids[i]
            if token < self.vocab.text_size:
                text.append(token)
                i += 1
                continue
            if token in self._opener_of:
                flush_text()
                modality = self._opener_of[token]
                closer = self.vocab.special(CLOSERS[modality])
                end = ids.index(closer, i + 1) if closer in ids[i + 1:] else len(ids)
                segment = self._decode_span(modality, ids[i + 1:end], truncated=end == len(ids))
                if segment is not None:
                    segments.append(segment)
                i = end + 1
                continue
            if token == self.vocab.eos_id:
                break
            i += 1  # bos, pad, stray closers and separators outside spans carry no content
        flush_text()
        return segments

    def _decode_span(self, modality: str, body: list[int], truncated: bool) -> Segment | None:
        body_arr = np.asarray(body, dtype=np.int64)
        if modality == "image":
            rows, cols = self.image_grid
            if self.row_separators:
                body_arr = body_arr[body_arr != self.vocab.special("<row>")]
            low, high = self.vocab.range_of("image")
            if len(body_arr) != rows * cols or ((body_arr < low) | (body_arr >= high)).any():
                truncated = True
                body_arr = body_arr[(body_arr >= low) & (body_arr < high)]
                whole = (len(body_arr) // cols) * cols
                if whole == 0:
                    return None
                body_arr = body_arr[:whole]
            codes = self.vocab.to_local(body_arr)[2].reshape(-1, cols)
            return Segment("image", codes, truncated=truncated)
        if modality == "audio":
            num_books = self.num_audio_codebooks
            expected = self.audio_span_length() if self.audio_frames else None
            if expected is not None and len(body_arr) != expected:
                truncated = True
            if self.audio_layout == "coarse_first" and truncated:
                return None  # a cut coarse-first span lacks whole codebooks for every frame
            usable = (len(body_arr) // num_books) * num_books
            if self.audio_layout == "delay":
                usable = max(usable - num_books * (num_books - 1), 0)
                body_arr = body_arr[:usable + num_books * (num_books - 1)]
            else:
                body_arr = body_arr[:usable]
            if usable == 0:
                return None
            low, high = self.vocab.range_of("audio")
            content = body_arr if self.audio_layout != "delay" else body_arr[body_arr != self.vocab.pad_id]
            if ((content < low) | (content >= high)).any():
                return None
            return Segment("audio", self.unflatten_audio(body_arr), truncated=truncated)
        return None
