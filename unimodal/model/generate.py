"""The generation loop: prompts in, constrained new ids out, one step at a time.

Three parts, each swappable on its own:

- :class:`~unimodal.model.constraints.SpanState`: which ids each row may emit next (every output decodes)
- :class:`~unimodal.model.sampling.Sampler`: guidance, penalties, temperature, top-k/top-p
- a *decoder* (:class:`EagerDecoder` here): the only code that calls the model. ``prefill(ids, attention)``
  runs the left-padded prompts, ``step(tokens)`` one new token per row; both return the last position's
  logits ``[rows, vocab]``. A faster decoder (a static KV cache, a compiled step) is a drop-in replacement.

Classifier-free guidance runs each prompt beside its unconditional twin (``<bos>`` alone by default, what
training saw when the condition was dropped), batched as extra rows that follow the same tokens.
:func:`iter_generate` yields each step's ids, so callers can stream (decode audio while the LM still emits
frames); :func:`generate_ids` collects them.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from transformers import LlamaForCausalLM

from unimodal.model.constraints import MEDIA, AnyResCursor, SpanState
from unimodal.model.fast_decode import fast_decoder
from unimodal.model.lm import DecodeEmbedder, embed_ids
from unimodal.model.sampling import Sampler, SamplingConfig, filter_logits
from unimodal.sequence import SequenceCodec

__all__ = ["MEDIA", "AnyResCursor", "Decoder", "EagerDecoder", "SamplingConfig", "SpanState", "collect_ids",
           "filter_logits", "generate_ids", "iter_generate", "left_pad"]

# transformers 5.x renamed `past_key_values` to `cache`; accept either release line.
_CACHE_ARG = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


class Decoder(Protocol):
    def prefill(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor: ...

    def step(self, tokens: torch.Tensor) -> torch.Tensor: ...


class EagerDecoder:
    """Plain ``model(...)`` calls with transformers' dynamic cache: any device, easy to debug."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.past = None
        self.attention: torch.Tensor | None = None
        self.embed: DecodeEmbedder | None = None

    def _forward(self, embeds: torch.Tensor) -> torch.Tensor:
        position_ids = (self.attention.cumsum(-1) - 1).clamp(min=0)[:, -embeds.shape[1]:]
        out = self.model(inputs_embeds=embeds, attention_mask=self.attention, position_ids=position_ids,
                         use_cache=True, **{_CACHE_ARG: self.past})
        self.past = getattr(out, _CACHE_ARG)
        return out.logits[:, -1]

    def prefill(self, ids: torch.Tensor, attention: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        self.past = None
        ids, self.attention = ids.to(self.device), attention.to(self.device)
        self.embed = DecodeEmbedder(self.model, ids)
        return self._forward(embed_ids(self.model, ids, images=images))

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        new = tokens.to(self.device)[:, None]
        self.attention = torch.cat([self.attention, torch.ones_like(new)], dim=1)
        return self._forward(self.embed(new))


def left_pad(rows: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids -> ``(ids, attention)`` ``[len(rows), longest]``, padded on the left so that every row's
    next position lines up."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.as_tensor(np.asarray(row, dtype=np.int64))
        attention[i, width - len(row):] = 1
    return ids, attention


@torch.no_grad()
def iter_generate(model: torch.nn.Module, codec: SequenceCodec, prompts: list[np.ndarray], outputs: list[str],
                  sampling: SamplingConfig, seed: int = 0, uncond_prompt: np.ndarray | None = None,
                  decoder: Decoder | None = None, read_every: int | None = None,
                  images: torch.Tensor | None = None) -> Iterator[list[int | None]]:
    """Generate after each prompt (global ids, ``<bos>`` included), yielding every step's new id per row
    (``None`` for a row that has already ended). Rows end at ``<eos>`` or after ``max_new_tokens``. ``images``: the
    processed pixels of every image the prompts read as features, prompt after prompt.

    The drawn ids stay on the device until the span constraints need one of them (``SpanState.choice_matters``:
    a text token, which may be the exit, or an AnyRes tile boundary) or the generation ends: a media span
    decodes with no host sync at all, and its steps are yielded together once read. ``read_every`` reads (and
    yields) at least that often, for callers that stream."""
    vocab = codec.vocab
    batch = len(prompts)
    states = [SpanState(codec, outputs, sampling.max_new_tokens, sampling.min_text_tokens) for _ in prompts]
    guided = sampling.guided(outputs)
    rows = [np.asarray(p, dtype=np.int64) for p in prompts]
    if guided:
        twin = np.array([vocab.bos_id] if uncond_prompt is None else uncond_prompt, dtype=np.int64)
        rows += [twin] * batch
    decoder = decoder or fast_decoder(model, sampling.fast, sampling.max_new_tokens) or EagerDecoder(model)
    logits = decoder.prefill(*left_pad(rows, vocab.pad_id), **({} if images is None else {"images": images}))
    sampler = Sampler(sampling, vocab.size, seed)
    unread: list[tuple[torch.Tensor, list[bool]]] = []   # drawn ids not read back yet, and which rows had ended
    for index in range(sampling.max_new_tokens):
        allowed = [state.allowed() for state in states]
        spans = [(a,) if isinstance(a, tuple) else tuple(a) for a in allowed]
        tokens = sampler(logits[:batch], logits[batch:] if guided else None, states, spans)
        unread.append((tokens, [state.done for state in states]))
        last = index + 1 == sampling.max_new_tokens
        if any(state.choice_matters(a) for state, a in zip(states, allowed, strict=True)):
            drawn = yield from _read(unread)   # one sync for every step since the last read
        else:   # any id of the one allowed interval moves each state alike: its lowest stands in
            drawn = [span[0][0] for span in spans]
        for state, token in zip(states, drawn, strict=True):
            state.advance(token)
        if all(state.done for state in states) or last:
            yield from _read(unread)
            return
        if read_every and len(unread) >= read_every:
            yield from _read(unread)
        logits = decoder.step(torch.cat([tokens, tokens]) if guided else tokens)


def _read(unread: list[tuple[torch.Tensor, list[bool]]]) -> Iterator[list[int | None]]:
    """Read the unread steps back in one transfer, yield them in order, and return the last one's ids."""
    if not unread:
        return []
    values = torch.stack([tokens for tokens, _ in unread]).tolist()
    for row_ids, (_, ended) in zip(values, unread, strict=True):
        yield [None if done else token for token, done in zip(row_ids, ended, strict=True)]
    unread.clear()
    return values[-1]


def generate_ids(model: torch.nn.Module, codec: SequenceCodec, prompts: list[np.ndarray], outputs: list[str],
                 sampling: SamplingConfig, seed: int = 0, uncond_prompt: np.ndarray | None = None,
                 decoder: Decoder | None = None, images: torch.Tensor | None = None) -> list[np.ndarray]:
    """Generate after each prompt (global ids, ``<bos>`` included). Returns the new ids per prompt."""
    steps = iter_generate(model, codec, prompts, outputs, sampling, seed, uncond_prompt, decoder, images)
    return collect_ids(steps, len(prompts))


def collect_ids(steps: Iterator[list[int | None]], rows: int) -> list[np.ndarray]:
    """The steps of :func:`iter_generate` -> each row's new ids."""
    generated: list[list[int]] = [[] for _ in range(rows)]
    for step in steps:
        for row, token in enumerate(step):
            if token is not None:
                generated[row].append(token)
    return [np.asarray(g, dtype=np.int64) for g in generated]
