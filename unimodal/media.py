"""Media in and out of arrays: pixel, wave and clip conversions, and reading and writing media files.

Arrays: images uint8 ``[H, W, C]``, waves float32 1-D in [-1, 1], clips uint8 ``[T, H, W, C]``; tensors: images
float ``[B, C, H, W]`` and clips ``[B, T, C, H, W]`` in [0, 1] (what tokenizers take). Files: images through Pillow,
sounds through soundfile (libsndfile), GIF through Pillow, MP4/WebM and anything FFmpeg reads through PyAV (``av``;
without it, or without an H.264 encoder in its build, only the GIF is written). Readers come in two kinds: ``read_*``
raise a one-line :class:`~unimodal.errors.DataError` (a file the user named), ``try_read_*`` return ``(None, why)``
(a data folder, where a bad file is skipped and named).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from unimodal.errors import ConfigError, DataError

log = logging.getLogger(__name__)
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


# --- pixels ------------------------------------------------------------------------------
def images_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 ``[H, W, C]`` images -> float ``[B, C, H, W]`` in [0, 1]."""
    batch = np.stack([np.asarray(im) for im in images]).astype(np.float32) / 255.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def tensor_to_images(batch: torch.Tensor) -> list[np.ndarray]:
    """float ``[B, C, H, W]`` in [0, 1] -> uint8 ``[H, W, C]`` arrays."""
    arr = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


def videos_to_tensor(videos: list[np.ndarray]) -> torch.Tensor:
    """uint8 ``[T, H, W, C]`` clips -> float ``[B, T, C, H, W]`` in [0, 1]."""
    batch = np.stack([np.asarray(v) for v in videos]).astype(np.float32) / 255.0
    return torch.from_numpy(batch).permute(0, 1, 4, 2, 3).contiguous()


def tensor_to_videos(batch: torch.Tensor) -> list[np.ndarray]:
    """float ``[B, T, C, H, W]`` in [0, 1] -> uint8 ``[T, H, W, C]`` clips."""
    arr = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
    return list(arr)


def to_channels(images: np.ndarray, channels: int, key: str = "data.channels") -> np.ndarray:
    """uint8 ``[N, H, W, C]`` -> ``channels`` channels (grey is repeated; RGB -> grey uses ITU-R 601 luma)."""
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 3 and channels == 1:
        luma = images.astype(np.float32) @ np.array(LUMA, dtype=np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise ConfigError(f"{key}={channels}: images have {have} channels; use 1 (grey) or 3 (RGB)")


def fit_image(image: np.ndarray, size: int) -> np.ndarray:
    """Any RGB image -> ``size`` x ``size`` (box filter when shrinking), what the image tokenizer takes."""
    if image.shape[:2] == (size, size):
        return image
    from PIL import Image

    resized = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((size, size), Image.BOX)
    return np.asarray(resized.convert("RGB"))


def fit_clip(clip: np.ndarray, num_frames: int, size: int) -> np.ndarray:
    """Any uint8 ``[T, H, W, 3]`` clip -> ``num_frames`` frames sampled uniformly, each ``size`` x ``size``."""
    clip = np.asarray(clip)
    index = np.round(np.linspace(0, len(clip) - 1, num_frames)).astype(np.int64)
    return np.stack([fit_image(np.asarray(clip[i], dtype=np.uint8)[..., :3], size) for i in index])


def _grey_to_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.uint8)
    return np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame


# --- waves -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _resampler(source_rate: int, target_rate: int) -> torch.nn.Module:
    # The module builds its sinc kernel once; torchaudio.functional.resample rebuilds it on every call
    # (0.15 s for 22,050 -> 16,000 Hz, 50x the resampling itself).
    import torchaudio

    return torchaudio.transforms.Resample(source_rate, target_rate)


