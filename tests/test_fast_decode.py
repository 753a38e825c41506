"""The static-cache decode path gives the same greedy tokens as the eager HF forward (CPU; CUDA compiled: gpu)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from unimodal.errors import ConfigError
from unimodal.model.fast_decode import StaticDecoder, fast_decoder
from unimodal.model.generate import _CACHE_ARG, SamplingConfig, generate_ids
from unimodal.model.lm import build_lm, embed_ids
from unimodal.sequence import SequenceCodec
from unimodal.vocab import Vocabulary

VOCAB = Vocabulary(40, {"image": (16, 1), "audio": (8, 2)})
CODEC = SequenceCodec(VOCAB, (3, 3), 4, "delay")


def tiny_model(media_positions: bool = True, kv_heads: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64,
                            "context_length": 128, "dropout": 0.0, "media_positions": media_positions})
    model = build_lm(cfg, VOCAB)
    if kv_heads != 4:  # grouped-query attention, as a Llama checkpoint from stage=align may have
        from transformers import LlamaForCausalLM

        model.config.num_key_value_heads = kv_heads
        grouped = LlamaForCausalLM(model.config)
        if hasattr(model, "media_positions"):
            grouped.media_positions = model.media_positions
        model = grouped
    return model.eval()


def prompts() -> list[np.ndarray]:
    """Rows of different lengths, so that the batch is left-padded; one starts inside an image span."""
    boi, image = VOCAB.special("<boi>"), VOCAB.range_of("image", 0)[0]
    return [np.array([VOCAB.bos_id, 5, 7, 9, 11]), np.array([VOCAB.bos_id, 3]),
            np.array([VOCAB.bos_id, 2, boi, image, image + 3])]


def greedy(fast: str, cfg_scale: float = 3.0, max_new_tokens: int = 40) -> SamplingConfig:
    return SamplingConfig(temperature={"default": 0.0}, cfg_scale={"default": cfg_scale},
                          max_new_tokens=max_new_tokens, fast=fast)


@pytest.mark.parametrize("media_positions,kv_heads,cfg_scale", [(True, 4, 3.0), (False, 2, 1.0)])
def test_static_cache_matches_eager_greedy(one_thread, media_positions, kv_heads, cfg_scale):
    model = tiny_model(media_positions, kv_heads)
    for outputs in (["text", "image", "audio"], ["image"]):
        eager = generate_ids(model, CODEC, prompts(), outputs, greedy("false", cfg_scale))
        fast = generate_ids(model, CODEC, prompts(), outputs, greedy("true", cfg_scale))
        assert [e.tolist() for e in eager] == [f.tolist() for f in fast]
        assert min(len(e) for e in eager) >= 12  # each row decodes at least a whole image span, not just <eos>


def test_static_cache_logits_match_eager(one_thread):
    """Closer than token equality: every step's logits agree to float32 rounding."""
    model = tiny_model()
    ids = torch.tensor([[VOCAB.pad_id, VOCAB.pad_id, VOCAB.bos_id, 4], [VOCAB.bos_id, 6, 1, 2]])
    attention = (ids != VOCAB.pad_id).long()
    decoder = fast_decoder(model, "true", 10)
    assert isinstance(decoder, StaticDecoder) and not decoder.compiled
    fast = decoder.prefill(ids, attention)
    past, history, step = None, ids, ids
    for _ in range(6):
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -step.shape[1]:]
        eager = model(inputs_embeds=embed_ids(model, step, history), attention_mask=attention, position_ids=positions,
                      use_cache=True, **{_CACHE_ARG: past})
        past = getattr(eager, _CACHE_ARG)
        torch.testing.assert_close(fast, eager.logits[:, -1].float(), atol=1e-5, rtol=1e-5)
        step = eager.logits[:, -1].argmax(-1, keepdim=True)
        fast = decoder.step(step[:, 0])
        history = torch.cat([history, step], 1)
        attention = torch.cat([attention, torch.ones_like(step)], 1)


def test_auto_is_eager_on_cpu_and_bad_values_name_the_key():
    model = tiny_model()
    assert fast_decoder(model, "auto", 10) is None
    assert fast_decoder(model, False, 10) is None
    with pytest.raises(ConfigError, match="fast="):
        fast_decoder(model, "fastest", 10)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_cuda_path_matches_eager_greedy():
    model = tiny_model().cuda()
    assert fast_decoder(model, "auto", 40).compiled
    for outputs in (["text", "image", "audio"], ["image"]):
        eager = generate_ids(model, CODEC, prompts(), outputs, greedy("false"))
        fast = generate_ids(model, CODEC, prompts(), outputs, greedy("auto"))
        again = generate_ids(model, CODEC, prompts(), outputs, greedy("auto"))  # replays the captured graph
        assert [e.tolist() for e in eager] == [f.tolist() for f in fast] == [a.tolist() for a in again]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_image_span_never_waits_for_the_device():
    """CUDA's sync debug mode warns at every wait for the device: an image of 4 codes and one of 36 wait equally
    often (the prompt's copy, the one read at the end), with CFG on a linear ramp and top-k/top-p sampling."""
    import warnings

    model = tiny_model().cuda()
    sampling = SamplingConfig(temperature={"default": 1.0}, top_k={"image": 5}, top_p={"image": 0.9},
                              cfg_scale={"image": 3.0}, cfg_schedule={"image": "linear"}, max_new_tokens=60)
    prompt = [np.array([VOCAB.bos_id, 3])]
    waits = []
    for grid in ((2, 2), (6, 6)):
        codec = SequenceCodec(VOCAB, grid, 4, "flat")
        generate_ids(model, codec, prompt, ["image"], sampling)   # compile and capture first
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                ids = generate_ids(model, codec, prompt, ["image"], sampling, seed=1)[0]
            finally:
                torch.cuda.set_sync_debug_mode("default")
        assert len(ids) == grid[0] * grid[1] + 3
        waits.append(sum("synchroniz" in str(w.message) for w in caught))
    assert waits[0] == waits[1] <= 6, waits
