"""A whole generation pipeline built in memory in about a second: a BPE text tokenizer, an untrained 16x16 image
tokenizer (4x4 grid, 16 codes), an untrained EnCodec (2 codebooks of 16, hop 8) with random codebooks, and a
one-layer Llama. Nothing is trained or downloaded; what comes out is noise of the right shapes."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

WORDS = "a red green blue circle square triangle left right of the describe draw image sound colours swapped"
AUDIO_FRAMES = 6


def tiny_pipeline(seed: int = 0, media_positions: bool = True, audio_layout: str = "flat"):
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
    image = GridImageTokenizer(image_size=16, block_channels=[8, 16, 16], norm_groups=4, latent_dim=2,
                               quantizer={"kind": "fsq", "levels": [4, 4]}).eval()
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
