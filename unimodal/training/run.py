"""The stages of a run, config-driven: stage 0 (tokenizers), the token shards, stage 1 (the language model) and
instruction tuning; what ``scripts/train.py`` and ``scripts/make_shards.py`` run."""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from unimodal.data.shards import TokenShard
from unimodal.data.sources import Samples, check_source, data_fingerprint, load_samples
from unimodal.errors import ConfigError, UnimodalError
from unimodal.run_folder import CONFIG_FILE, RUN_FILE, TOKENIZERS_DIR, VOCAB_FILE, build_vocab
from unimodal.tokenizers.anyres_settings import AnyResSettings
from unimodal.tokenizers.base import (
    ModalityTokenizer,
    constructor_options,
    hash_json,
    load_tokenizer,
    registered_kind,
)
from unimodal.training import distributed
from unimodal.training.accelerator import trainer_kwargs
from unimodal.training.launch import run_dir_for
from unimodal.training.shards_run import prepare_shards
from unimodal.vocab import Vocabulary

TOKENIZER_SAMPLES = 4000   # cap on the synthetic scenes a media tokenizer trains on (rendered up front)
VIDEO_TOKENIZER_SAMPLES = 1000   # and on clips (9 frames of 32x32 RGB: 110 MB as float)


def _say(message: str) -> None:
    distributed.say(message)   # rank 0 only


# --- tokenizers --------------------------------------------------------------------------
def tokenizer_options(modality: str, tok_cfg: Any) -> dict[str, Any]:
    """Constructor kwargs from a tokenizer config group (training budget and layout live elsewhere)."""
    options = OmegaConf.to_container(tok_cfg, resolve=True)
    for key in ("kind", "train", "layout"):
        options.pop(key, None)
    return options


def build_tokenizer(modality: str, tok_cfg: Any) -> ModalityTokenizer:
    """A fresh (untrained) tokenizer of the registered ``kind`` for ``modality``, built from its config."""
    cls = registered_kind(tok_cfg.kind)
    if cls is None or cls.modality != modality:
        raise ConfigError(f"tokenizer.{modality}.kind={tok_cfg.kind!r} is not an available {modality} tokenizer")
    return cls(**constructor_options(cls, tokenizer_options(modality, tok_cfg)))


# Tokenizer keys added after tokenizers were first saved, with the defaults that keep those tokenizers' names.
NAMELESS_DEFAULTS = {"dead_code_fraction": None, "causal": False, "norm": "weight_norm"}


def tokenizer_name(modality: str, tok_cfg: Any, data_fp: str) -> str:
    """``<modality>-<kind>-<hash>``: the hash covers the keys this kind uses, its training budget and the
    data, so keys of other kinds (the schema holds them all) and defaults left off never rename it."""
    settings = OmegaConf.to_container(tok_cfg, resolve=True)
    for keys in (settings, settings.get("image") or {}):  # framewise video holds the image config too
        keys.pop("layout", None)   # how the LM lays codes out, not the tokenizer
        keys.pop("anyres", None)   # what it then encodes: data_fp covers it
    settings.pop("channels", None)  # always data.channels, which data_fp covers
    cls = registered_kind(tok_cfg.kind)
    if cls is not None:
        kept = constructor_options(cls, settings)
        settings = {k: v for k, v in settings.items() if k in kept or k in ("kind", "train")}
    for key, default in NAMELESS_DEFAULTS.items():  # keys added later: at their default, names as before them
        if key in settings and settings[key] == default:
            settings.pop(key)
    if not settings.get("train", {}).get("adversarial", {}).get("weight"):  # GAN off: names as before the key
        settings.get("train", {}).pop("adversarial", None)
    if settings.get("train", {}).get("max_minutes", 0) is None:  # no clock cap: the steps alone say how long
        settings["train"].pop("max_minutes")
    return f"{modality}-{tok_cfg.kind}-{hash_json({'tokenizer': settings, 'data': data_fp})[:10]}"


