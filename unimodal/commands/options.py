"""Option schemas of the scripts beside ``train.py`` (whose schema is :class:`unimodal.config.Config`).

Each command's options merge onto a dataclass here, as ``train.py``'s merge onto ``Config``: a mistyped name or a
value of the wrong type is one :class:`ConfigError` naming the key, and range checks follow (no zero or negative
counts, probabilities in range, known modalities). Validation is a function of the composed options
(:func:`validate_generate`, :func:`validate_evaluate`, :func:`validate_tokenizer_evaluation`,
:func:`validate_export`, :func:`validate_make_shards`), so it holds however they were composed: ``key=value``
overrides, ``hydra.compose`` or an ``@hydra.main`` app (the dataclasses register as Hydra structured configs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from unimodal.config import _one_line
from unimodal.errors import ConfigError

OUTPUTS = ("text", "image", "audio", "video")
SPLITS = ("train", "val", "test")
# model/sampling.py's SCHEDULES and model/fast_decode.py's FAST_CHOICES (tests keep them equal): named here so that
# checking options never imports torch or transformers, and a wrong option is answered in a second.
SCHEDULES = ("constant", "linear", "cosine")
FAST_CHOICES = ("auto", "true", "false")
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


# --- scripts/generate.py --------------------------------------------------------------------
@dataclass
class CfgScale:
    """Classifier-free guidance scale per output modality (1.0 = off); image and audio, with their temperatures,
    are the evaluation's recipe (unimodal/eval/sampling.py MEDIA_SAMPLING)."""
    text: float = 1.0
    image: float = 2.5
    audio: float = 2.0
    video: float = 3.0


@dataclass
class Temperature:
    text: float = 0.7
    image: float = 0.7
    audio: float = 0.7
    video: float = 1.0


@dataclass
class TopK:
    text: int = 0
    image: int = 0
    audio: int = 0
    video: int = 0


@dataclass
class TopP:
    text: float = 1.0
    image: float = 1.0
    audio: float = 1.0
    video: float = 1.0


@dataclass
class CfgSchedule:
    text: str = "constant"
    image: str = "constant"
    audio: str = "constant"
    video: str = "constant"


@dataclass
class GenerateConfig:
    """conf/generate.yaml."""
    run: str | None = None
    prompt: str | None = None
    image: str | None = None
    audio: str | None = None
    video: str | None = None
    question: str | None = None
    output: Any = "image"              # one of OUTPUTS, or a list of them
    size: str | None = None            # WIDTHxHEIGHT of generated images (checked where the run is known)
    aspect: str | None = None          # or WIDTH:HEIGHT
    num_samples: int = 1
    seed: int = 0
    max_new_tokens: int = 256
    cfg_scale: CfgScale = field(default_factory=CfgScale)
    temperature: Temperature = field(default_factory=Temperature)
    top_k: TopK = field(default_factory=TopK)
    top_p: TopP = field(default_factory=TopP)
    cfg_schedule: CfgSchedule = field(default_factory=CfgSchedule)
    repetition_penalty: float = 1.0
    min_text_tokens: int = 1
    rerank: int = 1                    # best of this many answers by the inverse direction (1 = plain)
    fast: Any = "auto"                 # auto | true | false (YAML hands over a bool)
    out_dir: str | None = None


# --- scripts/evaluate.py --------------------------------------------------------------------
@dataclass
class EvaluateConfig:
    """``run=`` / ``compare=``: score runs."""
    run: str | None = None
    compare: list[str] | None = None
    out: str | None = None
    samples: int = 100                 # scenes per split and direction
    lm_samples: int = 100              # scenes per split for bits per token; 0 = off
    vqa_scenes: int = 100              # instruct runs; 0 = off
    batch_size: int = 64
    seed: int = 0                      # the first seed; seeds=3 scores seed, seed+1, seed+2
    seeds: int = 3                     # each its own scenes and sampling; the score pools them (Wilson interval)
    controls: bool = True              # false: skip the noise generations (shuffled prompts are always judged)
    cfg_scale: float | None = None     # null: the evaluation's recipe per modality (unimodal/eval/sampling.py)
    temperature: float | None = None   # media sampling temperature; null: the recipe's per modality
    rerank: int = 1                    # best of this many answers by the inverse direction (1 = plain generation)
    directions: list[str] | None = None
    progress: bool = True
    device: str = "auto"
    reuse: bool = True
    judge_steps: int = 400             # real-image runs: training steps of each judge
    inception: str | None = None       # real-image runs: Inception-v3 FID weights file


