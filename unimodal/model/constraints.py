"""Which ids each sequence may emit next: one small state machine over the requested outputs.

Text spans take text ids (or the next span's opener / ``<eos>``); a media span takes exactly its plan
(:meth:`~unimodal.sequence.SequenceCodec.span_plan`: an image's grid, each residual level's or audio codebook's
range where the layout puts it, any later media's fixed positions), then its closer. An AnyRes image span (codec
option ``image_anyres_max_tiles``) takes its thumbnail, then at each tile boundary only ``<tile>``, ``<row>`` or
``<eoi>`` where they keep the grid rectangular and one the codec allows, and exactly one tile body after each
``<tile>`` (:class:`AnyResCursor`); with ``image_tiles`` set (a requested size) the whole span is one fixed plan.
Every output therefore decodes, whatever the sampler draws. The budget check happens before a span opens, so
``max_new_tokens`` never cuts a media span: a span that would not fit ends the sequence instead (an AnyRes span
only grows while its shortest completion still fits).

A new media kind (video) needs only its ``span_plan`` in :mod:`unimodal.sequence` and its opener/closer in
:mod:`unimodal.vocab`: a span whose every position has a fixed id range (frames with separators) is a plan.
"""

from __future__ import annotations

from unimodal.sequence import SequenceCodec
from unimodal.vocab import CLOSERS, OPENERS

MEDIA = ("image", "audio", "video")


class AnyResCursor:
    """Where an AnyRes image span is after its thumbnail: inside a tile, or at a tile boundary.

    The grammar is ``thumbnail [TILE+ (<row> TILE+)*] <eoi>`` with ``TILE = <tile> body`` (one tile's plan,
    :meth:`~unimodal.sequence.SequenceCodec.tile_plan`), every row as long as the first, and the finished grid
    one the codec allows (at most ``max_tiles`` tiles, in its ``grids``); see :mod:`unimodal.spans`. A thumbnail
    followed directly by ``<eoi>`` is a plain square image, always allowed: the shortest way to close.
    """

    def __init__(self, codec: SequenceCodec) -> None:
        self.tile = codec.tile_plan()
        self.tile_cost = 1 + len(self.tile)   # <tile> and its body
        self.grids = codec.anyres_settings.grids
        self.tile_id = codec.vocab.special("<tile>")
        self.row_id = codec.vocab.special("<row>")
        self.closer = codec.vocab.special(CLOSERS["image"])
        self.codes_left = 0     # positions of the current tile's body still due (0: at a tile boundary)
        self.in_row = 0         # tiles in the current row so far
        self.rows_done = 0      # rows ended by <row>
        self.cols: int | None = None  # fixed by the first <row>

    def tile_allowed(self) -> tuple[int, int]:
        """Inside a tile: the ids its next position may hold."""
        index = len(self.tile) - self.codes_left
        return int(self.tile.low[index]), int(self.tile.high[index])

    def _shortest(self, rows_done: int, in_row: int, cols: int | None) -> int | None:
        """Fewest tokens from a tile boundary in this state to ``<eoi>``, over the grids still reachable."""
        costs = [(c - in_row) * self.tile_cost + (r - rows_done - 1) * (1 + c * self.tile_cost) + 1
                 for r, c in self.grids
                 if r > rows_done and c >= max(in_row, 1) and (cols is None or c == cols)]
        return min(costs) if costs else None

    def options(self) -> list[tuple[int, int]]:
        """At a tile boundary: ``(token, shortest completion of the span counting that token)``."""
        row_full = self.in_row >= 1 and (self.cols is None or self.in_row == self.cols)
        options = []
        if (self.rows_done == 0 and self.in_row == 0) or (row_full and (self.rows_done + 1, self.in_row) in self.grids):
            options.append((self.closer, 1))
        if self.cols is None or self.in_row < self.cols:
            after = self._shortest(self.rows_done, self.in_row + 1, self.cols)
            if after is not None:
                options.append((self.tile_id, self.tile_cost + after))
        if row_full:
            after = self._shortest(self.rows_done + 1, 0, self.in_row)
            if after is not None:
                options.append((self.row_id, 1 + after))
        return options

    def advance(self, token: int) -> None:
        if self.codes_left:
            self.codes_left -= 1
        elif token == self.tile_id:
            self.codes_left, self.in_row = len(self.tile), self.in_row + 1
        elif token == self.row_id:
            self.cols = self.in_row if self.cols is None else self.cols
            self.rows_done, self.in_row = self.rows_done + 1, 0


