"""Constrained sampling over the shared vocabulary.

One small state machine per sequence decides which ids are allowed at each step: text spans take
text ids (or the next span's opener / ``<eos>``), a media span takes exactly its plan (an image's
grid, an audio layout's codebook ranges), then its closer. An AnyRes image span (codec option
``image_anyres_max_tiles``) takes its thumbnail, then at each tile boundary only ``<tile>``, ``<row>`` or
``<eoi>`` where they keep the grid rectangular and within ``max_tiles``, and exactly one tile of codes
after each ``<tile>`` (:class:`AnyResCursor`). Every output therefore decodes, whatever the sampler
draws. The budget check happens before a span opens, so ``max_new_tokens`` never cuts a media span: a
span that would not fit ends the sequence instead (an AnyRes span only grows while its shortest
completion still fits).

Classifier-free guidance runs each prompt beside its unconditional twin (``<bos>`` alone, what
training saw when the condition was dropped), batched, with a scale per output modality.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import LlamaForCausalLM

from unimodal.model.fast_decode import fast_decoder
from unimodal.model.lm import embed_ids
from unimodal.sequence import SequenceCodec
from unimodal.vocab import CLOSERS, OPENERS

MEDIA = ("image", "audio", "video")
# transformers 5.x renamed `past_key_values` to `cache`; accept either release line.
_CACHE_ARG = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


@dataclass
class SamplingConfig:
    """Per-modality sampling knobs; a modality missing from a dict uses the ``default`` entry."""

    temperature: dict[str, float] = field(default_factory=lambda: {"default": 1.0, "text": 0.7})
    top_k: dict[str, int] = field(default_factory=lambda: {"default": 0})
    top_p: dict[str, float] = field(default_factory=lambda: {"default": 1.0})
    cfg_scale: dict[str, float] = field(default_factory=lambda: {"default": 1.0})
    repetition_penalty: float = 1.0
    max_new_tokens: int = 256
    fast: str = "auto"  # static KV cache + compiled step: auto (on CUDA), true, false (unimodal/model/fast_decode.py)

    def get(self, name: str, modality: str) -> float:
        table = getattr(self, name)
        return table.get(modality, table.get("default", 1.0 if name != "top_k" else 0))


class AnyResCursor:
    """Where an AnyRes image span is after its thumbnail: inside a tile, or at a tile boundary.

    The grammar is ``thumbnail [TILE+ (<row> TILE+)*] <eoi>`` with ``TILE = <tile> codes{h*w}``, every row
    as long as the first and at most ``max_tiles`` tiles in all (see :mod:`unimodal.sequence`).
    """

    def __init__(self, codec: SequenceCodec) -> None:
        rows, cols = codec.image_grid
        self.tile_len = rows * cols
        self.max_tiles = int(codec.image_anyres_max_tiles)
        self.tile_id = codec.vocab.special("<tile>")
        self.row_id = codec.vocab.special("<row>")
        self.closer = codec.vocab.special(CLOSERS["image"])
        self.codes = codec.vocab.range_of("image", 0)
        self.codes_left = 0     # codes still due in the current tile
        self.in_row = 0         # tiles in the current row so far
        self.cols: int | None = None  # fixed by the first <row>
        self.total = 0

    def options(self) -> list[tuple[int, int]]:
        """At a tile boundary: ``(token, shortest completion of the span counting that token)``."""
        tile_cost = 1 + self.tile_len
        if self.cols is None:  # first row: any length; <row> only if a second equal row still fits
            options = [(self.closer, 1)]  # right after the thumbnail too: a plain square image
            if self.total < self.max_tiles:
                options.append((self.tile_id, tile_cost + 1))
            if self.in_row and 2 * self.in_row <= self.max_tiles:
                options.append((self.row_id, 1 + self.in_row * tile_cost + 1))
            return options
        if self.in_row < self.cols:  # a later row must be filled to the first row's length
            return [(self.tile_id, (self.cols - self.in_row) * tile_cost + 1)]
        options = [(self.closer, 1)]
        if self.total + self.cols <= self.max_tiles:
            options.append((self.row_id, 1 + self.cols * tile_cost + 1))
        return options

    def advance(self, token: int) -> None:
        if self.codes_left:
            self.codes_left -= 1
        elif token == self.tile_id:
            self.codes_left, self.in_row, self.total = self.tile_len, self.in_row + 1, self.total + 1
        elif token == self.row_id:
            self.cols = self.in_row if self.cols is None else self.cols
            self.in_row = 0


class SpanState:
    """Where one sequence is in its list of outputs, and what it may emit next."""

    def __init__(self, codec: SequenceCodec, outputs: list[str], budget: int) -> None:
        self.codec = codec
        self.vocab = codec.vocab
        self.outputs = list(outputs)
        self.budget = budget
        self.index = 0          # which output we are producing
        self.position = 0       # position inside the current media span body
        self.in_span = False
        self.done = False
        self.emitted = 0
        self.plans = {m: codec.span_plan(m) for m in set(outputs) if m in MEDIA}
        self.anyres: AnyResCursor | None = None  # set while inside an AnyRes image span

    @property
    def modality(self) -> str:
        if self.done or self.index >= len(self.outputs):
            return "text"
        return self.outputs[self.index]

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
        return [(0, self.vocab.text_size), (exit_id, exit_id + 1)]

    def _anyres_allowed(self) -> tuple[int, int] | list[tuple[int, int]]:
        cursor = self.anyres
        if cursor.codes_left:
            return cursor.codes
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
            return
        if token >= self.vocab.text_size:  # text left through the next span's opener
            self.index += 1
            self._open(self.outputs[self.index])

    def _open(self, modality: str) -> None:
        self.in_span, self.position = True, 0
        self.anyres = AnyResCursor(self.codec) if modality == "image" and self.codec.anyres else None


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) > top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


@torch.no_grad()
def generate_ids(model: torch.nn.Module, codec: SequenceCodec, prompts: list[np.ndarray], outputs: list[str],
                 sampling: SamplingConfig, seed: int = 0) -> list[np.ndarray]:
    """Generate after each prompt (global ids, ``<bos>`` included). Returns the new ids per prompt."""
    vocab = codec.vocab
    device = next(model.parameters()).device
    batch = len(prompts)
    states = [SpanState(codec, outputs, sampling.max_new_tokens) for _ in prompts]
    guided = any(sampling.get("cfg_scale", m) != 1.0 for m in outputs)
    rows = [np.asarray(p, dtype=np.int64) for p in prompts]
    if guided:
        rows += [np.array([vocab.bos_id], dtype=np.int64)] * batch
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), vocab.pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):  # left padding keeps every row's next position aligned
        ids[i, width - len(row):] = torch.from_numpy(row)
        attention[i, width - len(row):] = 1
    ids, attention = ids.to(device), attention.to(device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    generated: list[list[int]] = [[] for _ in range(batch)]
    past = None
    decoder = fast_decoder(model, sampling.fast, sampling.max_new_tokens)  # None: the eager HF forward below
    step_input = ids
    history = ids  # the whole sequence so far: media-span positions of the new token depend on it
    for _ in range(sampling.max_new_tokens):
        if decoder is not None:  # static KV cache, compiled step on CUDA (unimodal/model/fast_decode.py)
            logits = decoder.prefill(ids, attention) if step_input is ids else decoder.step(step_input[:, 0])
        else:
            position_ids = (attention.cumsum(-1) - 1).clamp(min=0)[:, -step_input.shape[1]:]
            out = model(inputs_embeds=embed_ids(model, step_input, history), attention_mask=attention,
                        position_ids=position_ids,
                        use_cache=True, **{_CACHE_ARG: past})
            past = getattr(out, _CACHE_ARG)
            logits = out.logits[:, -1].float()
        if guided:
            cond, uncond = logits[:batch], logits[batch:]
            scales = torch.tensor([sampling.get("cfg_scale", s.modality) for s in states],
                                  device=logits.device)[:, None]
            logits = uncond + scales * (cond - uncond)
        next_tokens = torch.empty(batch, dtype=torch.long)
        for row, state in enumerate(states):
            allowed = state.allowed()
            spans = [allowed] if isinstance(allowed, tuple) else allowed
            if len(spans) == 1 and spans[0][1] - spans[0][0] == 1:
                next_tokens[row] = spans[0][0]
                continue
            mask = torch.full((vocab.size,), float("-inf"))
            for low, high in spans:
                mask[low:high] = 0.0
            row_logits = logits[row].cpu() + mask
            modality = state.modality
            penalty = sampling.repetition_penalty
            if modality == "text" and penalty != 1.0 and generated[row]:
                seen = torch.tensor(sorted(set(generated[row])))
                values = row_logits[seen]
                row_logits[seen] = torch.where(values > 0, values / penalty, values * penalty)
            temperature = sampling.get("temperature", modality)
            if temperature <= 0:
                next_tokens[row] = int(row_logits.argmax())
                continue
            row_logits = _filter_logits(row_logits / temperature, int(sampling.get("top_k", modality)),
                                        float(sampling.get("top_p", modality)))
            probs = row_logits.softmax(-1)
            next_tokens[row] = int(torch.multinomial(probs, 1, generator=generator))
        for row, state in enumerate(states):
            token = int(next_tokens[row])
            if not state.done:
                generated[row].append(token)
            state.advance(token)
        if all(state.done for state in states):
            break
        step = next_tokens if not guided else torch.cat([next_tokens, next_tokens])
        step_input = step[:, None].to(device)
        history = torch.cat([history, step_input], dim=1)
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
    return [np.asarray(g, dtype=np.int64) for g in generated]