@dataclass
class TokenizerEvaluationConfig:
    """``task=tokenizer``: measure an exported tokenizer (``data=``/``data.*`` go to the main config)."""
    task: str | None = None
    tokenizer: str | None = None
    split: str = "test"
    num_images: int | None = None
    out: str | None = None
    batch_size: int = 64
    grid: int = 8
    progress: bool = True
    device: str = "auto"
    num_codebooks: int | None = None   # audio: RVQ levels to decode with (default all)


# --- scripts/export.py and scripts/make_shards.py --------------------------------------------
@dataclass
class ExportConfig:
    run: str | None = None
    out: str | None = None


@dataclass
class ShardSplits:
    """scripts/make_shards.py's own key; every other key is the main config's (``Config``)."""
    splits: list[str] = field(default_factory=lambda: ["train", "val"])


SCHEMAS = {"generate": GenerateConfig, "evaluate": EvaluateConfig, "evaluate_tokenizer": TokenizerEvaluationConfig,
           "export": ExportConfig, "make_shards": ShardSplits}


def register_schemas() -> None:
    """Hydra structured configs ``<name>_schema`` (for ``defaults: [<name>_schema, _self_]`` in a primary config)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=f"{name}_schema", node=schema)


# --- validation ------------------------------------------------------------------------------
def options_from(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides as a dict: ``[a,b]`` is a list, ``null`` is None, anything else a string that the
    schema converts (``samples=abc`` then fails naming ``samples``)."""
    options: dict[str, Any] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):   # Hydra's quoting of each item is dropped
            options[key] = [part.strip().strip("'\"") for part in value[1:-1].split(",") if part.strip()]
        else:
            options[key] = None if value in ("null", "") else value
    return options


def _merged(schema: type, cfg: Any, script: str) -> DictConfig:
    """``cfg`` (a DictConfig or dict) merged onto ``schema``; a one-line ConfigError names a bad key or value."""
    given = OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else dict(cfg or {})
    names = [f.name for f in fields(schema)]
    unknown = [key for key in given if key not in names]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} for {script}; it takes "
                          + " ".join(f"{name}=" for name in names))
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), given)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{script}: {_one_line(err)}") from None


def at_least(cfg: Any, minimum: float, *keys: str) -> None:
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if value is not None and value < minimum:
            raise ConfigError(f"{key}={value}: must be at least {minimum:g}")


def _per_modality(cfg: Any, table: str, low: float, high: float | None = None, low_open: bool = False) -> None:
    for modality, value in cfg[table].items():
        if value < low or (low_open and value == low) or (high is not None and value > high):
            bound = f"in ({low:g}, {high:g}]" if high is not None else f"{'above' if low_open else 'at least'} {low:g}"
            raise ConfigError(f"{table}.{modality}={value}: must be {bound}")


def _outputs(value: Any) -> list[str]:
    outputs = list(value) if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else [value]
    bad = [o for o in outputs if not isinstance(o, str) or o not in OUTPUTS]
    if bad or not outputs:
        raise ConfigError(f"output={value}: {'unknown modality ' + repr(bad[0]) if bad else 'empty'}; choose "
                          f"{', '.join(OUTPUTS)} or a list such as [text,image]")
    return outputs


