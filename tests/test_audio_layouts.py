"""The three layouts of K codebooks in one stream: exact round trips (own ranges or one shared range), and
constrained decoding that never puts codebook k's id where codebook j belongs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from unimodal.model.generate import SamplingConfig, generate_ids
from unimodal.model.lm import build_lm
from unimodal.sequence import LAYOUTS, Segment, SequenceCodec
from unimodal.vocab import Vocabulary

BOOKS, CODES, FRAMES = 3, 5, 4


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(LAYOUTS), st.booleans(), st.integers(1, 5), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_flatten_unflatten_exact_in_whole_sequences(layout, separate, books, frames, seed):
    vocab = Vocabulary(12, {"audio": (CODES, books)}, separate_codebooks=separate)
    codec = SequenceCodec(vocab, None, frames, layout)
    codes = np.random.default_rng(seed).integers(0, CODES, (books, frames))
    assert np.array_equal(codec.unflatten_audio(codec.flatten_audio(codes)), codes)
    ids = codec.encode([Segment("text", [1, 2]), Segment("audio", codes)]).ids
    decoded = [s for s in codec.decode(ids) if s.modality == "audio"]
    assert len(decoded) == 1 and np.array_equal(np.asarray(decoded[0].payload), codes)


def expected_books(codec: SequenceCodec) -> np.ndarray:
    """Codebook index at every position of an audio span (-1 where the delay layout pads)."""
    marker = codec.flatten_audio(np.zeros((BOOKS, FRAMES), np.int64))
    where = {int(g): k for k, g in enumerate(codec.vocab.to_global("audio", np.zeros(BOOKS, np.int64),
                                                                       np.arange(BOOKS)))}
    return np.array([where.get(int(i), -1) for i in marker])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                            "context_length": 128, "dropout": 0.0})
    return build_lm(cfg, Vocabulary(30, {"audio": (CODES, BOOKS)})).eval()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_constrained_decoding_keeps_every_codebook_in_place(model, layout, one_thread):
    vocab = Vocabulary(30, {"audio": (CODES, BOOKS)})
    codec = SequenceCodec(vocab, None, FRAMES, layout)
    wanted = expected_books(codec)
    boa, eoa = vocab.special("<boa>"), vocab.special("<eoa>")
    spans = 0
    for trial in range(6):
        # High temperature, no top-k: an unconstrained sampler would put ids of every range everywhere.
        sampling = SamplingConfig(temperature={"default": 3.0}, max_new_tokens=40)
        for ids in generate_ids(model, codec, [np.array([vocab.bos_id, 3, 4])] * 3, ["audio"], sampling, seed=trial):
            ids = np.asarray(ids)
            for start in np.nonzero(ids == boa)[0]:
                body = ids[start + 1:start + 1 + len(wanted)]
                assert len(body) == len(wanted) and ids[start + 1 + len(wanted)] == eoa
                _, books, _ = vocab.to_local(body)
                assert np.array_equal(np.where(wanted >= 0, books, -1), wanted)
                assert (body[wanted < 0] == vocab.pad_id).all()
                spans += 1
    assert spans >= 6
