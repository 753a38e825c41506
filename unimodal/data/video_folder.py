"""``data=folder`` with ``data.video_frames > 0`` (modality=video): video files captioned in ``metadata.jsonl``.

Same folder convention as images (``{"file_name": "clips/a.mp4", "text": "a dog runs"}``); files are gif
(Pillow) or anything FFmpeg reads (mp4, webm, ...; PyAV). Every file is decoded whole, so a broken one is
caught here, skipped and named in one log line. ``data.video_frames`` frames are sampled uniformly from each
clip, each centre-cropped to a square of ``data.image_size``. Splits by a hash of the file name, as images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unimodal.data.folder import METADATA, folder_root, read_metadata
from unimodal.data.images import hash_split, skipped_line, split_limit, to_channels
from unimodal.data.moving_fashion import VideoTextSet
from unimodal.errors import DataError


def read_clip(path: Path, num_frames: int, size: int) -> tuple[np.ndarray | None, str]:
    """uint8 ``[num_frames, size, size, 3]`` or ``(None, why it was skipped)``."""
    from PIL import Image, ImageOps

    from unimodal.video_io import read_video

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


def load_video_folder(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, VideoTextSet]:
    from tqdm.auto import tqdm

    root = folder_root(data_cfg)
    entries = read_metadata(root, data_cfg.limit)
    frames, size = int(data_cfg.video_frames), int(data_cfg.image_size)
    clips, kept, skipped = [], [], []
    for name, text in tqdm(entries, desc="read clips", unit="file", disable=None):
        clip, reason = read_clip(root / name, frames, size)
        if clip is None:
            skipped.append((name, reason))
            continue
        clips.append(clip)
        kept.append((name, text))
    if skipped:
        print(skipped_line("unreadable files", root, skipped), flush=True)
    if not kept:
        raise DataError(f"{root / METADATA}: none of its {len(entries)} files is a readable video")
    videos = np.stack(clips)
    videos = to_channels(videos.reshape(-1, size, size, 3), int(data_cfg.channels)).reshape(
        len(clips), frames, size, size, -1)
    names = [n for n, _ in kept]
    result = {}
    for split in splits:
        indices = hash_split(names, split)[:split_limit(data_cfg, split)]
        if not indices:
            raise DataError(f"data=folder: the {split} split is empty ({len(kept)} usable clips); a folder needs "
                            f"at least 3 readable clips")
        result[split] = VideoTextSet(videos[indices], [kept[i][1] for i in indices])
    return result
