"""Video data for training: synthetic clips (the world with motion) behind the ``Samples`` interface."""

from __future__ import annotations

from typing import Any

import torch

from unimodal.errors import ConfigError
from unimodal.media import images_to_tensor, videos_to_tensor


def clips_enabled(data_cfg: Any) -> bool:
    """``data.video_frames > 0`` (modality=video sets it): the source yields clips with motion captions."""
    return int(data_cfg.get("video_frames", 0) or 0) > 0


def check_video_source(data_cfg: Any, media: list[str] | tuple[str, ...]) -> None:
    if "video" in media and int(data_cfg.get("video_frames", 0) or 0) < 2:
        raise ConfigError(f"the modality asks for video but data.video_frames={data_cfg.get('video_frames', 0)}; "
                          f"set data.video_frames (e.g. 9) or use modality=video, which sets it")


class ClipSamples:
    """Synthetic clips; frames are rendered a batch at a time. ``image`` is a clip's first frame."""

    def __init__(self, motion_world: Any, clips: list[Any]) -> None:
        self.motion_world = motion_world
        self.clips = clips
        self.captions = [motion_world.caption(clip) for clip in clips]

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def attributes(self) -> list[list[list[str]]]:
        return [[list(triple) for triple in clip.attributes()] for clip in self.clips]

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor:
        chunk = self.clips[start:stop]
        if modality == "video":
            return videos_to_tensor([self.motion_world.render_video(c) for c in chunk])
        if modality == "image":
            return images_to_tensor([self.motion_world.world.render_image(c.scene_at(0)) for c in chunk])
        raise ConfigError(f"data=synthetic with data.video_frames > 0 holds captions, clips and their first frames; "
                          f"it has no {modality}")


def synthetic_clips(world: Any, data_cfg: Any, split: str) -> ClipSamples:
    """As the still scenes: train and val without the held-out combinations, test any combination (another seed)."""
    from unimodal.data.motion import MotionWorld

    motion_world = MotionWorld(world, int(data_cfg.video_frames))
    seed = int(data_cfg.seed)
    count, seed, combos = {"train": (data_cfg.num_train, seed, "train"), "val": (data_cfg.num_val, seed + 1, "train"),
                           "test": (data_cfg.num_test, seed + 2, "all")}[split]
    return ClipSamples(motion_world, motion_world.dataset(int(count), seed=seed, split=combos))