def prepare_tokenizers(cfg: DictConfig, samples: dict[str, Samples],
                       media: list[str]) -> dict[str, tuple[ModalityTokenizer, Path]]:
    """Load each tokenizer from ``paths.tokenizers_dir`` or train and export it (stage 0)."""
    from unimodal.eval.tokenizers.card import save_tokenizer
    from unimodal.eval.tokenizers.measure import card_examples, measure
    from unimodal.tokenizers.text import TextTokenizer
    from unimodal.training.tokenizer_module import fit_tokenizer

    root = Path(cfg.paths.tokenizers_dir)
    data_fp = data_fingerprint(cfg.data)
    result: dict[str, tuple[ModalityTokenizer, Path]] = {}
    for modality in ["text", *media]:
        tok_cfg = cfg.tokenizer[modality]
        folder = root / tokenizer_name(modality, tok_cfg, data_fp)
        if (folder / "config.json").is_file():
            _say(f"[stage 0] reusing {modality} tokenizer {folder}")
            result[modality] = (load_tokenizer(folder), folder)
            continue
        pretrained = not getattr(registered_kind(tok_cfg.kind), "trainable", True)
        if not cfg.stage.train_tokenizers and not pretrained:
            raise UnimodalError(f"no {modality} tokenizer at {folder} for this config and data; "
                                f"run stage=tokenizers (or stage=all) first")
        started = time.perf_counter()
        held_out = None  # media the card's figures show (none for text)
        if modality == "text" and pretrained:  # a pretrained LM's own tokenizer (stage=align): loaded, not trained
            tokenizer: Any = build_tokenizer("text", tok_cfg)
            lengths = [len(ids) for ids in tokenizer.encode(samples["val"].captions)]
            metrics = {"tokens_per_caption": float(np.mean(lengths)), "vocab": tokenizer.codebook_size}
        elif modality == "text":
            options = constructor_options(TextTokenizer, tokenizer_options("text", tok_cfg))
            texts = [*samples["train"].captions, *(c for view in getattr(samples["train"], "captions_for", {}).values()
                                                   for c in view)]   # and the captions media have of their own
            tokenizer = TextTokenizer.train(texts, **options)
            lengths = [len(ids) for ids in tokenizer.encode(samples["val"].captions)]
            metrics = {"tokens_per_caption": float(np.mean(lengths)), "learned_vocab":
                       tokenizer.tokenizer.get_vocab_size()}
        else:
            tokenizer = build_tokenizer(modality, tok_cfg)
            train_split, val_split = samples["train"], samples["val"]
            held_out = tokenizer_media(val_split, modality, len(val_split), tok_cfg)
            if pretrained:
                _say(f"[stage 0] {modality} tokenizer ({tok_cfg.kind}) is pretrained: measuring, not training")
                metrics = measure(tokenizer.eval(), held_out, int(tok_cfg.train.batch_size))
            else:
                cap = tok_cfg.train.max_minutes
                _say(f"[stage 0] training {modality} tokenizer ({tok_cfg.kind}) for {tok_cfg.train.steps} steps"
                     + (f" (clock cap {cap} min)" if cap is not None else ""))
                # Real image sets are in memory already: all of their train split, not only TOKENIZER_SAMPLES.
                synthetic = cfg.data.name == "synthetic"
                count = min(len(train_split), TOKENIZER_SAMPLES) if synthetic else len(train_split)
                if modality == "video":  # clips are T frames each: cap them so that they fit in memory
                    count = min(count, VIDEO_TOKENIZER_SAMPLES)
                metrics = fit_tokenizer(tokenizer, tokenizer_media(train_split, modality, count, tok_cfg), held_out,
                                        tok_cfg.train, trainer_kwargs(cfg.trainer), progress=cfg.progress,
                                        seed=cfg.seed, desc=modality)
            tokenizer.cpu().eval()
        metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
        metrics["data"] = str(cfg.data.name)  # scripts/evaluate.py measures on this data by default
        # Complete folders only (a killed run leaves a .partial, never a fake tokenizer), and one per process: jobs
        # of a parallel sweep may train the same tokenizer at once; the first to finish keeps the folder.
        tmp = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        save_tokenizer(tokenizer, tmp, metrics, None if held_out is None else card_examples(tokenizer, held_out))
        if (folder / "config.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            tokenizer = load_tokenizer(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)   # an incomplete one
            try:
                tmp.rename(folder)
            except OSError:   # another job's complete folder got there between the check and the rename
                shutil.rmtree(tmp, ignore_errors=True)
                tokenizer = load_tokenizer(folder)
        _say(f"[stage 0] {modality} tokenizer -> {folder}  " +
             ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        result[modality] = (tokenizer, folder)
    return result


def tokenizer_media(split: Samples, modality: str, count: int, tok_cfg: Any) -> Any:
    """The first ``count`` samples' media as a tokenizer trains and is measured on them: with AnyRes on, each
    image's thumbnail and tiles (what the tokenizer will encode), since images then keep their own sizes."""
    media = split.media(modality, 0, count)
    anyres = AnyResSettings.from_config(tok_cfg.get("anyres")) if modality == "image" else None
    return media if anyres is None else anyres.training_tiles(media, int(tok_cfg.image_size))


def media_shapes(tokenizers: dict[str, ModalityTokenizer], cfg: Any) -> dict[str, Any]:
    """What ``run.json`` records of the media: code grids and frames, the layout of K codes per image cell (rvq;
    video frames too), and the AnyRes settings when they are on."""
    shapes: dict[str, Any] = {}
    if "image" in tokenizers or "video" in tokenizers:
        shapes["image_layout"] = str(cfg.tokenizer.image.layout)
    if "image" in tokenizers:
        shapes["image_grid"] = list(tokenizers["image"].grid_shape)
        anyres = AnyResSettings.from_config(cfg.tokenizer.image.anyres)
        if anyres is not None:
            shapes["image_anyres"] = anyres.to_json()
    if "audio" in tokenizers:
        samples = round(cfg.data.sample_rate * cfg.data.audio_seconds)
        shapes["audio_frames"] = int(tokenizers["audio"].frames(samples))
    if "video" in tokenizers:
        shapes["video_grid"] = list(tokenizers["video"].grid_shape)
    return shapes


# --- the run -----------------------------------------------------------------------------
def resolve_run_dir(cfg: DictConfig) -> Path:
    return run_dir_for(cfg)


def train(cfg: DictConfig) -> Path | None:
    """Run the stages that ``cfg.stage`` selects; return the run directory (None for stage 0 only).

    With several devices or nodes (``trainer.devices``, ``trainer.num_nodes``) every rank runs this: rank 0 makes
    the tokenizers, the token shards and every file of the run folder; the others wait for it, read what it
    made, and train with it (``training/distributed.py``).
    """
    torch.manual_seed(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(int(cfg.trainer.num_threads))
    media = list(cfg.modality.media)
    from unimodal.training.init_from import (
        adopt_settings,
        check_data_size,
        check_shapes,
        read_source,
        source_shapes,
        start_from,
    )
    source = read_source(cfg)  # init_from: the earlier run whose model and tokenizers stage=instruct tunes
    chat = cfg.data.name == "chat"  # a user's conversations (stage=instruct on an earlier run), not paired samples
    if source is not None:
        adopt_settings(cfg, source)
    elif chat:
        raise ConfigError("data=chat tunes an earlier run on your conversations: add stage=instruct "
                          "init_from=<run dir> (a stage=all, align or instruct run)")
    if not chat:
        check_source(cfg.data, media)
    from unimodal.model.extend import check_align_config
    from unimodal.run_folder import is_run_folder
    # stage=align: a pretrained LM and its own tokenizer (or a run of ours), checked before stage 0
    check_align_config(cfg, is_run_folder(cfg.model.get("pretrained")))
    if source is None and "image" in media and int(cfg.tokenizer.image.channels) != int(cfg.data.channels):
        raise ConfigError(f"tokenizer.image.channels={cfg.tokenizer.image.channels} but data={cfg.data.name} has "
                          f"data.channels={cfg.data.channels}; drop the tokenizer.image.channels override "
                          f"(it follows data.channels)")
    if source is not None and not chat:
        check_data_size(cfg, source)
    if cfg.stage.train_lm:  # the LM stages may train on many ranks: start or join them now, before stage 0
        cfg = distributed.start(cfg)
    zero = distributed.current().is_zero
    splits = ("train", "val")
    with distributed.rank_zero_first():  # stage 0 once; the other ranks then reuse the exported tokenizers
        samples = {} if chat else load_samples(cfg.data, splits) if zero else dict.fromkeys(splits)
        prepared = source.prepared() if source is not None else prepare_tokenizers(cfg, samples, media)
    tokenizers = {m: tok for m, (tok, _) in prepared.items()}
    from unimodal.training.vision_stage import features_on
    encoder = None
    if features_on(cfg):  # the vision encoder is trained (or loaded) beside the tokenizers
        from unimodal.training.encoder_trainer import prepare_encoder
        encoder = prepare_encoder(cfg, samples, tokenizers["text"])
    if not cfg.stage.train_lm:
        _say("[stage 0] done: tokenizers are in " + str(Path(cfg.paths.tokenizers_dir).resolve()))
        return None

    vocab = build_vocab(tokenizers)
    run_dir = resolve_run_dir(cfg)
    if zero:
        run_dir.mkdir(parents=True, exist_ok=True)
    from unimodal.training.resume import run_lock
    with run_lock(run_dir) if zero else nullcontext():  # one training run per folder (held by rank 0)
        _say(f"[run] folder {run_dir} (if stopped, rerun with run_dir={run_dir} to resume)")
        shapes = media_shapes(tokenizers, cfg)
        if source is not None:  # the shapes that run trained on (chat data: images fitted to its tokenizer)
            if not chat:
                check_shapes(source, shapes)
            shapes = source_shapes(source)
        if encoder is not None:  # images read as features: the encoder, its fingerprint and the span layout
            from unimodal.training.vision_stage import vision_info
            shapes["vision"] = vision_info(cfg, encoder)
        if zero:
            write_run_files(cfg, run_dir, vocab, prepared, shapes,
                            {"init_from": str(source.folder)} if source is not None else {})
            if encoder is not None:  # and its trained vision encoder (a pretrained one is referenced)
                from unimodal.training.vision_stage import run_encoder
                run_encoder(cfg, run_dir, encoder)

        with distributed.rank_zero_first():  # shards written once; the other ranks then read them
            sets = {} if chat else prepare_shards(cfg, samples, {m: tokenizers[m] for m in ["text", *media]}, vocab,
                                                  say=_say)
        if encoder is not None:  # each split's pixels beside its shard
            from unimodal.training.vision_stage import feature_sets
            sets = feature_sets(cfg, sets, samples, shapes["vision"])

        from unimodal.training.instruct_trainer import fit_instruct, pretrained_for_instruct
        from unimodal.training.lm_trainer import fit_lm
        if source is not None:
            start_from(source, run_dir)  # <run>/lm-pretrain: that run's model, where tuning starts
        if not (cfg.stage.train_instruct and pretrained_for_instruct(run_dir)):  # pretraining not yet done
            fit_lm(cfg, vocab, shapes, sets, run_dir)
        if cfg.stage.train_instruct:
            fit_instruct(cfg, vocab, shapes, sets, run_dir, tokenizers)
    distributed.finish()
    if not zero:
        return run_dir
    prompt = "a red circle" if cfg.data.name in ("synthetic", "chat") else samples["train"].captions[0]
    first = "video" if media == ["video"] else "image"
    prompt = "a red circle moves left" if first == "video" and cfg.data.name == "synthetic" else prompt
    command = f'python scripts/generate.py run={run_dir} prompt="{prompt}" output={first}'
    _say("")
    _say(f"run folder:   {run_dir.resolve()}")
    _say(f"  model:      {(run_dir / 'lm').resolve()}")
    _say(f"  tokenizers: {(run_dir / 'tokenizers').resolve()}")
    _say(f"  metrics:    {(run_dir / 'metrics.csv').resolve()}")
    _say("generate:")
    _say(f"  {command}")
    if "audio" in media:
        _say(f'  python scripts/generate.py run={run_dir} prompt="a red circle" output=audio')
    if "video" in media and first != "video":
        _say(f'  python scripts/generate.py run={run_dir} prompt="a red circle moves left" output=video')
    for medium in media:
        _say(f"  python scripts/generate.py run={run_dir} {medium}=<file> output=text")
    return run_dir


def write_run_files(cfg: DictConfig, run_dir: Path, vocab: Vocabulary,
                    prepared: dict[str, tuple[ModalityTokenizer, Path]], shapes: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> None:
    """run.json (with ``extra``), config.yaml, vocab.json and a copy of the tokenizers: the run folder describes
    itself."""
    info = {
        "modality": cfg.modality.name, "media": list(cfg.modality.media), "tasks": list(cfg.modality.tasks),
        "vocab_fingerprint": vocab.fingerprint, "audio_layout": cfg.tokenizer.audio.layout, **shapes,
        "tokenizers": {m: {"fingerprint": tok.fingerprint, "kind": tok.kind} for m, (tok, _) in prepared.items()},
        **(extra or {}),
    }
    check_resumable(run_dir, info)
    for modality, (_, folder) in prepared.items():  # the run folder carries its own tokenizers
        target = run_dir / TOKENIZERS_DIR / modality
        if not (target / "config.json").is_file():
            shutil.copytree(folder, target, dirs_exist_ok=True)
    vocab.save(run_dir / VOCAB_FILE)
    OmegaConf.save(cfg, run_dir / CONFIG_FILE)
    (run_dir / RUN_FILE).write_text(json.dumps(info, indent=2))


def shards_for_splits(cfg: DictConfig, splits: tuple[str, ...]) -> dict[str, TokenShard]:
    """``scripts/make_shards.py``: tokenizers (reused, or trained as ``stage`` allows), then one shard per split."""
    media = list(cfg.modality.media)
    check_source(cfg.data, media)
    samples = load_samples(cfg.data, tuple(dict.fromkeys(("train", "val", *splits))))
    prepared = prepare_tokenizers(cfg, samples, media)  # tokenizers train on train and measure on val
    tokenizers = {m: prepared[m][0] for m in ["text", *media]}
    return prepare_shards(cfg, {s: samples[s] for s in splits}, tokenizers, build_vocab(tokenizers))


def check_resumable(run_dir: Path, info: dict[str, Any]) -> None:
    """A run folder built with other tokenizers must not be resumed (or silently overwritten)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return
    previous = json.loads(path.read_text())
    if previous.get("vocab_fingerprint") != info["vocab_fingerprint"] or previous.get("tokenizers") != info[
            "tokenizers"]:
        raise UnimodalError(
            f"{run_dir} holds a run built with other tokenizers (vocabulary {previous.get('vocab_fingerprint')}"
            f", now {info['vocab_fingerprint']}); choose another run_dir")
    if previous.get("vision") != info.get("vision"):  # tokens vs features, another encoder, projector or layout
        raise UnimodalError(f"{run_dir} holds a run that reads images {_vision_text(previous.get('vision'))}, but "
                            f"this config reads them {_vision_text(info.get('vision'))}; choose another run_dir")


def _vision_text(vision: dict[str, Any] | None) -> str:
    if not vision:
        return "as tokens"
    return (f"as features (encoder {vision['encoder']['fingerprint']}, {vision['projector']} projector, "
            f"{vision['slots_per_crop']} slots per crop)")
