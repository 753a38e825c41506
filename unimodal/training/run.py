"""``scripts/train.py``: stage 0 (tokenizers) and stage 1 (the language model) as one config-driven run."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from unimodal.data.sources import Samples, check_source, data_fingerprint, load_samples
from unimodal.errors import ConfigError, UnimodalError
from unimodal.run_folder import CONFIG_FILE, RUN_FILE, TOKENIZERS_DIR, VOCAB_FILE, build_vocab
from unimodal.tokenizers.base import ModalityTokenizer, hash_json, load_tokenizer, registered_kind

TOKENIZER_SAMPLES = 4000   # cap on the synthetic scenes a media tokenizer trains on (rendered up front)
VIDEO_TOKENIZER_SAMPLES = 1000   # and on clips (9 frames of 32x32 RGB: 110 MB as float)


def _say(message: str) -> None:
    print(message, flush=True)


# --- tokenizers --------------------------------------------------------------------------
def tokenizer_options(modality: str, tok_cfg: Any) -> dict[str, Any]:
    """Constructor kwargs from a tokenizer config group (training budget and layout live elsewhere)."""
    options = OmegaConf.to_container(tok_cfg, resolve=True)
    for key in ("kind", "train", "layout"):
        options.pop(key, None)
    return options


def build_tokenizer(modality: str, tok_cfg: Any) -> ModalityTokenizer:
    """A fresh (untrained) tokenizer of the registered ``kind`` for ``modality``, built from its config."""
    from unimodal.tokenizers import constructor_options  # importing the package registers every kind

    cls = registered_kind(tok_cfg.kind)
    if cls is None or cls.modality != modality:
        raise ConfigError(f"tokenizer.{modality}.kind={tok_cfg.kind!r} is not an available {modality} tokenizer")
    return cls(**constructor_options(cls, tokenizer_options(modality, tok_cfg)))


# Tokenizer keys added after tokenizers were first saved, with the defaults that keep those tokenizers' names.
NAMELESS_DEFAULTS = {"dead_code_fraction": None, "causal": False, "norm": "weight_norm"}


def tokenizer_name(modality: str, tok_cfg: Any, data_fp: str) -> str:
    """``<modality>-<kind>-<hash>``: the hash covers the keys this kind uses, its training budget and the
    data, so keys of other kinds (the schema holds them all) and defaults left off never rename it."""
    from unimodal.tokenizers import constructor_options

    settings = OmegaConf.to_container(tok_cfg, resolve=True)
    settings.pop("layout", None)
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


def trainer_kwargs(trainer_cfg: Any, lm: bool = False) -> dict[str, Any]:
    """Lightning accelerator settings. The language model trains in ``trainer.precision`` and tokenizers in
    ``trainer.tokenizer_precision``, on any machine, so one seed gives one recipe everywhere. ``auto`` (opt-in)
    picks by machine instead: bf16-mixed on a GPU, and for the language model also on a CPU with native bf16
    (AVX512-BF16/AMX); fp32 otherwise."""
    precision = trainer_cfg.precision if lm else trainer_cfg.tokenizer_precision
    if precision == "auto":
        on_gpu = torch.cuda.is_available() and trainer_cfg.accelerator != "cpu"
        precision = "bf16-mixed" if on_gpu or (lm and cpu_has_native_bf16()) else "32-true"
    return {"accelerator": trainer_cfg.accelerator, "devices": trainer_cfg.devices, "precision": precision}


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def prepare_tokenizers(cfg: DictConfig, samples: dict[str, Samples],
                       media: list[str]) -> dict[str, tuple[ModalityTokenizer, Path]]:
    """Load each tokenizer from ``paths.tokenizers_dir`` or train and export it (stage 0)."""
    from unimodal.eval.tokenizers.card import save_tokenizer
    from unimodal.eval.tokenizers.measure import card_examples, measure
    from unimodal.tokenizers import constructor_options
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
            tokenizer = TextTokenizer.train(samples["train"].captions, **options)
            lengths = [len(ids) for ids in tokenizer.encode(samples["val"].captions)]
            metrics = {"tokens_per_caption": float(np.mean(lengths)), "learned_vocab":
                       tokenizer.tokenizer.get_vocab_size()}
        else:
            tokenizer = build_tokenizer(modality, tok_cfg)
            train_split, val_split = samples["train"], samples["val"]
            held_out = val_split.media(modality, 0, len(val_split))
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
                metrics = fit_tokenizer(tokenizer, train_split.media(modality, 0, count), held_out, tok_cfg.train,
                                        trainer_kwargs(cfg.trainer), progress=cfg.progress, seed=cfg.seed,
                                        desc=modality)
            tokenizer.cpu().eval()
        metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
        metrics["data"] = str(cfg.data.name)  # scripts/evaluate.py measures on this data by default
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        save_tokenizer(tokenizer, tmp, metrics, None if held_out is None else card_examples(tokenizer, held_out))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)  # complete folders only: a killed run leaves a .partial, never a fake tokenizer
        _say(f"[stage 0] {modality} tokenizer -> {folder}  " +
             ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        result[modality] = (tokenizer, folder)
    return result


def media_shapes(tokenizers: dict[str, ModalityTokenizer], data_cfg: Any) -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    if "image" in tokenizers:
        if tokenizers["image"].num_codebooks != 1:  # an image span holds one code per grid cell
            raise ConfigError(f"tokenizer.image.quantizer: {tokenizers['image'].num_codebooks} codes per grid cell "
                              f"(rvq); the LM's image span takes one: use fsq, vq or lfq for LM runs (rvq serves "
                              f"stage=tokenizers and tokenizer benchmarks)")
        shapes["image_grid"] = list(tokenizers["image"].grid_shape)
    if "audio" in tokenizers:
        samples = round(data_cfg.sample_rate * data_cfg.audio_seconds)
        shapes["audio_frames"] = int(tokenizers["audio"].frames(samples))
    if "video" in tokenizers:
        shapes["video_grid"] = list(tokenizers["video"].grid_shape)
    return shapes


# --- the run -----------------------------------------------------------------------------
def resolve_run_dir(cfg: DictConfig) -> Path:
    if cfg.run_dir:
        return Path(cfg.run_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.paths.runs_dir) / f"{cfg.modality.name}-{stamp}"


def train(cfg: DictConfig) -> Path | None:
    """Run the stages that ``cfg.stage`` selects; return the run directory (None for stage 0 only)."""
    torch.manual_seed(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(int(cfg.trainer.num_threads))
    media = list(cfg.modality.media)
    check_source(cfg.data, media)
    from unimodal.model.extend import check_align_config
    check_align_config(cfg)  # stage=align: a pretrained LM and its own tokenizer, checked before stage 0
    if "image" in media and int(cfg.tokenizer.image.channels) != int(cfg.data.channels):
        raise ConfigError(f"tokenizer.image.channels={cfg.tokenizer.image.channels} but data={cfg.data.name} has "
                          f"data.channels={cfg.data.channels}; drop the tokenizer.image.channels override "
                          f"(it follows data.channels)")
    samples = load_samples(cfg.data, ("train", "val"))
    prepared = prepare_tokenizers(cfg, samples, media)
    tokenizers = {m: tok for m, (tok, _) in prepared.items()}
    if not cfg.stage.train_lm:
        _say("[stage 0] done: tokenizers are in " + str(Path(cfg.paths.tokenizers_dir).resolve()))
        return None

    vocab = build_vocab(tokenizers)
    run_dir = resolve_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    from unimodal.training.resume import run_lock
    with run_lock(run_dir):  # one training process per run folder
        _say(f"[run] folder {run_dir} (if stopped, rerun with run_dir={run_dir} to resume)")
        shapes = media_shapes(tokenizers, cfg.data)
        info = {
            "modality": cfg.modality.name, "media": media, "tasks": list(cfg.modality.tasks),
            "vocab_fingerprint": vocab.fingerprint, "audio_layout": cfg.tokenizer.audio.layout, **shapes,
            "tokenizers": {m: {"fingerprint": tok.fingerprint, "kind": tok.kind} for m, tok in tokenizers.items()},
        }
        check_resumable(run_dir, info)
        for modality, (_, folder) in prepared.items():  # the run folder carries its own tokenizers
            target = run_dir / TOKENIZERS_DIR / modality
            if not (target / "config.json").is_file():
                shutil.copytree(folder, target, dirs_exist_ok=True)
        vocab.save(run_dir / VOCAB_FILE)
        OmegaConf.save(cfg, run_dir / CONFIG_FILE)
        (run_dir / RUN_FILE).write_text(json.dumps(info, indent=2))

        from unimodal.training.shards_run import prepare_shards
        sets = prepare_shards(cfg, samples, {m: tokenizers[m] for m in ["text", *media]}, vocab, say=_say)

        from unimodal.training.instruct_trainer import fit_instruct, pretrained_for_instruct
        from unimodal.training.lm_trainer import fit_lm
        if not (cfg.stage.train_instruct and pretrained_for_instruct(run_dir)):  # pretraining not yet done
            fit_lm(cfg, vocab, shapes, sets, run_dir)
        if cfg.stage.train_instruct:
            fit_instruct(cfg, vocab, shapes, sets, run_dir, tokenizers)
    prompt = "a red circle" if cfg.data.name == "synthetic" else samples["train"].captions[0]
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
    for source in media:
        _say(f"  python scripts/generate.py run={run_dir} {source}=<file> output=text")
    return run_dir


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
