"""``init_from=<run dir>``: stage=instruct continues from an earlier run instead of pretraining a new model.

The earlier run is any run folder with a language model: a pretraining run of ours (``stage=all``), a pretrained
LLM aligned to our vocabulary (``stage=align``: the new rows merged into one plain HF model) or an earlier
instruction-tuned run. Every embedding row of that model means one code of that run's tokenizers, so the new run
takes the tokenizers from that folder (each checked against the fingerprint in its ``run.json``, and together
against the vocabulary its ``lm/`` was trained on) rather than from stage 0, and its saved config records the
tokenizer and model settings of that run. The model is copied to ``<run>/lm-pretrain``, where instruction tuning
starts from, so the first tuning step sees exactly the earlier run's weights.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from unimodal.errors import ConfigError, UnimodalError, VocabularyMismatch
from unimodal.run_folder import (
    CONFIG_FILE,
    LM_DIR,
    PRETRAINED_DIR,
    TOKENIZERS_DIR,
    VOCAB_FILE,
    build_vocab,
    load_run_tokenizers,
    read_run_info,
)
from unimodal.tokenizers.base import ModalityTokenizer
from unimodal.vocab import Vocabulary

SHAPE_KEYS = {"image_grid": "the image tokenizer's grid", "audio_frames": "data.sample_rate x data.audio_seconds",
              "video_grid": "the video tokenizer's grid"}
# What run.json records of the media (training/run.py media_shapes) that a run started from another takes over: the
# shapes checked above, and the image layout and AnyRes settings, which follow that run's tokenizers.
TAKEN_OVER = (*SHAPE_KEYS, "image_layout", "image_anyres")


@dataclass
class SourceRun:
    """The earlier run a ``stage=instruct`` run starts from: its folder, run.json, config and tokenizers."""

    folder: Path
    info: dict[str, Any]
    config: DictConfig
    tokenizers: dict[str, ModalityTokenizer]
    vocab: Vocabulary

    def prepared(self) -> dict[str, tuple[ModalityTokenizer, Path]]:
        """Each tokenizer with its folder, as stage 0 hands them on."""
        return {m: (tok, self.folder / TOKENIZERS_DIR / m) for m, tok in self.tokenizers.items()}


def read_source(cfg: DictConfig) -> SourceRun | None:
    """The run of ``init_from``, checked (None without ``init_from``): a one-line error names what is wrong."""
    if not cfg.get("init_from"):
        return None
    where = f"init_from={cfg.init_from}"
    if not cfg.stage.train_instruct:
        raise ConfigError(f"{where}: only stage=instruct continues from an earlier run; add stage=instruct "
                          f"(or drop init_from)")
    folder = Path(str(cfg.init_from))
    try:
        info = read_run_info(folder)
    except UnimodalError as err:
        raise UnimodalError(f"{where}: {err}") from None
    media = list(cfg.modality.media)
    if list(info["media"]) != media:
        raise ConfigError(f"{where}: that run holds text + {list(info['media'])}, but modality="
                          f"{cfg.modality.name} asks for text + {media}; add modality={info['modality']}")
    lm_dir = folder / LM_DIR
    if not (lm_dir / VOCAB_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise UnimodalError(f"{where}: no trained language model in {lm_dir} (did that run finish?)")
    try:  # each tokenizer against the fingerprint in run.json: one line naming both
        tokenizers = load_run_tokenizers(folder, info)
    except VocabularyMismatch as err:
        raise VocabularyMismatch(f"{where}: {err}; that run's tokenizers are not the ones its model was trained "
                                 f"with") from None
    vocab = build_vocab(tokenizers)
    vocab.check_same(Vocabulary.load(lm_dir / VOCAB_FILE), f"{where}: its model {lm_dir}")
    return SourceRun(folder, info, OmegaConf.load(folder / CONFIG_FILE), tokenizers, vocab)


def adopt_settings(cfg: DictConfig, source: SourceRun) -> None:
    """The earlier run's tokenizer and model settings replace this config's, so the run's saved config says what
    it trained with (its tokenizers and model come from that run, whatever tokenizer/* and model= say)."""
    try:
        cfg.tokenizer = OmegaConf.merge(cfg.tokenizer, source.config.tokenizer)
        cfg.model = OmegaConf.merge(cfg.model, source.config.model)
    except Exception as err:  # an older run's config whose keys the schema no longer has
        raise ConfigError(f"init_from={source.folder}: its {CONFIG_FILE} does not fit this version's schema "
                          f"({str(err).splitlines()[0]}); tune a run written by this version") from None
    print(f"[init] model and tokenizers from {source.folder} ("
          + ", ".join(f"{m} {t['kind']}" for m, t in source.info["tokenizers"].items())
          + f"; model {source.config.model.get('name')}); tokenizer/* and model= of this config are not used",
          flush=True)


def source_shapes(source: SourceRun) -> dict[str, Any]:
    """The media shapes that run trained on (chat data: images fitted to its tokenizer)."""
    return {key: source.info[key] for key in TAKEN_OVER if key in source.info}


def check_shapes(source: SourceRun, shapes: dict[str, Any]) -> None:
    """This run's media shapes (its data with that run's tokenizers) must be the ones that run trained on."""
    for key, what in SHAPE_KEYS.items():
        if key in source.info and json.dumps(shapes.get(key)) != json.dumps(source.info[key]):
            raise ConfigError(f"init_from={source.folder}: that run's {key} is {source.info[key]}, this run's "
                              f"data gives {shapes.get(key)} ({what}); use the data settings of that run")


def check_data_size(cfg: DictConfig, source: SourceRun) -> None:
    """Rendered data must come at the size and rate that run's tokenizers read."""
    image = source.tokenizers.get("image")
    if image is not None and getattr(image, "image_size", None) not in (None, int(cfg.data.image_size)):
        raise ConfigError(f"init_from={source.folder}: its image tokenizer reads {image.image_size}px images, "
                          f"data.image_size is {cfg.data.image_size}; set data.image_size={image.image_size}")
    audio = source.tokenizers.get("audio")
    if audio is not None and int(audio.sample_rate) != int(cfg.data.sample_rate):
        raise ConfigError(f"init_from={source.folder}: its audio tokenizer reads {audio.sample_rate} Hz, "
                          f"data.sample_rate is {cfg.data.sample_rate}; set data.sample_rate={audio.sample_rate}")


def start_from(source: SourceRun, run_dir: Path) -> Path:
    """Copy the earlier run's model to ``<run>/lm-pretrain`` (once: a resumed run keeps its copy)."""
    target = run_dir / PRETRAINED_DIR
    if (target / "config.json").is_file():
        return target
    partial = target.with_name(PRETRAINED_DIR + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source.folder / LM_DIR, partial)
    partial.rename(target)
    print(f"[init] tuning starts from {source.folder / LM_DIR} (copied to {target})", flush=True)
    return target
