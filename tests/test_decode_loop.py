"""The decode loop reads drawn ids back from the device only where the span constraints need them (never inside
a media span), computes media positions a step at a time, and gives the same greedy outputs as a plain loop that
reruns the whole sequence each step. (Seeded sampling keeps its draws: the exponential race is what
``torch.multinomial`` computes for one sample.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_fast_decode import CODEC, VOCAB, tiny_model
from unimodal.model.constraints import SpanState
from unimodal.model.generate import SamplingConfig, generate_ids
from unimodal.model.lm import DecodeEmbedder, embed_ids
from unimodal.sequence import SequenceCodec

pytestmark = pytest.mark.usefixtures("one_thread")


def _plain_greedy(model, codec, prompt, outputs, budget):
    """The reference: the whole sequence through the model every step, no cache, the state fed plain ints."""
    ids, state, new = list(prompt), SpanState(codec, outputs, budget, 1), []
    for _ in range(budget):
        with torch.no_grad():
            logits = model(inputs_embeds=embed_ids(model, torch.tensor([ids]))).logits[0, -1]
        allowed = state.allowed()
        mask = torch.zeros_like(logits, dtype=torch.bool)
        for low, high in [allowed] if isinstance(allowed, tuple) else allowed:
            mask[low:high] = True
        token = int(logits.masked_fill(~mask, float("-inf")).argmax())
        new.append(token)
        ids.append(token)
        state.advance(token)
        if state.done:
            break
    return new


@pytest.mark.parametrize("layout,anyres", [("delay", None), ("flat", 4)])
def test_greedy_outputs_equal_a_plain_loop(layout, anyres):
    codec = SequenceCodec(VOCAB, (3, 3), 4, layout, image_anyres_max_tiles=anyres)
    model = tiny_model(media_positions=True).double()   # fp64: a cache and a rerun agree far below any tie
    boi, image = VOCAB.special("<boi>"), VOCAB.range_of("image", 0)[0]
    prompts = [np.array([VOCAB.bos_id, 5, 7, 9]), np.array([VOCAB.bos_id, 2, boi, image, image + 3])]
    for outputs in (["text", "image", "audio"], ["image", "text"], ["audio"]):
        for fast in ("false", "true"):
            sampling = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=45, fast=fast)
            for prompt in prompts:
                got = generate_ids(model, codec, [prompt], outputs, sampling)[0].tolist()
                assert got == _plain_greedy(model, codec, prompt, outputs, 45), (outputs, fast, prompt)


def test_media_positions_per_step_equal_those_over_the_history():
    model = tiny_model(media_positions=True)
    rng = np.random.default_rng(0)
    boi, eoi = VOCAB.special("<boi>"), VOCAB.special("<eoi>")
    for _ in range(20):
        ids = torch.as_tensor(rng.integers(0, VOCAB.size, (3, 30)))
        ids[:, rng.integers(0, 30, 4)] = boi   # spans open (and close) anywhere, prompt or decode
        ids[:, rng.integers(0, 30, 2)] = eoi
        cut = int(rng.integers(1, 29))
        embed = DecodeEmbedder(model, ids[:, :cut])
        stepped = torch.cat([embed(ids[:, t:t + 1]) for t in range(cut, 30)], dim=1)
        torch.testing.assert_close(stepped, embed_ids(model, ids)[:, cut:], rtol=0, atol=0)


class _Reads:
    """Counts every way a tensor's value reaches Python: ``tolist``, ``item``, ``bool``, ``int``, ``float``."""

    NAMES = ("tolist", "item", "__bool__", "__int__", "__float__", "__index__")

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counted(original))

    def _counted(self, original):
        def counted(tensor, *args, **kwargs):
            self.count += 1
            return original(tensor, *args, **kwargs)
        return counted


def test_a_media_span_decodes_without_reading_ids_back(monkeypatch):
    """The static-cache step, constraints and sampler: one read of every drawn id at the end of an image, whatever
    the grid's length (CFG and sampling on; on a GPU, ``tests/test_fast_decode.py`` checks no sync at all)."""
    model = tiny_model(media_positions=True)
    sampling = SamplingConfig(temperature={"default": 1.0}, top_k={"image": 5}, top_p={"image": 0.9},
                              cfg_scale={"image": 3.0}, cfg_schedule={"image": "linear"}, max_new_tokens=80,
                              fast="true")
    counts = []
    for grid in ((2, 2), (6, 6)):
        codec = SequenceCodec(VOCAB, grid, 4, "flat")
        generate_ids(model, codec, [np.array([VOCAB.bos_id, 3])], ["image"], sampling)   # warm: masks, constants
        reads = _Reads(monkeypatch)
        ids = generate_ids(model, codec, [np.array([VOCAB.bos_id, 3]), np.array([VOCAB.bos_id, 4, 5])], ["image"],
                           sampling, seed=1)
        counts.append(reads.count)
        monkeypatch.undo()
        assert all(len(row) == grid[0] * grid[1] + 3 for row in ids)   # <boi> grid <eoi> <eos>
    assert counts[0] == counts[1] and counts[0] <= 3, counts   # 4 or 36 codes: the same few reads


def test_text_reads_each_step_it_must(monkeypatch):
    """A text output may end at any step, so there the loop does read each drawn id (and nothing more)."""
    model = tiny_model(media_positions=False)
    sampling = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=12, fast="true", min_text_tokens=12)
    generate_ids(model, CODEC, [np.array([VOCAB.bos_id, 3])], ["text"], sampling)
    reads = _Reads(monkeypatch)
    ids = generate_ids(model, CODEC, [np.array([VOCAB.bos_id, 3])], ["text"], sampling)[0]
    assert len(ids) == 12 and reads.count <= 3   # min_text_tokens: no exit to decide, so no per-step read