class SpanState:
    """Where one sequence is in its list of outputs, and what it may emit next."""

    def __init__(self, codec: SequenceCodec, outputs: list[str], budget: int, min_text_tokens: int = 0) -> None:
        unknown = [m for m in outputs if m != "text" and m not in MEDIA]
        if unknown:
            raise ValueError(f"unknown output modalities {unknown}; known: text, {', '.join(MEDIA)}")
        self.codec = codec
        self.vocab = codec.vocab
        self.outputs = list(outputs)
        self.budget = budget
        self.index = 0          # which output we are producing
        self.position = 0       # position inside the current media span body
        self.in_span = False
        self.done = False
        self.emitted = 0
        self.min_text_tokens = min_text_tokens  # a requested text output says something before it ends
        self.text_run = 0       # text tokens of the current text output
        self.plans = {m: codec.span_plan(m) for m in set(outputs) if m in MEDIA}
        self.anyres: AnyResCursor | None = None  # set while inside an AnyRes image span

    @property
    def modality(self) -> str:
        if self.done or self.index >= len(self.outputs):
            return "text"
        return self.outputs[self.index]

    @property
    def span_progress(self) -> float:
        """How far into the current media span body (0 at its first code, towards 1 at its last): what a
        guidance schedule reads."""
        if not self.in_span or self.done:
            return 0.0
        length = len(self.plans[self.modality])
        return min(self.position, length - 1) / max(length - 1, 1)

    def _fits(self, index: int) -> bool:
        """Room for the media spans from ``index`` on (opener + body + closer each) and ``<eos>``."""
        need = 1 + sum(len(self.plans[m]) + 2 for m in self.outputs[index:] if m in MEDIA)
        return self.emitted + need <= self.budget

    def allowed(self) -> tuple[int, int] | list[tuple[int, int]]:
        """Allowed ids as one [low, high) interval or a list of them."""
        if self.done:
            return (self.vocab.pad_id, self.vocab.pad_id + 1)
        if self.index >= len(self.outputs):
            return (self.vocab.eos_id, self.vocab.eos_id + 1)
        modality = self.outputs[self.index]
        if modality in MEDIA:
            if not self.in_span:
                token = self.vocab.special(OPENERS[modality]) if self._fits(self.index) else self.vocab.eos_id
                return (token, token + 1)
            plan = self.plans[modality]
            if self.position < len(plan):
                return (int(plan.low[self.position]), int(plan.high[self.position]))
            if self.anyres is not None:
                return self._anyres_allowed()
            closer = self.vocab.special(CLOSERS[modality])
            return (closer, closer + 1)
        # text: text ids, or move on (next span's opener, or <eos> after the last output)
        nxt = self.outputs[self.index + 1] if self.index + 1 < len(self.outputs) else None
        if nxt in MEDIA and self._fits(self.index + 1):
            exit_id, exit_cost = self.vocab.special(OPENERS[nxt]), self._reserve() + 1
        else:
            exit_id, exit_cost = self.vocab.eos_id, 1
        if self.budget - self.emitted <= exit_cost:
            return (exit_id, exit_id + 1)
        if self.text_run < self.min_text_tokens:
            return (0, self.vocab.text_size)
        return [(0, self.vocab.text_size), (exit_id, exit_id + 1)]

    def choice_matters(self, allowed: tuple[int, int] | list[tuple[int, int]] | None = None) -> bool:
        """Whether the next :meth:`advance` depends on which allowed id is drawn: only where ``allowed`` is a
        choice between intervals (more text or the exit; tile, row or closer at an AnyRes boundary). Inside one
        interval (a grid position's codes, text before ``min_text_tokens``) every id moves the state alike, so a
        decode loop need not read the drawn id back from the device to go on."""
        allowed = self.allowed() if allowed is None else allowed
        return isinstance(allowed, list) and len(allowed) > 1

    def _anyres_allowed(self) -> tuple[int, int] | list[tuple[int, int]]:
        cursor = self.anyres
        if cursor.codes_left:
            return cursor.tile_allowed()
        # every later span (at its shortest) and <eos> must still fit after this span's shortest completion
        room = self.budget - self.emitted - self._reserve() - 1
        # the option that got us here was checked the same way, so at least one always fits
        return [(token, token + 1) for token, cost in cursor.options() if cost <= room]

    def _reserve(self) -> int:
        return sum(len(self.plans[m]) + 2 for m in self.outputs[self.index + 1:] if m in MEDIA)

    def advance(self, token: int) -> None:
        if self.done:
            return
        self.emitted += 1
        if token == self.vocab.eos_id:
            self.done = True
            return
        if self.index >= len(self.outputs):
            self.done = True
            return
        modality = self.outputs[self.index]
        if modality in MEDIA:
            if not self.in_span:
                self._open(modality)
            elif self.position < len(self.plans[modality]):
                self.position += 1
            elif self.anyres is not None and token != self.anyres.closer:
                self.anyres.advance(token)
            else:  # closer
                self.in_span, self.anyres = False, None
                self.index += 1
                self.text_run = 0
            return
        if token >= self.vocab.text_size:  # text left through the next span's opener
            self.index += 1
            self.text_run = 0
            self._open(self.outputs[self.index])
        else:
            self.text_run += 1

    def _open(self, modality: str) -> None:
        self.in_span, self.position = True, 0
        free_grid = modality == "image" and self.codec.anyres and self.codec.image_tiles is None
        self.anyres = AnyResCursor(self.codec) if free_grid else None
