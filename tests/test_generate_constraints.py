"""Constrained decoding: whatever an untrained model samples, every media span has its exact shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from unimodal.model.generate import SamplingConfig, generate_ids
from unimodal.model.lm import build_lm
from unimodal.sequence import LAYOUTS, SequenceCodec
from unimodal.vocab import Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = Vocabulary(40, {"image": (16, 1), "audio": (8, 2)})
GRID, FRAMES = (3, 3), 4


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                            "context_length": 128, "dropout": 0.0})
    return build_lm(cfg, VOCAB).eval()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_random_generations_always_decode(model, layout):
    codec = SequenceCodec(VOCAB, GRID, FRAMES, layout)
    rng = np.random.default_rng(0)
    choices = [["image"], ["audio"], ["text"], ["text", "image"], ["image", "audio"], ["audio", "text", "image"]]
    for trial in range(12):
        outputs = choices[trial % len(choices)]
        sampling = SamplingConfig(temperature={"default": float(rng.uniform(0.5, 2.0))},
                                  top_k={"default": int(rng.integers(0, 10))},
                                  top_p={"default": float(rng.uniform(0.5, 1.0))},
                                  cfg_scale={"default": float(rng.choice([1.0, 3.0]))},
                                  max_new_tokens=int(rng.integers(20, 60)))
        prompt = [VOCAB.bos_id, *rng.integers(0, 40, 3)]
        for ids in generate_ids(model, codec, [np.array(prompt)] * 2, outputs, sampling, seed=trial):
            assert len(ids) <= sampling.max_new_tokens
            for segment in codec.decode(ids):
                assert not segment.truncated
                if segment.modality == "image":
                    assert np.asarray(segment.payload).shape == GRID
                if segment.modality == "audio":
                    assert np.asarray(segment.payload).shape == (2, FRAMES)


def test_span_that_does_not_fit_is_not_opened(model):
    codec = SequenceCodec(VOCAB, GRID, FRAMES)
    # an image span needs 9 + 2 tokens and <eos> one more: a budget of 8 must end without opening it
    ids = generate_ids(model, codec, [np.array([VOCAB.bos_id])], ["image"], SamplingConfig(max_new_tokens=8))[0]
    assert ids.tolist() == [VOCAB.eos_id]


def test_greedy_is_deterministic(model):
    codec = SequenceCodec(VOCAB, GRID, FRAMES)
    sampling = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=20)
    first = generate_ids(model, codec, [np.array([VOCAB.bos_id, 3])], ["image"], sampling)
    again = generate_ids(model, codec, [np.array([VOCAB.bos_id, 3])], ["image"], sampling, seed=5)
    assert np.array_equal(first[0], again[0])


def test_batched_filters_match_row_by_row():
    from unimodal.model.sampling import filter_logits, filter_rows

    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(0))
    logits[1, 10:] = float("-inf")  # fewer allowed ids than top_k
    top_k, top_p = torch.tensor([0, 20, 3, 5]), torch.tensor([0.5, 1.0, 0.9, 1.0])
    batched = filter_rows(logits, top_k, top_p)
    for row in range(4):
        alone = filter_logits(logits[row], int(top_k[row]), float(top_p[row]))
        assert torch.equal(batched[row].isinf(), alone.isinf())
    assert batched[0].isfinite().sum() < 30 and batched[2].isfinite().sum() == 3
