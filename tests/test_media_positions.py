"""The index-in-media-span embedding: positions, cached decoding, training gradients, save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from safetensors import safe_open
from transformers import LlamaForCausalLM

from unimodal.model.generate import _CACHE_ARG
from unimodal.model.lm import MEDIA_POSITIONS_FILE, build_lm, embed_ids, load_lm, save_lm
from unimodal.sequence import Segment, SequenceCodec
from unimodal.training.lm_module import masked_lm_loss
from unimodal.vocab import Vocabulary

VOCAB = Vocabulary(40, {"image": (16, 1), "audio": (8, 2)})
CODEC = SequenceCodec(VOCAB, (2, 3), 3, "flat")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                            "context_length": 64, "dropout": 0.0, "media_positions": True})
    return build_lm(cfg, VOCAB).eval()


def _sequence() -> torch.Tensor:
    image = np.arange(6).reshape(2, 3)
    audio = np.arange(6).reshape(2, 3) % 8
    encoded = CODEC.encode([Segment("text", np.array([5, 6, 7])), Segment("image", image),
                            Segment("audio", audio), Segment("text", np.array([8]))])
    return torch.from_numpy(encoded.ids)[None]


def test_positions_count_inside_each_span_and_restart(model):
    ids = _sequence()
    positions = model.media_positions.positions(ids)[0].tolist()
    # <bos> a b c <boi> 6 codes <eoi> <boa> 6 codes <eoa> d <eos>
    assert positions == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0]
    tile = VOCAB.special("<tile>")
    code = VOCAB.range_of("image")[0]
    anyres = torch.tensor([[VOCAB.special("<boi>"), code, code, tile, code, code, tile, code]])
    assert model.media_positions.positions(anyres)[0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


def test_cached_decoding_sees_the_same_inputs_as_a_full_forward(model):
    ids = _sequence()
    with torch.no_grad():
        full = model(inputs_embeds=embed_ids(model, ids)).logits[0]
        past, steps = None, []
        for t in range(ids.shape[1]):
            out = model(inputs_embeds=embed_ids(model, ids[:, t:t + 1], ids[:, :t + 1]), use_cache=True,
                        **{_CACHE_ARG: past})
            past = getattr(out, _CACHE_ARG)
            steps.append(out.logits[0, -1])
    torch.testing.assert_close(torch.stack(steps), full, atol=1e-5, rtol=1e-5)


def test_training_updates_span_rows_not_the_outside_row(model):
    ids = _sequence()
    model.zero_grad()
    loss, _ = masked_lm_loss(model, ids, torch.ones_like(ids, dtype=torch.bool))
    loss.backward()
    grad = model.media_positions.embed.weight.grad
    assert grad[0].abs().sum() == 0  # index 0 (outside spans) stays a zero vector
    assert grad[1:7].abs().sum(dim=1).min() > 0
    model.zero_grad()


def test_saved_folder_is_a_plain_llama_plus_the_table(model, tmp_path):
    save_lm(model, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        assert not any(key.startswith("media_positions") for key in handle.keys())
    assert (tmp_path / MEDIA_POSITIONS_FILE).is_file()
    plain = LlamaForCausalLM.from_pretrained(tmp_path)
    assert not hasattr(plain, "media_positions")
    loaded = load_lm(tmp_path, VOCAB).eval()
    ids = _sequence()
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs_embeds=embed_ids(loaded, ids)).logits,
                                   model(inputs_embeds=embed_ids(model, ids)).logits)
