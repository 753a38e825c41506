"""Data sources selected by ``data=``. Only the synthetic world exists so far."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from unimodal.errors import ConfigError
from unimodal.tokenizers.base import hash_json


def make_world(data_cfg: Any) -> Any:
    from unimodal.data.synthetic import World, WorldConfig

    if data_cfg.name != "synthetic":
        raise ConfigError(f"data={data_cfg.name!r} is not available yet; use data=synthetic")
    return World(WorldConfig(
        image_size=int(data_cfg.image_size), sample_rate=int(data_cfg.sample_rate),
        audio_seconds=float(data_cfg.audio_seconds), max_objects=int(data_cfg.max_objects),
        single_object_prob=float(data_cfg.single_object_prob),
        held_out=tuple(tuple(pair) for pair in data_cfg.held_out)))


def data_fingerprint(data_cfg: Any) -> str:
    return hash_json(OmegaConf.to_container(data_cfg, resolve=True))
