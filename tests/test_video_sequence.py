"""The video span: <bov> frame <frame> frame ... <eov>, round trips, cut-off spans and constrained generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from unimodal.model.generate import SamplingConfig, generate_ids
from unimodal.model.lm import build_lm
from unimodal.sequence import Segment, SequenceCodec
from unimodal.vocab import Vocabulary

VOCAB = Vocabulary(40, {"image": (16, 1), "video": (12, 1)})
GRID = (3, 2, 2)


@pytest.fixture(scope="module")
def codec() -> SequenceCodec:
    return SequenceCodec(VOCAB, image_grid=(2, 2), video_grid=GRID)


def test_round_trip_and_separators(codec):
    codes = np.random.default_rng(0).integers(0, 12, GRID)
    encoded = codec.encode([Segment("text", [1, 2]), Segment("video", codes, loss=True)])
    frame = VOCAB.special("<frame>")
    body = encoded.ids[encoded.ids.tolist().index(VOCAB.special("<bov>")) + 1:-2]
    assert len(body) == 3 * 4 + 2 and body[4] == frame and body[9] == frame
    segments = codec.decode(encoded.ids)
    assert np.array_equal(segments[1].payload, codes) and not segments[1].truncated
    assert len(codec.span_plan("video")) == len(body)


def test_cut_off_span_keeps_whole_frames(codec):
    codes = np.arange(12).reshape(GRID) % 12
    ids = codec.encode([Segment("video", codes)], add_eos=False).ids
    cut = codec.decode(ids[:1 + 4 + 1 + 3])   # <bos>, <bov>, frame 0, <frame>, three codes of frame 1
    assert cut[0].truncated and np.array_equal(cut[0].payload, codes[:1])


def test_generated_clips_always_decode(codec):
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                            "context_length": 64, "dropout": 0.0})
    model = build_lm(cfg, VOCAB).eval()
    for trial, outputs in enumerate([["video"], ["text", "video"], ["video", "image"]]):
        sampling = SamplingConfig(temperature={"default": 1.5}, cfg_scale={"default": 2.0}, max_new_tokens=40)
        for ids in generate_ids(model, codec, [np.array([VOCAB.bos_id, 3, 4])] * 2, outputs, sampling, seed=trial):
            videos = [s for s in codec.decode(ids) if s.modality == "video"]
            assert len(videos) == 1 and videos[0].payload.shape == GRID and not videos[0].truncated