@torch.no_grad()
def resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 ``wave`` from ``source_rate`` to ``target_rate`` (torchaudio's windowed-sinc resampler)."""
    if source_rate == target_rate:
        return wave.astype(np.float32, copy=False)
    tensor = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one clip is too small to split: on a busy 2-core box 2 threads ran 40x slower
    try:
        return _resampler(int(source_rate), int(target_rate))(tensor).numpy()
    finally:
        torch.set_num_threads(threads)


# --- image files -------------------------------------------------------------------------
def read_image(path: str | Path) -> np.ndarray:
    """uint8 ``[H, W, 3]`` of an image file."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"{path}: cannot read image ({err})") from None


def try_read_image(path: Path, size: int, kept_size: Callable[[int, int], tuple[int, int]] | None = None
                   ) -> tuple[np.ndarray | None, str]:
    """uint8 ``[size, size, 3]`` (transparency on white, centre-cropped to a square) or ``(None, why it was
    skipped)``. With ``kept_size`` ((height, width) -> (height, width)) the aspect ratio is kept instead: no crop,
    resized to what it gives. Every byte is decoded, so a truncated file is caught here."""
    if not path.is_file():
        return None, "missing"
    if path.stat().st_size == 0:
        return None, "empty"
    return decode_image(path, size, kept_size)


def decode_image(source: Path | BinaryIO, size: int, kept_size: Callable[[int, int], tuple[int, int]] | None = None
                 ) -> tuple[np.ndarray | None, str]:
    """An image file or stream (a tar member), fully decoded as :func:`try_read_image` does: uint8
    ``[size, size, 3]`` or ``(None, why it is unreadable)``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(source) as handle:
            handle.load()   # decodes every byte: open() alone reads only the header
            image = ImageOps.exif_transpose(handle)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            if kept_size is not None:
                height, width = kept_size(image.height, image.width)
                image = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
            else:
                image = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
            return np.asarray(image, dtype=np.uint8), ""
    except UnidentifiedImageError:
        return None, "not an image"
    except Image.DecompressionBombError:
        return None, "too large"
    except Exception as err:  # PIL's decoders raise OSError, SyntaxError, ValueError, ...
        return None, "truncated" if "truncated" in str(err).lower() else f"unreadable: {type(err).__name__}"


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """A PNG of uint8 ``[H, W, C]``, small images upscaled (nearest) so that people can see them."""
    from PIL import Image

    scale = max(1, 256 // image.shape[0])
    pixels = image[..., 0] if image.shape[-1] == 1 else image   # grey images come as [H, W, 1]
    Image.fromarray(pixels).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST).save(path)
    return Path(path)


# --- sound files -------------------------------------------------------------------------
def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 at ``sample_rate`` of a sound file."""
    import soundfile as sf
    try:
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as err:
        raise DataError(f"{path}: cannot read audio ({err})") from None
    wave = wave.mean(axis=1)
    if rate != sample_rate:
        import torchaudio.functional as AF
        wave = AF.resample(torch.from_numpy(wave), rate, sample_rate).numpy()
    return wave


def try_read_audio(path: Path, sample_rate: int) -> tuple[np.ndarray | None, str]:
    """Mono float32 at ``sample_rate`` or ``(None, why it was skipped)``. Read with soundfile (libsndfile):
    torchaudio 2.11's own loader needs torchcodec, which is not a dependency here."""
    import soundfile

    if not path.is_file():
        return None, "missing"
    if path.stat().st_size == 0:
        return None, "empty"
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises LibsndfileError / RuntimeError for anything it cannot parse
        return None, f"unreadable: {type(err).__name__}"
    if data.shape[0] == 0:
        return None, "empty"
    return resample(data.mean(axis=1), int(rate), sample_rate), ""


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV."""
    import soundfile

    soundfile.write(str(path), np.clip(wave, -1.0, 1.0), int(sample_rate), subtype="PCM_16")


# --- video files -------------------------------------------------------------------------
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


def try_read_clip(path: Path, num_frames: int, size: int) -> tuple[np.ndarray | None, str]:
    """uint8 ``[num_frames, size, size, 3]`` (frames sampled uniformly, centre-cropped to a square) or
    ``(None, why it was skipped)``."""
    from PIL import Image, ImageOps

    if not path.is_file():
        return None, "missing"
    if path.stat().st_size == 0:
        return None, "empty"
    try:
        frames = read_video(path)
    except DataError as err:
        return None, str(err).split(": ", 1)[-1][:60]
    index = np.round(np.linspace(0, len(frames) - 1, num_frames)).astype(np.int64)
    fitted = [np.asarray(ImageOps.fit(Image.fromarray(frames[i]).convert("RGB"), (size, size),
                                      Image.Resampling.LANCZOS)) for i in index]
    return np.stack(fitted), ""


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
