"""Data sources selected by ``data=``: the synthetic world and real image+caption sets.

Training reads any source through one small interface, :class:`Samples` (captions, plus media batches
rendered or sliced on demand); evaluation reads images with :func:`load_images`. Real sources live in
:mod:`unimodal.data.images` (Fashion-MNIST), :mod:`unimodal.data.clipart` and :mod:`unimodal.data.folder`.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from omegaconf import OmegaConf

from unimodal.data.images import SPLITS, ImageTextSet
from unimodal.errors import ConfigError
from unimodal.tokenizers.base import hash_json

# What each source holds besides captions.
SOURCE_MEDIA = {"synthetic": ("image", "audio", "video"), "fashion_mnist": ("image",), "clipart": ("image",),
                "folder": ("image", "audio", "video"), "speech": ("audio",),   # a folder holds images, sounds or clips
                "moving_fashion_mnist": ("video", "image")}
# The keys that decide a source's train and val data: its fingerprint (tokenizer folder names, token caches)
# hashes these only, so a key another source reads (or num_test) does not retrain anything. The synthetic
# list is the whole data config as it was before real sources existed: its fingerprint did not change.
FINGERPRINT_KEYS = {
    "synthetic": ("name", "num_train", "num_val", "seed", "image_size", "sample_rate", "audio_seconds",
                  "max_objects", "single_object_prob", "held_out"),
    "fashion_mnist": ("name", "root", "num_train", "num_val", "image_size", "channels"),
    "clipart": ("name", "root", "limit", "num_train", "num_val", "image_size", "channels"),
    "folder": ("name", "limit", "num_train", "num_val", "image_size", "channels"),   # + the folder's contents
    "speech": ("name", "num_train", "num_val", "seed", "sample_rate", "audio_seconds", "voices", "variants",
               "held_out_voices", "rate_range", "pitch_range", "peak"),
    "moving_fashion_mnist": ("name", "root", "num_train", "num_val", "seed", "image_size", "channels"),
}


class Samples(Protocol):
    """One split as training reads it: a caption per sample and media batches made on demand."""

    captions: list[str]

    def __len__(self) -> int: ...

    @property
    def attributes(self) -> list[list[list[str]]]: ...   # (colour, shape) per object; synthetic only

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor: ...


def check_source(data_cfg: Any, media: list[str] | tuple[str, ...] = ()) -> None:
    """ConfigError unless ``data.name`` is a known source that holds every medium in ``media``."""
    if data_cfg.name not in SOURCE_MEDIA:
        raise ConfigError(f"data.name={data_cfg.name!r} is not a data source; choose one of {list(SOURCE_MEDIA)}")
    missing = [m for m in media if m not in SOURCE_MEDIA[data_cfg.name]]
    if missing:
        held = " and ".join(("captions", *SOURCE_MEDIA[data_cfg.name]))
        raise ConfigError(f"data={data_cfg.name} holds {held} only, but the modality asks for {missing}; use "
                          f"modality=image or modality=text with it, or data=synthetic")
    from unimodal.data.video_sources import check_video_source
    check_video_source(data_cfg, media)
    if data_cfg.name == "synthetic" and int(data_cfg.get("channels", 3)) != 3:   # run configs older than the key
        raise ConfigError(f"data.channels={data_cfg.channels}: the synthetic world renders RGB; use 3")


def make_world(data_cfg: Any) -> Any:
    from unimodal.data.synthetic.world import World, WorldConfig

    if data_cfg.name != "synthetic":
        raise ConfigError(f"data={data_cfg.name} has no synthetic world (scenes with exact analyzers); "
                          f"use data=synthetic")
    check_source(data_cfg)
    return World(WorldConfig(
        image_size=int(data_cfg.image_size), sample_rate=int(data_cfg.sample_rate),
        audio_seconds=float(data_cfg.audio_seconds), max_objects=int(data_cfg.max_objects),
        single_object_prob=float(data_cfg.single_object_prob),
        held_out=tuple(tuple(pair) for pair in data_cfg.held_out)))


class SceneSamples:
    """Synthetic scenes; images and sounds are rendered a batch at a time (6,000 sounds are 300 MB)."""

    def __init__(self, world: Any, scenes: list[Any]) -> None:
        self.world = world
        self.scenes = scenes
        self.captions = [world.caption(scene) for scene in scenes]

    def __len__(self) -> int:
        return len(self.scenes)

    @property
    def attributes(self) -> list[list[list[str]]]:
        return [[list(pair) for pair in scene.attributes()] for scene in self.scenes]

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor:
        from unimodal.data.tokens import images_to_tensor

        chunk = self.scenes[start:stop]
        if modality == "image":
            return images_to_tensor([self.world.render_image(s) for s in chunk])
        if modality == "audio":
            return torch.from_numpy(np.stack([self.world.render_sound(s) for s in chunk]))
        raise ConfigError(f"data=synthetic has no {modality}")


def synthetic_scenes(world: Any, data_cfg: Any, split: str) -> list[Any]:
    """train and val: seeded scenes without the held-out combinations; test: any combination, another seed."""
    seed = int(data_cfg.seed)
    count, seed, combos = {"train": (data_cfg.num_train, seed, "train"), "val": (data_cfg.num_val, seed + 1, "train"),
                           "test": (data_cfg.num_test, seed + 2, "all")}[split]
    return world.dataset(int(count), seed=seed, split=combos)


def load_samples(data_cfg: Any, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Samples]:
    """Each split of any source, as training reads it (real image sources are read once for all splits)."""
    check_source(data_cfg)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ConfigError(f"unknown split {unknown[0]!r}; choose one of {SPLITS}")
    if data_cfg.name == "synthetic":
        world = make_world(data_cfg)
        from unimodal.data.video_sources import clips_enabled, synthetic_clips
        if clips_enabled(data_cfg):  # modality=video: clips whose captions say how the objects move
            return {split: synthetic_clips(world, data_cfg, split) for split in splits}
        return {split: SceneSamples(world, synthetic_scenes(world, data_cfg, split)) for split in splits}
    if data_cfg.name == "fashion_mnist":
        from unimodal.data.images import load_fashion_mnist
        return {split: load_fashion_mnist(data_cfg, split) for split in splits}
    if data_cfg.name == "moving_fashion_mnist":
        from unimodal.data.moving_fashion import load_moving_fashion_mnist
        return dict(load_moving_fashion_mnist(data_cfg, splits))
    if data_cfg.name == "clipart":
        from unimodal.data.clipart import load_clipart
        return dict(load_clipart(data_cfg, splits))
    if data_cfg.name == "speech":
        from unimodal.data.speech import load_speech
        return dict(load_speech(data_cfg, splits))
    from unimodal.data.folder import load_folder
    from unimodal.data.video_sources import clips_enabled
    if clips_enabled(data_cfg):  # modality=video: video files, frames sampled uniformly
        from unimodal.data.video_folder import load_video_folder
        return dict(load_video_folder(data_cfg, splits))
    return dict(load_folder(data_cfg, splits))


def load_images(data_cfg: Any, split: str) -> ImageTextSet:
    """One split of any source as uint8 ``[N, H, W, C]`` images with captions (synthetic scenes rendered)."""
    samples = load_samples(data_cfg, (split,))[split]
    if isinstance(samples, SceneSamples):
        images = [samples.world.render_image(scene) for scene in samples.scenes]
        return ImageTextSet(np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8), samples.captions)
    return samples


def data_fingerprint(data_cfg: Any) -> str:
    """Hash of what decides the train and val data (see FINGERPRINT_KEYS)."""
    check_source(data_cfg)
    values = OmegaConf.to_container(data_cfg, resolve=True)
    chosen = {key: values.get(key) for key in FINGERPRINT_KEYS[data_cfg.name]}
    if values.get("video_frames"):  # clips: other captions and media (absent otherwise: still data keeps its hash)
        chosen["video_frames"] = values["video_frames"]
    if data_cfg.name == "folder":
        from unimodal.data.folder import folder_signature
        chosen["contents"] = folder_signature(data_cfg)
    return hash_json(chosen)
