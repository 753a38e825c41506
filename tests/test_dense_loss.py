"""trainer.compile's dense loss equals the masked one: same loss, same per-modality parts, same gradients."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from unimodal.training.dense_loss import dense_lm_loss
from unimodal.training.lm_module import masked_lm_loss


def _case(seed: int = 0):
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2, intermediate_size=32))
    ids = torch.randint(0, 64, (3, 10))
    loss_mask = torch.rand(3, 10) > 0.4
    attention = torch.ones_like(ids)
    attention[2, 7:] = 0  # one padded row
    loss_mask[2, 7:] = False
    modality = torch.randint(0, 4, (3, 10))
    return model, ids, loss_mask, attention, modality


def _check(compile: bool) -> None:
    model, ids, loss_mask, attention, modality = _case()
    want, want_parts = masked_lm_loss(model, ids, loss_mask, attention, modality)
    want_grads = torch.autograd.grad(want, list(model.parameters()))
    got, got_parts = dense_lm_loss(model, ids, loss_mask, attention, modality, compile=compile)
    got_grads = torch.autograd.grad(got, list(model.parameters()))
    assert abs(float(got) - float(want)) < 1e-5
    assert got_parts.keys() == want_parts.keys()
    assert all(abs(got_parts[k] - want_parts[k]) < 1e-5 for k in want_parts)
    assert all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got_grads, want_grads, strict=True))


def test_dense_loss_equals_masked_loss():
    _check(compile=False)


@pytest.mark.slow
def test_compiled_dense_loss_equals_masked_loss():
    _check(compile=True)


def test_target_weights_weigh_each_target_by_its_modality():
    model, ids, loss_mask, attention, modality = _case()
    table = torch.tensor([1.0, 4.0, 1.0, 0.5, 1.0])  # special, text, image, audio, video
    plain, parts = masked_lm_loss(model, ids, loss_mask, attention, modality)
    weighted, weighted_parts = masked_lm_loss(model, ids, loss_mask, attention, modality, target_weights=table)
    dense, _ = dense_lm_loss(model, ids, loss_mask, attention, modality, compile=False, target_weights=table)
    mask = loss_mask[:, 1:]
    counts = {code: int((modality[:, 1:][mask] == code).sum()) for code in range(4)}
    names = ["special", "text", "image", "audio"]
    want = sum(table[c] * counts[c] * parts[names[c]] for c in range(4) if counts[c]) / sum(
        table[c] * counts[c] for c in range(4))
    assert abs(float(weighted) - float(want)) < 1e-5 and abs(float(dense) - float(want)) < 1e-5
    assert weighted_parts == parts  # the per-modality parts stay plain means
    assert abs(float(plain) - float(weighted)) > 1e-4


def test_loss_weights_of_an_unknown_modality_are_refused():
    from unimodal.config import compose
    from unimodal.errors import ConfigError

    assert compose(["lm.loss_weights={text:4}"]).lm.loss_weights == {"text": 4.0}
    with pytest.raises(ConfigError, match="lm.loss_weights"):
        compose(["lm.loss_weights={txt:4}"])
