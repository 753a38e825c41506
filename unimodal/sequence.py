"""Segment lists <-> global id sequences, with loss masks and the modality of each position.

A sample is a list of :class:`Segment`. Text segments are runs of text ids; media segments are
spans wrapped in their opener and closer:

- image: ``<boi> h*w codes (with <row> after each row when row_separators) <eoi>``
- AnyRes image (codec option ``image_anyres_max_tiles``; payload an :class:`~unimodal.anyres.AnyResImage`):
  ``<boi> thumbnail <tile> tile(0,0) <tile> tile(0,1) <row> <tile> tile(1,0) <tile> tile(1,1) <eoi>``:
  the thumbnail's h*w codes, then each tile as ``<tile>`` and its h*w codes, row-major, with ``<row>``
  *between* tile rows. The grid is read back from the separators alone (rows = ``<row>`` count + 1,
  cols = tiles in the first row); the original pixel size is not in the tokens. A span whose thumbnail
  is followed directly by ``<eoi>`` is a plain square image, so fixed-grid payloads still fit.
- audio: ``<boa> K*T codes in the chosen layout <eoa>``
- video (codec option ``video_grid`` ``(t, h, w)``): ``<bov> frame <frame> frame ... <frame> frame <eov>``, each
  frame its ``h*w`` codes row-major, ``<frame>`` between frames

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

from unimodal.anyres import AnyResImage
from unimodal.vocab import CLOSERS, OPENERS, Vocabulary

LAYOUTS = ("flat", "delay", "coarse_first")
MODALITY_CODES = {"special": 0, "text": 1, "image": 2, "audio": 3, "video": 4}


@dataclass
class Segment:
    """One piece of a sample. ``payload``: text -> list of text ids; image -> ``[h, w]`` codes or an
    :class:`~unimodal.anyres.AnyResImage`; audio -> ``[K, T]`` codes. ``loss`` marks segments the model
    is trained to produce."""

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
    """Encodes and decodes samples for one vocabulary and fixed media shapes.

    ``image_grid`` is the code grid of one image (one AnyRes tile); ``image_anyres_max_tiles`` (None: off)
    turns on AnyRes image spans of at most that many tiles.
    """

    def __init__(self, vocab: Vocabulary, image_grid: tuple[int, int] | None = None,
                 audio_frames: int | None = None, audio_layout: str = "flat",
                 row_separators: bool = False, image_anyres_max_tiles: int | None = None,
                 video_grid: tuple[int, int, int] | None = None) -> None:
        if audio_layout not in LAYOUTS:
            raise ValueError(f"audio_layout must be one of {LAYOUTS}, got {audio_layout!r}")
        if image_anyres_max_tiles is not None:
            if int(image_anyres_max_tiles) < 1:
                raise ValueError(f"image_anyres_max_tiles must be at least 1 (or None for off), "
                                 f"got {image_anyres_max_tiles}")
            if row_separators:
                # <row> separates tile rows in AnyRes spans; inside tiles it would be ambiguous.
                raise ValueError("row_separators and image_anyres_max_tiles cannot both be on: AnyRes spans "
                                 "use <row> between tile rows")
            if not image_grid:
                raise ValueError("image_anyres_max_tiles needs image_grid (the code grid of one tile)")
        self.vocab = vocab
        self.image_grid = tuple(image_grid) if image_grid else None
        self.audio_frames = audio_frames
        self.audio_layout = audio_layout
        self.row_separators = row_separators
        self.image_anyres_max_tiles = None if image_anyres_max_tiles is None else int(image_anyres_max_tiles)
        self.video_grid = tuple(int(n) for n in video_grid) if video_grid else None
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
    @property
    def anyres(self) -> bool:
        return self.image_anyres_max_tiles is not None

    def span_plan(self, modality: str) -> SpanPlan:
        """The span body position by position. With AnyRes the image plan is the thumbnail only (the
        shortest span); the tiles after it follow separator rules that generation applies itself."""
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
        elif modality == "video":
            from unimodal.video_spans import video_span_pairs
            pairs = video_span_pairs(self)
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
        if segment.modality == "image" and isinstance(segment.payload, AnyResImage):
            return self._anyres_body(segment.payload)
        if segment.modality == "image":
            codes = np.asarray(segment.payload, dtype=np.int64)
            if self.anyres and codes.shape != self.image_grid:
                raise ValueError(f"image codes {codes.shape} do not match image_grid {self.image_grid}")
            ids = self.vocab.to_global("image", codes)
            if self.row_separators:
                row_id = np.full((ids.shape[0], 1), self.vocab.special("<row>"), dtype=np.int64)
                ids = np.concatenate([ids, row_id], axis=1)
            return ids.reshape(-1)
        if segment.modality == "audio":
            return self.flatten_audio(segment.payload)
        if segment.modality == "video":
            from unimodal.video_spans import video_body
            return video_body(self, segment.payload)
        raise ValueError(f"unknown segment modality {segment.modality!r}")

    def _anyres_body(self, payload: AnyResImage) -> np.ndarray:
        if not self.anyres:
            raise ValueError("an AnyRes image payload needs a codec with image_anyres_max_tiles set")
        if payload.thumbnail.shape != self.image_grid:
            raise ValueError(f"AnyRes tile codes {payload.thumbnail.shape} do not match image_grid {self.image_grid}")
        if payload.num_tiles > self.image_anyres_max_tiles:
            raise ValueError(f"AnyRes grid {payload.grid} has more than image_anyres_max_tiles="
                             f"{self.image_anyres_max_tiles} tiles")
        tile_id, row_id = self.vocab.special("<tile>"), self.vocab.special("<row>")
        parts = [self.vocab.to_global("image", payload.thumbnail).reshape(-1)]
        rows, cols = payload.grid
        for row in range(rows):
            if row:
                parts.append(np.array([row_id]))
            for col in range(cols):
                parts.append(np.array([tile_id]))
                parts.append(self.vocab.to_global("image", payload.tiles[row, col]).reshape(-1))
        return np.concatenate(parts).astype(np.int64)

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
        (trimmed to whole rows / frames; an AnyRes span to whole tile rows, or to its thumbnail as a plain
        image when no tile is complete); stray specials are dropped. AnyRes payloads come back with
        ``original_size=None``: decoding them gives the ``rows*T x cols*T`` canvas unless the caller
        passes the wanted size to :func:`unimodal.anyres.decode_anyres`."""
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
        if modality == "image" and self.anyres:
            return self._decode_anyres(body_arr, truncated)
        if modality == "image":
            return self._decode_grid(body_arr, truncated)
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
        if modality == "video":
            from unimodal.video_spans import decode_video_span
            return decode_video_span(self, body_arr, truncated)
        return None

    def _decode_anyres(self, body: np.ndarray, truncated: bool) -> Segment | None:
        """Thumbnail, then ``<tile>``-led tiles in ``<row>``-separated rows; keeps the largest whole-row
        prefix that forms a rectangle and flags anything dropped as truncated."""
        tile_len = self.image_grid[0] * self.image_grid[1]
        low, high = self.vocab.range_of("image", 0)
        tile_id, row_id = self.vocab.special("<tile>"), self.vocab.special("<row>")
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
            return self._decode_grid(thumbnail, truncated or len(thumbnail) != len(body))
        truncated = truncated or not clean or len(whole) != len(rows)
        codes = self.vocab.to_local(np.stack([np.stack(row) for row in whole]))[2]
        thumbnail = self.vocab.to_local(body[:tile_len])[2].reshape(self.image_grid)
        payload = AnyResImage(thumbnail, codes.reshape(len(whole), cols, *self.image_grid))
        return Segment("image", payload, truncated=truncated)

    def _decode_grid(self, body_arr: np.ndarray, truncated: bool) -> Segment | None:
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
