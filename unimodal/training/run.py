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

from unimodal.data.sources import data_fingerprint, make_world
from unimodal.data.tokens import TokenizedSet, images_to_tensor, tokenize_scenes
from unimodal.errors import ConfigError, UnimodalError
from unimodal.tokenizers.base import ModalityTokenizer, hash_json, load_tokenizer
from unimodal.vocab import Vocabulary

TOKENIZER_SAMPLES = 4000   # cap on the scenes a media tokenizer trains on
RUN_FILE = "run.json"


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
    options = tokenizer_options(modality, tok_cfg)
    if modality == "image" and tok_cfg.kind == "grid2d":
        from unimodal.tokenizers.image import GridImageTokenizer
        return GridImageTokenizer(**options)
    if modality == "audio" and tok_cfg.kind == "encodec":
        from unimodal.tokenizers.audio import EncodecTokenizer
        return EncodecTokenizer(**options)
    raise ConfigError(f"tokenizer.{modality}.kind={tok_cfg.kind!r} is not available")


def tokenizer_name(modality: str, tok_cfg: Any, data_fp: str) -> str:
    settings = OmegaConf.to_container(tok_cfg, resolve=True)
    settings.pop("layout", None)
    return f"{modality}-{tok_cfg.kind}-{hash_json({'tokenizer': settings, 'data': data_fp})[:10]}"


def trainer_kwargs(trainer_cfg: Any) -> dict[str, Any]:
    precision = trainer_cfg.precision
    if precision == "auto":
        precision = "bf16-mixed" if torch.cuda.is_available() and trainer_cfg.accelerator != "cpu" else "32-true"
    return {"accelerator": trainer_cfg.accelerator, "devices": trainer_cfg.devices, "precision": precision}


def prepare_tokenizers(cfg: DictConfig, world: Any, train_scenes: list, val_scenes: list,
                       media: list[str]) -> dict[str, tuple[ModalityTokenizer, Path]]:
    """Load each tokenizer from ``paths.tokenizers_dir`` or train and export it (stage 0)."""
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
        if not cfg.stage.train_tokenizers:
            raise UnimodalError(f"no {modality} tokenizer at {folder} for this config and data; "
                                f"run stage=tokenizers (or stage=all) first")
        started = time.perf_counter()
        if modality == "text":
            tokenizer: Any = TextTokenizer.train([world.caption(s) for s in train_scenes],
                                                 **tokenizer_options("text", tok_cfg))
            sample = [world.caption(s) for s in val_scenes]
            lengths = [len(ids) for ids in tokenizer.encode(sample)]
            metrics = {"tokens_per_caption": float(np.mean(lengths)), "learned_vocab":
                       tokenizer.tokenizer.get_vocab_size()}
        else:
            _say(f"[stage 0] training {modality} tokenizer ({tok_cfg.kind}) for up to "
                 f"{tok_cfg.train.steps} steps / {tok_cfg.train.max_minutes} min")
            tokenizer = build_tokenizer(modality, tok_cfg)
            subset = train_scenes[:TOKENIZER_SAMPLES]
            train_data, held_out = (render_media(world, subset, modality), render_media(world, val_scenes, modality))
            metrics = fit_tokenizer(tokenizer, train_data, held_out, tok_cfg.train,
                                    trainer_kwargs(cfg.trainer), progress=cfg.progress, seed=cfg.seed,
                                    desc=modality)
            tokenizer.cpu().eval()
        metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer.save(tmp, metrics)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)  # complete folders only: a killed run leaves a .partial, never a fake tokenizer
        _say(f"[stage 0] {modality} tokenizer -> {folder}  " +
             ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        result[modality] = (tokenizer, folder)
    return result


def render_media(world: Any, scenes: list, modality: str) -> torch.Tensor:
    if modality == "image":
        return images_to_tensor([world.render_image(s) for s in scenes])
    if modality == "audio":
        return torch.from_numpy(np.stack([world.render_sound(s) for s in scenes]))
    raise ValueError(modality)


def build_vocab(tokenizers: dict[str, ModalityTokenizer]) -> Vocabulary:
    media = {m: (t.codebook_size, t.num_codebooks) for m, t in tokenizers.items() if m != "text"}
    return Vocabulary(tokenizers["text"].codebook_size, media)


def media_shapes(tokenizers: dict[str, ModalityTokenizer], data_cfg: Any) -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    if "image" in tokenizers:
        shapes["image_grid"] = list(tokenizers["image"].grid_shape)
    if "audio" in tokenizers:
        samples = round(data_cfg.sample_rate * data_cfg.audio_seconds)
        shapes["audio_frames"] = int(tokenizers["audio"].frames(samples))
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
    world = make_world(cfg.data)
    media = list(cfg.modality.media)
    train_scenes = world.dataset(int(cfg.data.num_train), seed=int(cfg.data.seed), split="train")
    val_scenes = world.dataset(int(cfg.data.num_val), seed=int(cfg.data.seed) + 1, split="train")
    prepared = prepare_tokenizers(cfg, world, train_scenes, val_scenes, media)
    tokenizers = {m: tok for m, (tok, _) in prepared.items()}
    if not cfg.stage.train_lm:
        _say("[stage 0] done: tokenizers are in " + str(Path(cfg.paths.tokenizers_dir).resolve()))
        return None

    vocab = build_vocab(tokenizers)
    run_dir = resolve_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    _say(f"[run] folder {run_dir} (if stopped, rerun with run_dir={run_dir} to resume)")
    shapes = media_shapes(tokenizers, cfg.data)
    info = {
        "modality": cfg.modality.name, "media": media, "tasks": list(cfg.modality.tasks),
        "vocab_fingerprint": vocab.fingerprint, "audio_layout": cfg.tokenizer.audio.layout, **shapes,
        "tokenizers": {m: {"fingerprint": tok.fingerprint, "kind": tok.kind} for m, tok in tokenizers.items()},
    }
    check_resumable(run_dir, info)
    for modality, (_, folder) in prepared.items():  # the run folder carries its own tokenizers
        target = run_dir / "tokenizers" / modality
        if not (target / "config.json").is_file():
            shutil.copytree(folder, target, dirs_exist_ok=True)
    vocab.save(run_dir / "vocab.json")
    OmegaConf.save(cfg, run_dir / "config.yaml")
    (run_dir / RUN_FILE).write_text(json.dumps(info, indent=2))

    encoders = {m: tokenizers[m] for m in ["text", *media]}
    fps = {m: t.fingerprint for m, t in encoders.items()}
    key = hash_json({"data": data_fingerprint(cfg.data), "tokenizers": fps})[:12]
    cache = Path(cfg.paths.cache_dir)
    sets = {}
    for split, scenes in (("train", train_scenes), ("val", val_scenes)):
        path = cache / f"tokens-{split}-{key}.npz"
        expect = {"tokenizers": fps, "data": data_fingerprint(cfg.data)}
        if path.is_file():
            sets[split] = TokenizedSet.load(path, expect)
            _say(f"[tokens] reusing {path}")
        else:
            sets[split] = tokenize_scenes(world, scenes, encoders, progress=cfg.progress, desc=f"tokenize {split}")
            sets[split].save(path, expect)
            _say(f"[tokens] {split}: {len(scenes)} samples -> {path}")

    from unimodal.training.lm_trainer import fit_lm
    fit_lm(cfg, vocab, shapes, sets, run_dir)
    command = f'python scripts/generate.py run={run_dir} prompt="a red circle" output=image'
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