def validate_generate(cfg: Any) -> DictConfig:
    """scripts/generate.py's options, checked: names, types, ranges, outputs, and that a prompt is given."""
    merged = _merged(GenerateConfig, cfg, "scripts/generate.py")
    if not merged.run:
        raise ConfigError("run=<run dir> is required (a folder written by scripts/train.py)")
    merged.output = _outputs(merged.output)
    at_least(merged, 1, "num_samples", "max_new_tokens", "rerank")
    at_least(merged, 0, "seed", "min_text_tokens")
    if merged.repetition_penalty <= 0:
        raise ConfigError(f"repetition_penalty={merged.repetition_penalty}: must be above 0 (1.0 = off)")
    _per_modality(merged, "cfg_scale", 0)
    _per_modality(merged, "temperature", 0)
    _per_modality(merged, "top_k", 0)
    _per_modality(merged, "top_p", 0, 1, low_open=True)
    for modality, name in merged.cfg_schedule.items():
        if name not in SCHEDULES:
            raise ConfigError(f"cfg_schedule.{modality}={name!r}: choose one of {', '.join(SCHEDULES)}")
    if str(merged.fast).lower() not in FAST_CHOICES:
        raise ConfigError(f"fast={merged.fast!r}: choose auto (static cache on CUDA), true or false (eager HF forward)")
    merged.fast = str(merged.fast).lower()
    if not any(merged[key] for key in ("prompt", "image", "audio", "video", "question")):
        raise ConfigError('give a prompt: prompt="a red circle", image=<file>, audio=<file> or video=<file>')
    return merged


def _device(value: str) -> None:
    if not DEVICE.match(str(value)):
        raise ConfigError(f"device={value!r}: choose auto, cpu or cuda (cuda:N)")


def validate_evaluate(cfg: Any) -> DictConfig:
    """scripts/evaluate.py ``run=`` / ``compare=`` options, checked."""
    merged = _merged(EvaluateConfig, cfg, "scripts/evaluate.py run=/compare=")
    if not merged.run and not merged.compare:
        raise ConfigError("run=<run dir> or compare=[runA,runB] is required")
    if merged.compare is not None and not merged.compare:
        raise ConfigError("compare=[runA,runB,...]: name at least one run folder")
    at_least(merged, 1, "samples", "seeds", "batch_size", "judge_steps", "rerank")
    at_least(merged, 0, "lm_samples", "vqa_scenes", "seed", "cfg_scale", "temperature")
    for direction in merged.directions or []:
        parts = direction.split("->")
        if len(parts) != 2 or any(p not in OUTPUTS for p in parts):
            raise ConfigError(f"directions: {direction!r} is not a direction; write source->target over "
                              f"{', '.join(OUTPUTS)}, e.g. directions=[text->image]")
    _device(merged.device)
    return merged


def validate_tokenizer_evaluation(cfg: Any) -> DictConfig:
    """scripts/evaluate.py ``task=tokenizer`` options (besides ``data=``), checked."""
    merged = _merged(TokenizerEvaluationConfig, cfg, "scripts/evaluate.py task=tokenizer")
    if merged.task != "tokenizer":
        given = f"task={merged.task!r} is not a task" if merged.task else "task= is required"
        raise ConfigError(f"{given}; choose one of: tokenizer (or give run=<run dir> to score a run)")
    if merged.split not in SPLITS:
        raise ConfigError(f"split={merged.split!r}: choose one of {', '.join(SPLITS)}")
    at_least(merged, 1, "num_images", "batch_size", "num_codebooks")
    at_least(merged, 0, "grid")
    _device(merged.device)
    return merged


def validate_export(cfg: Any) -> DictConfig:
    merged = _merged(ExportConfig, cfg, "scripts/export.py")
    missing = [key for key in ("run", "out") if not merged[key]]
    if missing:
        raise ConfigError(f"scripts/export.py needs {' and '.join(f'{k}=' for k in missing)}: run=<run dir> "
                          f"out=<new folder>")
    return merged


def validate_make_shards(cfg: Any) -> DictConfig:
    """``splits`` of scripts/make_shards.py (the rest of its options are the main config, checked by
    :func:`unimodal.config.validate`)."""
    merged = _merged(ShardSplits, cfg, "scripts/make_shards.py")
    bad = [s for s in merged.splits if s not in SPLITS]
    if bad or not merged.splits:
        raise ConfigError(f"splits={list(merged.splits)}: {'unknown split ' + repr(bad[0]) if bad else 'empty'}; "
                          f"give some of {', '.join(SPLITS)}, e.g. splits=[train,val,test]")
    return merged
