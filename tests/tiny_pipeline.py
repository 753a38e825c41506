"""A whole generation pipeline built in memory in about a second: a BPE text tokenizer, an untrained 16x16 image
tokenizer (4x4 grid, 16 codes; or ``image_levels`` residual levels of 8 codes each per cell, rvq), an untrained
EnCodec (2 codebooks of 16, hop 8) with random codebooks, and a one-layer Llama. Nothing is trained or downloaded;
what comes out is noise of the right shapes."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

WORDS = "a red green blue circle square triangle left right of the describe draw image sound colours swapped"
AUDIO_FRAMES = 6


def tiny_pipeline(seed: int = 0, media_positions: bool = True, audio_layout: str = "flat", image_levels: int = 1):
    from unimodal.model.lm import build_lm
    from unimodal.pipeline import Pipeline
    from unimodal.run_folder import build_vocab
    from unimodal.sequence import SequenceCodec
    from unimodal.tokenizers.audio import EncodecTokenizer
    from unimodal.tokenizers.image import GridImageTokenizer
    from unimodal.tokenizers.text import TextTokenizer

    torch.manual_seed(seed)
    words = WORDS.split()
    text = TextTokenizer.train([" ".join(words[i:] + words[:i]) for i in range(len(words))], vocab_size=300,
                               min_frequency=1)
    quantizer = ({"kind": "fsq", "levels": [4, 4]} if image_levels == 1 else
                 {"kind": "rvq", "num_quantizers": image_levels, "codebook_size": 8})
    image = GridImageTokenizer(image_size=16, block_channels=[8, 16, 16], norm_groups=4, latent_dim=2,
                               quantizer=quantizer).eval()
    audio = EncodecTokenizer(filters=4, ratios=[4, 2], dimension=8, n_residual_layers=1, lstm=0, num_codebooks=2,
                             codebook_size=16).eval()
    for name, buffer in audio.quantizer.named_buffers():  # k-means never ran: give the codebooks distinct codes
        if name.endswith(".embed"):
            buffer.normal_()
    tokenizers = {"text": text, "image": image, "audio": audio}
    vocab = build_vocab(tokenizers)
    model = build_lm(OmegaConf.create({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                                       "context_length": 384, "dropout": 0.0, "media_positions": media_positions}),
                     vocab).eval()
    codec = SequenceCodec(vocab, image_grid=image.grid_shape, audio_frames=AUDIO_FRAMES, audio_layout=audio_layout)
    info = {"media": ["image", "audio"], "image_grid": list(image.grid_shape), "audio_frames": AUDIO_FRAMES,
            "audio_layout": audio_layout}
    return Pipeline(Path("."), model, vocab, codec, tokenizers, info)


def save_tiny_run(pipe, run_dir: Path) -> Path:
    """``pipe`` as a run folder that ``unimodal.load`` and ``scripts/generate.py`` read (what training writes)."""
    import json

    from unimodal.model.lm import save_lm

    for modality, tokenizer in pipe.tokenizers.items():
        tokenizer.save(run_dir / "tokenizers" / modality)
    save_lm(pipe.model, run_dir / "lm")
    pipe.vocab.save(run_dir / "lm" / "vocab.json")
    info = {**pipe.info, "tokenizers": {m: {"fingerprint": t.fingerprint} for m, t in pipe.tokenizers.items()}}
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def save_tiny_clip(folder: Path, hidden_size: int = 16, image_size: int = 16, patch_size: int = 8,
                   seed: int = 0) -> Path:
    """A tiny CLIPVisionModel and its CLIPImageProcessor, written with ``save_pretrained`` (what ``encoder.path``
    reads), so no test needs a model hub."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
                              num_attention_heads=2, image_size=image_size, patch_size=patch_size)
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                       image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    return Path(folder)


def tiny_features_pipeline(clip_dir: Path, projector: str = "mlp", anyres_max_tiles: int = 0, seed: int = 0):
    """:func:`tiny_pipeline` reading input images as features: the tiny CLIP of ``clip_dir`` and a fresh projector."""
    from unimodal.model.vision import load_encoder
    from unimodal.model.vision_input import make_vision
    from unimodal.pipeline import Pipeline
    from unimodal.sequence import SequenceCodec

    base = tiny_pipeline(seed)
    options = {"kind": projector, "input_size": None, "num_queries": 3, "hidden_size": 16, "num_layers": 1,
               "num_heads": 2, "intermediate_size": 32, "dropout": 0.0}
    vision = make_vision(load_encoder(str(clip_dir)), OmegaConf.create(options), base.model.config.hidden_size,
                         anyres_max_tiles)
    base.model.vision_input = vision.eval()
    codec = SequenceCodec(base.vocab, image_grid=base.codec.image_grid, audio_frames=AUDIO_FRAMES,
                          feature_slots=vision.slots)
    info = {**base.info, "vision": {"input": "features", "projector": projector, **vision.layout()}}
    return Pipeline(Path("."), base.model, base.vocab, codec, base.tokenizers, info)
