"""Segment lists <-> global id sequences, with loss masks and the modality of each position.

A sample is a list of :class:`Segment`. Text segments are runs of text ids; media segments are spans wrapped in
their opener and closer: ``<boi> image <eoi>``, ``<boa> audio <eoa>``, ``<bov> video <eov>``. What goes between
them (an image grid, AnyRes tiles, the K-codes-per-position layouts, video frames) is :mod:`unimodal.spans`'s; this
module dispatches to it by modality and codec options:

- image: ``image_grid`` ``(h, w)``, optional ``row_separators``; an rvq image's K residual levels per cell in
  ``image_layout`` (``flat``, ``delay`` or ``coarse_first``, as audio's codebooks; video frames use it too);
  AnyRes with ``image_anyres_max_tiles`` and optionally ``image_anyres_grids`` (a payload
  :class:`~unimodal.tokenizers.anyres.AnyResImage`; a span whose thumbnail is followed directly by ``<eoi>`` is a
  plain square image, so fixed-grid payloads still fit); ``image_tiles`` fixes the grid that generation writes
- audio: ``audio_frames`` of ``[K, T]`` codes in ``audio_layout``
- video: ``video_grid`` ``(t, h, w)``
- an image the LM reads as features (``feature_slots`` set, a :class:`~unimodal.feature_spans.FeatureImage` payload,
  a segment without loss): :func:`~unimodal.feature_spans.feature_body`'s slots; the image goes into
  :attr:`Encoded.images` for the encoder. As a target (loss) it is written as its tokens.

:meth:`SequenceCodec.span_plan` says, for each position of a span, which ids it may hold: the generation
constraints use exactly that, so every generated span decodes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unimodal import spans
from unimodal.feature_spans import FeatureImage, feature_body
from unimodal.spans import LAYOUTS
from unimodal.tokenizers.anyres import AnyResImage
from unimodal.tokenizers.anyres_settings import AnyResSettings
from unimodal.vocab import CLOSERS, OPENERS, Vocabulary

MODALITY_CODES = {"special": 0, "text": 1, "image": 2, "audio": 3, "video": 4}


@dataclass
class Segment:
    """One piece of a sample. ``payload``: text -> list of text ids; image -> ``[h, w]`` codes or an
    :class:`~unimodal.tokenizers.anyres.AnyResImage`; audio -> ``[K, T]`` codes. ``loss`` marks segments the model
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
    images: list[FeatureImage] = field(default_factory=list)   # images read as features, in the order of their spans

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
    turns on AnyRes image spans of at most that many tiles, in the grids ``image_anyres_grids`` lists (None:
    any); ``image_tiles`` = (rows, cols) makes every generated image that grid (see :meth:`with_image_tiles`).
    ``feature_slots`` (None: images are read as tokens) is the number of feature positions per crop of an image
    read as features.
    """

    def __init__(self, vocab: Vocabulary, image_grid: tuple[int, int] | None = None,
                 audio_frames: int | None = None, audio_layout: str = "flat",
                 row_separators: bool = False, image_anyres_max_tiles: int | None = None,
                 video_grid: tuple[int, int, int] | None = None, image_layout: str = "flat",
                 image_anyres_grids: list[list[int]] | None = None,
                 image_tiles: tuple[int, int] | None = None, feature_slots: int | None = None) -> None:
        for key, layout in (("audio_layout", audio_layout), ("image_layout", image_layout)):
            if layout not in LAYOUTS:
                raise ValueError(f"{key} must be one of {LAYOUTS}, got {layout!r}")
        self.anyres_settings: AnyResSettings | None = None
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
            self.anyres_settings = AnyResSettings.create(int(image_anyres_max_tiles), image_anyres_grids)
        if row_separators and "image" in vocab.ranges and vocab.ranges["image"].num_codebooks > 1:
            raise ValueError("row_separators need one code per image cell; this vocabulary has "
                             f"{vocab.ranges['image'].num_codebooks} image levels")
        self.vocab = vocab
        self.image_grid = tuple(image_grid) if image_grid else None
        self.audio_frames = audio_frames
        self.audio_layout = audio_layout
        self.image_layout = image_layout
        self.row_separators = row_separators
        self.image_anyres_max_tiles = None if image_anyres_max_tiles is None else int(image_anyres_max_tiles)
        self.video_grid = tuple(int(n) for n in video_grid) if video_grid else None
        self.image_tiles: tuple[int, int] | None = None
        if image_tiles is not None:
            self.image_tiles = self._checked_tiles(image_tiles)
        self.feature_slots = int(feature_slots) if feature_slots else None
        self._closer_of = {vocab.special(CLOSERS[m]): m for m in vocab.media}
        self._opener_of = {vocab.special(OPENERS[m]): m for m in vocab.media}

    @property
    def num_audio_codebooks(self) -> int:
        return self.vocab.ranges["audio"].num_codebooks

    @property
    def anyres(self) -> bool:
        return self.anyres_settings is not None

    def _checked_tiles(self, tiles: tuple[int, int]) -> tuple[int, int]:
        tiles = (int(tiles[0]), int(tiles[1]))
        if self.anyres_settings is None:
            raise ValueError(f"a {tiles[0]}x{tiles[1]} tile grid needs AnyRes (image_anyres_max_tiles)")
        if tiles not in self.anyres_settings.grids:
            raise ValueError(f"tile grid {tiles} is not one this codec allows: {list(self.anyres_settings.grids)}")
        return tiles

    def with_image_tiles(self, tiles: tuple[int, int] | None) -> SequenceCodec:
        """A copy whose generated images are exactly ``tiles`` = (rows, cols) AnyRes tiles: the span plan is then
        the whole fixed span, so the constrained decoder holds to that grid (None: the model chooses)."""
        twin = copy.copy(self)
        twin.image_tiles = None if tiles is None else self._checked_tiles(tiles)
        return twin

    # --- audio layouts -------------------------------------------------------------------
    def flatten_audio(self, codes: np.ndarray) -> np.ndarray:
        """``[K, T]`` local codes -> 1-D global ids in the configured layout."""
        return spans.stack_body(self.vocab, "audio", codes, self.audio_layout)

    def unflatten_audio(self, ids: np.ndarray, frames: int | None = None) -> np.ndarray:
        """Inverse of :meth:`flatten_audio`; gives back the exact ``[K, T]`` local codes."""
        return spans.stack_codes(self.vocab, ids, self.audio_layout, self.num_audio_codebooks, frames)

    def audio_span_length(self, frames: int | None = None) -> int:
        frames = frames or self.audio_frames
        if frames is None:
            raise ValueError("audio_frames is not set for this codec")
        return spans.stack_span_length(self.audio_layout, self.num_audio_codebooks, frames)

    # --- constraints ---------------------------------------------------------------------
    def span_plan(self, modality: str) -> SpanPlan:
        """The span body position by position. With AnyRes the image plan is the thumbnail only (the
        shortest span; the tiles after it follow separator rules that generation applies itself), unless
        ``image_tiles`` fixes the grid: then it is the whole span."""
        if modality == "image" and self.image_tiles is not None:
            pairs = spans.anyres_pairs(self.vocab, self._image_grid(), self.image_layout, self.image_tiles)
        elif modality == "image":
            pairs = spans.image_pairs(self.vocab, self._image_grid(), self.image_layout, self.row_separators)
        elif modality == "audio":
            pairs = spans.audio_pairs(self.vocab, self.audio_layout, self.audio_frames)
        elif modality == "video":
            pairs = spans.video_pairs(self.vocab, self._video_grid(), self.image_layout)
        else:
            raise ValueError(f"no span plan for modality {modality!r}")
        arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return SpanPlan(modality, arr[:, 0], arr[:, 1])

    def tile_plan(self) -> SpanPlan:
        """One AnyRes tile's body (the thumbnail's too), position by position."""
        arr = np.asarray(spans.image_pairs(self.vocab, self._image_grid(), self.image_layout, False), dtype=np.int64)
        return SpanPlan("image", arr[:, 0], arr[:, 1])

    def _image_grid(self) -> tuple[int, int]:
        if self.image_grid is None:
            raise ValueError("image_grid is not set for this codec")
        return self.image_grid

    def _video_grid(self) -> tuple[int, int, int]:
        if self.video_grid is None:
            raise ValueError("video_grid is not set for this codec")
        return self.video_grid

    # --- whole samples -------------------------------------------------------------------
    def reads_features(self, segment: Segment) -> bool:
        """Whether ``segment`` becomes feature slots: an input image (no loss) of a codec with ``feature_slots``."""
        if segment.modality != "image" or segment.loss or not self.feature_slots:
            return False
        if not isinstance(segment.payload, FeatureImage):
            raise ValueError("this run reads input images as features: give the image's pixels (a FeatureImage), "
                             "not its codes")
        return True

    def _body(self, segment: Segment) -> np.ndarray:
        if isinstance(segment.payload, FeatureImage):  # written (or read, in a tokens run) as its tokens
            if segment.payload.codes is None:
                raise ValueError("an image given as pixels only cannot be a target or a token span; give its codes")
            segment = Segment(segment.modality, segment.payload.codes, segment.role, segment.loss)
        if segment.modality == "text":
            ids = np.asarray(segment.payload, dtype=np.int64).reshape(-1)
            if ids.size and (ids.min() < 0 or ids.max() >= self.vocab.text_size):
                raise ValueError(f"text ids must lie in [0, {self.vocab.text_size})")
            return ids
        if segment.modality == "image" and isinstance(segment.payload, AnyResImage):
            settings = self.anyres_settings
            if settings is None:
                raise ValueError("an AnyRes image payload needs a codec with image_anyres_max_tiles set")
            if segment.payload.num_tiles > settings.max_tiles:
                raise ValueError(f"AnyRes grid {segment.payload.grid} has more than image_anyres_max_tiles="
                                 f"{settings.max_tiles} tiles")
            if segment.payload.grid not in settings.grids:
                raise ValueError(f"AnyRes grid {segment.payload.grid} is not among image_anyres_grids "
                                 f"{list(settings.grids)}")
            return spans.anyres_body(self.vocab, segment.payload, self.image_grid, self.image_layout)
        if segment.modality == "image":
            codes = np.asarray(segment.payload, dtype=np.int64)
            if self.anyres and codes.shape[:2] != self.image_grid:
                raise ValueError(f"image codes {codes.shape} do not match image_grid {self.image_grid}")
            return spans.image_body(self.vocab, codes, self.image_layout, self.row_separators)
        if segment.modality == "audio":
            return self.flatten_audio(segment.payload)
        if segment.modality == "video":
            return spans.video_body(self.vocab, segment.payload, self.video_grid, self.image_layout)
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
        images: list[FeatureImage] = []

        def put(chunk: np.ndarray, loss: bool, kind: str) -> None:
            ids.append(chunk)
            mask.append(np.full(len(chunk), loss))
            kinds.append(np.full(len(chunk), MODALITY_CODES[kind], dtype=np.int8))

        if add_bos:
            put(np.array([self.vocab.bos_id]), False, "special")
        for segment in segments:
            if self.reads_features(segment):
                images.append(segment.payload)
                body = feature_body(self.vocab, segment.payload, self.feature_slots)
            else:
                body = self._body(segment)
            if segment.modality == "text":
                put(body, segment.loss, "text")
                continue
            put(np.array([self.vocab.special(OPENERS[segment.modality])]), False, "special")
            put(body, segment.loss, segment.modality)
            put(np.array([self.vocab.special(CLOSERS[segment.modality])]), segment.loss, "special")
        if add_eos:
            put(np.array([self.vocab.eos_id]), bool(segments) and segments[-1].loss, "special")
        return Encoded(np.concatenate(ids), np.concatenate(mask), np.concatenate(kinds), images)

    def decode(self, ids: Any) -> list[Segment]:
        """Ids -> segments. A span cut off before its closer is kept with ``truncated=True``
        (trimmed to whole rows / frames; an AnyRes span to whole tile rows, or to its thumbnail as a plain
        image when no tile is complete); stray specials are dropped. AnyRes payloads come back with
        ``original_size=None``: decoding them gives the ``rows*T x cols*T`` canvas unless the caller
        passes the wanted size to :func:`unimodal.tokenizers.anyres.decode_anyres`."""
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
            if token < 0:  # a feature slot of an input image: no content to give back
                i += 1
                continue
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
            decoded = spans.decode_anyres(self.vocab, body_arr, self.image_grid, self.image_layout, truncated)
        elif modality == "image":
            decoded = spans.decode_image(self.vocab, body_arr, self._image_grid(), self.image_layout,
                                         self.row_separators, truncated)
        elif modality == "audio":
            decoded = spans.decode_audio(self.vocab, body_arr, self.audio_layout, self.audio_frames, truncated)
        elif modality == "video":
            decoded = spans.decode_video(self.vocab, body_arr, self._video_grid(), self.image_layout, truncated)
        else:
            decoded = None
        return None if decoded is None else Segment(modality, decoded[0], truncated=decoded[1])
