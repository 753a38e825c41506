"""``data=folder``: a user's folder of images, sounds or clips with captions in ``metadata.jsonl``
(:mod:`unimodal.data.listing`).

Clips when ``data.video_frames > 0`` (modality=video: :mod:`unimodal.data.video_folder`), sounds when most listed
files are sounds (:mod:`unimodal.data.audio_folder`), images otherwise. Every image is fully decoded (PIL
``load()``, not just ``open()``), so a truncated, empty or non-image file is caught, skipped and named in one log
line; it never reaches a model. Images are made RGB (transparency composited on white), centre-cropped to a square
and resized to ``data.image_size``; with AnyRes on (``tokenizer.image.anyres.max_tiles``, which ``data.anyres``
follows) each keeps its aspect ratio instead, scaled to fit its tile grid.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Any

import numpy as np

from unimodal.data.audio_folder import is_audio_folder, load_audio_folder
from unimodal.data.audio_sets import AudioTextSet
from unimodal.data.images import ImageTextSet, hash_splits, images_to_channels
from unimodal.data.listing import METADATA, folder_root, read_listed, read_metadata
from unimodal.data.moving_fashion import VideoTextSet
from unimodal.data.video_folder import load_video_folder
from unimodal.data.video_sources import clips_enabled
from unimodal.errors import DataError
from unimodal.media import try_read_image
from unimodal.tokenizers.anyres_settings import AnyResSettings


def load_folder(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, ImageTextSet | AudioTextSet | VideoTextSet]:
    """Read and verify every listed file once, log the skipped ones, then split by hash of the file name."""
    root = folder_root(data_cfg)
    entries = read_metadata(root, data_cfg.limit)
    if clips_enabled(data_cfg):  # modality=video: video files, frames sampled uniformly
        return load_video_folder(root, entries, data_cfg, splits)
    if is_audio_folder(entries):
        return load_audio_folder(root, entries, data_cfg, splits)
    size = int(data_cfg.image_size)
    anyres = AnyResSettings.from_config(data_cfg.get("anyres"))
    kept_size = None if anyres is None else (lambda height, width: anyres.kept_size(height, width, size))
    kept, read = read_listed(root, entries, partial(try_read_image, size=size, kept_size=kept_size), "images")
    if not kept:
        raise DataError(f"{root / METADATA}: none of its {len(entries)} files is a readable image")
    images = [read[name] for name, _ in kept]
    everything = ImageTextSet(images_to_channels(images if anyres is not None else np.stack(images),
                                                 int(data_cfg.channels)),
                              [t for _, t in kept], names=[n for n, _ in kept])
    return hash_splits(everything, data_cfg, splits, "folder", "a folder needs at least 3 readable images")


def folder_signature(data_cfg: Any) -> str:
    """What the folder holds (metadata bytes, file names and sizes), for cache keys: not where it is."""
    root = folder_root(data_cfg)
    digest = hashlib.sha256((root / METADATA).read_bytes())
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != METADATA):
        digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
    if is_audio_folder(read_metadata(root, data_cfg.limit)):   # sounds: also how they are resampled and cut
        digest.update(f"audio {data_cfg.sample_rate} {data_cfg.audio_seconds}".encode())
    return digest.hexdigest()[:16]
