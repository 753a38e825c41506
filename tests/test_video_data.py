"""Video data: moving Fashion-MNIST clips and the clip helpers (GIF/MP4 round trips)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unimodal.config import compose
from unimodal.data.images import FASHION_MNIST_ROOT
from unimodal.data.moving_fashion import CANVAS, item_path
from unimodal.errors import DataError
from unimodal.media import read_video, write_gif, write_mp4

has_fashion = pytest.mark.skipif(not Path(FASHION_MNIST_ROOT, "train-images-idx3-ubyte.gz").is_file(),
                                 reason="needs Debian's dataset-fashion-mnist")


def test_items_bounce_inside_the_canvas():
    rng = np.random.default_rng(0)
    for _ in range(50):
        corners, direction = item_path(rng, 16)
        assert corners.min() >= 0 and corners.max() <= CANVAS - 28
        assert direction in ("left", "right", "up", "down")


@has_fashion
def test_moving_fashion_mnist_clips():
    from unimodal.data.sources import data_fingerprint, load_samples

    cfg = compose(["modality=video", "data=moving_fashion_mnist", "data.num_train=6", "data.num_val=2"])
    samples = load_samples(cfg.data, ("train", "val"))
    clips = samples["train"].media("video", 0, 6)
    assert tuple(clips.shape) == (6, 16, 1, 32, 32) and float(clips.max()) > 0.5
    assert all(" moves " in caption for caption in samples["train"].captions)
    again = load_samples(cfg.data, ("train",))["train"]
    assert np.array_equal(again.videos, samples["train"].videos) and again.captions == samples["train"].captions
    assert data_fingerprint(cfg.data) != data_fingerprint(compose(["modality=video", "data=moving_fashion_mnist"]).data)


def test_gif_and_mp4_round_trip(tmp_path):
    clip = np.zeros((5, 16, 16, 3), dtype=np.uint8)
    for t in range(5):
        clip[t, 4:10, 2 + 2 * t:8 + 2 * t] = 255
    gif = read_video(write_gif(clip, tmp_path / "a.gif", fps=8.0, scale=2))
    assert gif.shape == (5, 32, 32, 3) and np.array_equal(gif[:, ::2, ::2], clip)
    mp4 = write_mp4(clip, tmp_path / "a.mp4", fps=8.0, scale=2)
    if mp4 is not None:   # PyAV with an H.264 encoder
        frames = read_video(mp4)
        assert frames.shape == (5, 32, 32, 3) and np.abs(frames.astype(int) - gif).mean() < 20
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match="bad.mp4"):
        read_video(tmp_path / "bad.mp4")


def test_video_folder_samples_frames_and_skips_broken_files(tmp_path, capsys):
    import json

    from unimodal.data.sources import load_samples

    clip = np.zeros((12, 20, 24, 3), dtype=np.uint8)
    for t in range(12):
        clip[t, 5:12, t:t + 6] = 200
    lines = []
    for k in range(4):
        write_gif(clip, tmp_path / f"c{k}.gif", fps=8.0)
        lines.append({"file_name": f"c{k}.gif", "text": f"a box moves right {k}"})
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 64)
    lines.append({"file_name": "bad.mp4", "text": "broken"})
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    cfg = compose(["modality=video", "data=folder", f"data.path={tmp_path}", "data.video_frames=5",
                   "data.image_size=16"])
    samples = load_samples(cfg.data, ("train", "val", "test"))
    assert "bad.mp4" in capsys.readouterr().out
    assert sum(len(s) for s in samples.values()) == 4
    assert tuple(samples["train"].media("video", 0, 1).shape) == (1, 5, 3, 16, 16)
