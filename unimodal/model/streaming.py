"""Audio decoded while the language model is still emitting its frames.

Each new id of an audio span is pushed in; whenever enough whole frames are known (which depends on the
layout: ``flat`` completes a frame every K ids, ``delay`` K-1 steps later, ``coarse_first`` only once the last
codebook starts), the frames are decoded and their samples handed out. The codec's decoder is a stack of
non-causal convolutions, so a frame's samples depend on a few frames either side (its receptive field):
each chunk is decoded with ``context_frames`` known frames on its left and held back until ``context_frames``
more are known on its right. With a context at least the receptive field the chunks join into exactly the
one-shot decode (up to float rounding); a decoder with an LSTM (``lstm > 0``) sees further and the joins are
then only close.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unimodal.sequence import SequenceCodec
from unimodal.vocab import CLOSERS, OPENERS


def frames_known(codec: SequenceCodec, length: int) -> int:
    """Whole frames (all K codebooks) among the first ``length`` ids of an audio span body."""
    books, frames = codec.num_audio_codebooks, int(codec.audio_frames)
    if codec.audio_layout == "flat":
        known = length // books
    elif codec.audio_layout == "delay":  # frame t's last code (codebook K-1) sits at step t + K - 1
        known = length // books - (books - 1)
    else:  # coarse_first: frame t is whole once the last codebook's run reaches it
        known = length - (books - 1) * frames
    return max(0, min(known, frames))


def known_codes(codec: SequenceCodec, body: list[int], frames: int) -> np.ndarray:
    """The local ``[K, frames]`` codes of the first ``frames`` whole frames of a (partial) span body."""
    books, total = codec.num_audio_codebooks, int(codec.audio_frames)
    ids = np.asarray(body, dtype=np.int64)
    if codec.audio_layout == "flat":
        grid = ids[:frames * books].reshape(frames, books).T
    elif codec.audio_layout == "delay":
        steps = ids[:(frames + books - 1) * books].reshape(-1, books)
        grid = np.stack([steps[k:k + frames, k] for k in range(books)])
    else:
        grid = np.stack([ids[k * total:k * total + frames] for k in range(books)])
    return codec.vocab.to_local(grid)[2]


class AudioStream:
    """Feed generated ids one by one; :meth:`push` returns the waveform chunks that became final."""

    def __init__(self, codec: SequenceCodec, tokenizer: Any, chunk_frames: int = 4, context_frames: int = 8) -> None:
        if chunk_frames < 1 or context_frames < 0:
            raise ValueError(f"chunk_frames must be >= 1 and context_frames >= 0, got {chunk_frames}, {context_frames}")
        self.codec, self.tokenizer = codec, tokenizer
        self.chunk_frames, self.context_frames = chunk_frames, context_frames
        self.hop = int(tokenizer.hop_length)
        self.opener = codec.vocab.special(OPENERS["audio"])
        self.closer = codec.vocab.special(CLOSERS["audio"])
        self.body: list[int] | None = None  # the open span's ids, None outside a span
        self.sent = 0                       # frames of the open span already handed out

    def push(self, token: int) -> list[np.ndarray]:
        if self.body is None:
            if token == self.opener:
                self.body, self.sent = [], 0
            return []
        if token == self.closer:
            chunks = self._emit(closed=True)
            self.body = None
            return chunks
        self.body.append(int(token))
        return self._emit(closed=False)

    def _emit(self, closed: bool) -> list[np.ndarray]:
        known = frames_known(self.codec, len(self.body))
        end = known if closed else known - self.context_frames
        if end <= self.sent or (not closed and end - self.sent < self.chunk_frames):
            return []
        start = max(0, self.sent - self.context_frames)
        codes = torch.as_tensor(known_codes(self.codec, self.body, known)[:, start:])[None]
        with torch.no_grad():
            wave = self.tokenizer.decode(codes)[0].float().cpu().numpy()
        chunk = wave[(self.sent - start) * self.hop:(end - start) * self.hop]
        self.sent = end
        return [chunk]
