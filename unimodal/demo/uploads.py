"""Files a person hands the page (uploads, recordings, chat attachments) -> prompt parts, with one-line errors.

Gradio sends an upload as a dict (``{"path": ..., "orig_name": ...}``, the file already in its upload folder);
the page reads it itself, so a file that is not what it claims to be gets a message naming it, not a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unimodal.errors import DataError, UnimodalError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SOUND_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
CLIP_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")
NAMES = {"image": "an image", "audio": "a sound", "video": "a clip"}


def upload_path(value: Any) -> Path | None:
    """The local file of an upload as gradio sends it (a dict with ``path``, a plain path, or nothing)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path")
        return Path(value) if value else None
    return Path(str(value))


def upload_name(value: Any) -> str:
    """The name the person's file had (what a message should call it), else the stored file's name."""
    if isinstance(value, dict) and value.get("orig_name"):
        return str(value["orig_name"])
    path = upload_path(value)
    return path.name if path is not None else "the upload"


def read_image(value: Any) -> np.ndarray:
    """An uploaded image -> uint8 ``[H, W, 3]``."""
    from unimodal.media import read_image as read_image_file

    try:
        return read_image_file(upload_path(value))
    except DataError as err:
        reason = "not an image file" if "cannot identify" in str(err) else str(err).split(": ", 1)[-1]
        raise DataError(f"{upload_name(value)} is not an image the page can read ({reason}); upload a PNG or JPEG") \
            from None


def read_sound(value: Any, sample_rate: int) -> np.ndarray:
    """An uploaded or recorded sound -> mono float32 at ``sample_rate``: libsndfile formats (WAV, FLAC, OGG),
    then anything FFmpeg reads (a browser's recording, MP3, M4A) through PyAV."""
    from unimodal.media import resample, try_read_audio

    path, name = upload_path(value), upload_name(value)
    wave, why = try_read_audio(path, sample_rate)
    if wave is not None:
        return wave
    if why == "empty":
        raise DataError(f"{name} holds no sound (the file or recording is empty); record or upload again")
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = int(stream.rate)
            frames = [frame.to_ndarray().astype(np.float32) for frame in container.decode(stream)]
    except Exception:  # PyAV raises many kinds (InvalidDataError, IndexError for no audio stream, ...)
        raise DataError(f"{name} is not a sound the page can read; upload a WAV, FLAC, OGG or MP3") from None
    if not frames:
        raise DataError(f"{name} holds no sound (no audio frames); record or upload again")
    # planar frames are [channels, samples]; packed ones [1, samples * channels]: averaging either way is mono
    wave = np.concatenate([frame.mean(axis=0) for frame in frames])
    return resample(wave.astype(np.float32), rate, sample_rate)


def read_clip(value: Any) -> np.ndarray:
    """An uploaded clip (GIF, MP4, WebM, ...) -> uint8 ``[T, H, W, 3]``."""
    from unimodal.media import read_video

    try:
        return read_video(upload_path(value))
    except DataError as err:
        raise DataError(f"{upload_name(value)} is not a clip the page can read ({str(err).split(': ', 1)[-1]}); "
                        f"upload a GIF, MP4 or WebM") from None


def kind_of(value: Any, media: list[str]) -> str:
    """Which medium a chat attachment is, by its name: ``image``, ``audio`` or ``video``; a modality this run
    does not have is refused, naming what it does have."""
    suffix = Path(upload_name(value)).suffix.lower()
    if suffix == ".gif":
        kind = "video" if "video" in media else "image"
    elif suffix in IMAGE_SUFFIXES:
        kind = "image"
    elif suffix in SOUND_SUFFIXES:
        kind = "audio"
    elif suffix in CLIP_SUFFIXES:
        kind = "video" if "video" in media else "audio" if suffix == ".webm" else "video"
    else:
        readable = [s for m in media for s in {"image": IMAGE_SUFFIXES, "audio": SOUND_SUFFIXES,
                                               "video": (".gif", *CLIP_SUFFIXES)}[m]]
        raise DataError(f"{upload_name(value)}: the page reads {', '.join(readable)} files in this run")
    check_medium(kind, media)
    return kind


def check_medium(kind: str, media: list[str]) -> None:
    """A prompt or output medium this run was not trained on -> a message naming what it has."""
    if kind != "text" and kind not in media:
        has = " and ".join(["text", *media])
        raise UnimodalError(f"this run has no {kind} (it was trained on {has}); "
                            f"use {' or '.join(NAMES[m] for m in media) or 'text'} instead")


def read_upload(value: Any, kind: str, sample_rate: int) -> np.ndarray:
    """One upload of a known medium -> what :meth:`Pipeline.generate` takes as a prompt part."""
    if kind == "image":
        return read_image(value)
    if kind == "audio":
        return read_sound(value, sample_rate)
    return read_clip(value)
