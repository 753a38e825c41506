"""modality=all: text, images, sounds and clips in one vocabulary and one LM, all eight directions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import smoke_overrides
from tests.test_shards import FakeImage, FakeText
from unimodal.config import compose
from unimodal.data.tasks import task_segments, text_key
from unimodal.errors import ConfigError

EIGHT = ["text->image", "image->text", "text->audio", "audio->text", "image->audio", "audio->image", "text->video",
         "video->text"]


def test_modality_all_names_eight_directions_and_turns_on_scenes_with_clips():
    cfg = compose(["modality=all"])
    assert list(cfg.modality.tasks) == EIGHT and list(cfg.modality.media) == ["image", "audio", "video"]
    assert cfg.data.video_frames == 9 and cfg.data.scenes_with_clips
    from unimodal.data.sources import check_source

    with pytest.raises(ConfigError, match="data.scenes_with_clips=true"):
        check_source(compose(["modality=all", "data.scenes_with_clips=false"]).data, ["image", "audio", "video"])


def test_each_sample_holds_a_scene_and_a_clip_with_their_own_captions(tmp_path):
    from unimodal.data.shards import write_shard
    from unimodal.data.sources import load_samples
    from unimodal.vocab import Vocabulary

    data = compose(["modality=all", "data.num_train=6", "data.num_val=2"]).data
    train = load_samples(data, ("train",))["train"]
    assert len(train) == 6 and len(train.captions_for["video"]) == 6
    assert " moves " in train.captions_for["video"][0] and " moves " not in " ".join(train.captions)
    assert tuple(train.media("image", 0, 2).shape) == (2, 3, 32, 32)
    assert train.media("audio", 0, 2).shape[0] == 2 and train.media("video", 0, 2).shape[:2] == (2, 9)

    class Half:  # a still medium, and one a medium with its own caption
        def __init__(self, samples) -> None:
            self.captions, self.captions_for, self.attributes = samples.captions, samples.captions_for, []

        def __len__(self) -> int:
            return len(self.captions)

        def media(self, modality: str, start: int, stop: int):
            import torch

            return torch.arange(start, stop).reshape(-1, 1)

    shard = write_shard(tmp_path / "train", Half(train), {"text": FakeText(), "image": FakeImage(),
                                                          "video": FakeImage("video-fp")},
                        Vocabulary(64, {"image": (50, 1), "video": (50, 1)}), {"data": "d"}, progress=False)
    payloads = shard.payloads(1)
    assert set(payloads) == {"text", "image", "video", text_key("video")}
    video_caption = np.asarray(FakeText().encode([train.captions_for["video"][1]])[0])
    segments = task_segments(payloads, "text->video")
    assert np.array_equal(segments[0].payload, video_caption)   # the clip's caption, not the scene's
    assert np.array_equal(task_segments(payloads, "image->text")[1].payload, payloads["text"])


@pytest.mark.slow
def test_one_model_trains_and_is_scored_on_every_direction(tmp_path, one_thread):
    """debug=smoke modality=all end to end, then scripts/evaluate.py's scoring reports all eight directions."""
    from unimodal.commands.evaluate import evaluate
    from unimodal.training.run import train

    run = train(compose(smoke_overrides(tmp_path, "modality=all", f"run_dir={tmp_path}/run")))
    metrics = evaluate([f"run={run}", "samples=1", "lm_samples=1", "progress=false"])
    assert list(metrics["directions"]) == EIGHT
    assert {"text", "image", "audio", "video"} <= set(metrics["lm_bits_per_token"]["seen"])
