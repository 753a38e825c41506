"""Clips in and out of a run: prompt clips -> codes, codes -> frames, and GIF / MP4 files.

MP4 goes through PyAV (``av``, FFmpeg's libraries in a wheel); without it, or without an H.264 encoder in
its build, only the GIF (Pillow) is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unimodal.errors import DataError
from unimodal.sequence import Segment

log = logging.getLogger(__name__)


def fit_clip(clip: np.ndarray, num_frames: int, size: int) -> np.ndarray:
    """Any uint8 ``[T, H, W, 3]`` clip -> ``num_frames`` frames sampled uniformly, each ``size`` x ``size``."""
    from unimodal.pipeline import fit_image

    clip = np.asarray(clip)
    index = np.round(np.linspace(0, len(clip) - 1, num_frames)).astype(np.int64)
    return np.stack([fit_image(np.asarray(clip[i], dtype=np.uint8)[..., :3], size) for i in index])


@torch.no_grad()
def video_segment(tokenizer: Any, clip: np.ndarray) -> Segment:
    """A prompt clip as a video segment of the run's tokenizer."""
    from unimodal.data.video_sources import videos_to_tensor

    clip = fit_clip(clip, int(tokenizer.num_frames), int(tokenizer.image_size))
    device = next(tokenizer.parameters()).device
    codes = tokenizer.encode(videos_to_tensor([clip]).to(device))
    return Segment("video", codes[0].cpu().numpy())


@torch.no_grad()
def decode_video_segment(tokenizer: Any, segment: Segment) -> np.ndarray:
    from unimodal.data.video_sources import tensor_to_videos

    codes = torch.as_tensor(segment.payload)[None].to(next(tokenizer.parameters()).device)
    return tensor_to_videos(tokenizer.decode(codes))[0]


def read_video(path: str | Path) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` of a GIF (Pillow) or any file FFmpeg reads (mp4, webm, ...; PyAV)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image, ImageSequence
            with Image.open(path) as image:
                frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
        else:
            import av
            with av.open(str(path)) as container:
                frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except ImportError:
        raise DataError(f"{path}: reading {path.suffix} video needs PyAV (pip install av)") from None
    except Exception as err:  # PIL and FFmpeg raise many kinds for a broken file
        raise DataError(f"{path}: cannot read video ({type(err).__name__}: {err})") from None
    if not frames:
        raise DataError(f"{path}: no video frames")
    return np.stack(frames)


def write_gif(clip: np.ndarray, path: str | Path, fps: float, scale: int = 1) -> Path:
    from PIL import Image

    frames = [Image.fromarray(_grey_to_rgb(frame)).resize((frame.shape[1] * scale, frame.shape[0] * scale),
                                                          Image.NEAREST) for frame in clip]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / max(fps, 1e-3)), loop=0)
    return Path(path)


def write_mp4(clip: np.ndarray, path: str | Path, fps: float, scale: int = 1) -> Path | None:
    """H.264 MP4 through PyAV; None (and a log line) when PyAV or the encoder is missing."""
    from fractions import Fraction

    try:
        import av
    except ImportError:
        log.info("PyAV is not installed: no MP4 (pip install av)")
        return None
    frames = np.stack([_grey_to_rgb(frame) for frame in clip]).repeat(scale, axis=1).repeat(scale, axis=2)
    height, width = (frames.shape[1] // 2) * 2, (frames.shape[2] // 2) * 2   # yuv420p needs even sides
    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame[:height, :width], format="rgb24")))
            container.mux(stream.encode(None))
    except Exception as err:  # e.g. a build without libx264
        log.info("no MP4 encoder available (%s): wrote the GIF only", err)
        Path(path).unlink(missing_ok=True)
        return None
    return Path(path)


def _grey_to_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.uint8)
    return np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame
