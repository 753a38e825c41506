"""The run-folder contract: what ``scripts/train.py`` writes into a run and how everything else reads it back.

A run folder holds ``run.json`` (modalities, tasks, media shapes, audio layout, tokenizer fingerprints),
``vocab.json``, ``config.yaml``, ``tokenizers/<modality>/`` (a copy of each tokenizer), ``lm/`` (the language model
with its own ``vocab.json``), ``lm-pretrain/`` (the pretrained model, once instruction tuning has started),
``checkpoints/``, ``instruct/`` and the logs. From the tokenizers come the vocabulary (:func:`build_vocab`) and, with
the shapes of ``run.json``, the one :class:`~unimodal.sequence.SequenceCodec` of a run (:func:`make_codec`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unimodal.errors import UnimodalError, VocabularyMismatch
from unimodal.sequence import SequenceCodec
from unimodal.tokenizers.base import ModalityTokenizer, TokenizerLoadError, load_tokenizer
from unimodal.vocab import Vocabulary

RUN_FILE = "run.json"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.yaml"
TOKENIZERS_DIR = "tokenizers"
LM_DIR = "lm"
PRETRAINED_DIR = "lm-pretrain"   # stage=instruct keeps the pretrained model here; the tuned one replaces lm/


def build_vocab(tokenizers: dict[str, ModalityTokenizer]) -> Vocabulary:
    """The shared vocabulary of a run's tokenizers: text, then each medium's codebooks."""
    media = {m: (t.codebook_size, t.num_codebooks) for m, t in tokenizers.items() if m != "text"}
    return Vocabulary(tokenizers["text"].codebook_size, media)


def make_codec(info: dict[str, Any], vocab: Vocabulary) -> SequenceCodec:
    """The sequence codec of a run: its vocabulary and the media shapes and audio layout ``run.json`` records."""
    return SequenceCodec(vocab, image_grid=info.get("image_grid"), audio_frames=info.get("audio_frames"),
                         audio_layout=info.get("audio_layout", "flat"), video_grid=info.get("video_grid"))


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run folder; a one-line error when the folder or the file is missing."""
    if not run_dir.is_dir():
        raise UnimodalError(f"run directory {run_dir} does not exist (train one with scripts/train.py)")
    if not (run_dir / RUN_FILE).is_file():
        raise UnimodalError(f"{run_dir} is not a training run: {RUN_FILE} is missing")
    return json.loads((run_dir / RUN_FILE).read_text())


def load_run_tokenizers(run_dir: Path, info: dict[str, Any]) -> dict[str, ModalityTokenizer]:
    """The run's own tokenizers (text and every medium), each checked against the fingerprint in ``run.json``."""
    tokenizers: dict[str, ModalityTokenizer] = {}
    for modality in ["text", *info["media"]]:
        folder = run_dir / TOKENIZERS_DIR / modality
        try:
            tokenizers[modality] = load_tokenizer(folder)
        except TokenizerLoadError as err:
            raise UnimodalError(str(err)) from None
        expected = info["tokenizers"][modality]["fingerprint"]
        if tokenizers[modality].fingerprint != expected:
            raise VocabularyMismatch(
                f"{folder}: {modality} tokenizer has fingerprint {tokenizers[modality].fingerprint} but the "
                f"checkpoint was built with {expected}")
    return tokenizers
