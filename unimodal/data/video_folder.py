"""``data=folder`` with ``data.video_frames > 0`` (modality=video): video files captioned in ``metadata.jsonl``.

Same folder convention as images (``{"file_name": "clips/a.mp4", "text": "a dog runs"}``); files are gif
(Pillow) or anything FFmpeg reads (mp4, webm, ...; PyAV). Every file is decoded whole, so a broken one is
caught here, skipped and named in one log line. ``data.video_frames`` frames are sampled uniformly from each
clip, each centre-cropped to a square of ``data.image_size``. Splits by a hash of the file name, as images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unimodal.data.folder import METADATA, folder_root, read_metadata
from unimodal.data.images import hash_split, skipped_line, split_limit
from unimodal.data.moving_fashion import VideoTextSet
from unimodal.errors import DataError
from unimodal.media import to_channels, try_read_clip


def load_video_folder(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, VideoTextSet]:
    from tqdm.auto import tqdm

    root = folder_root(data_cfg)
    entries = read_metadata(root, data_cfg.limit)
    frames, size = int(data_cfg.video_frames), int(data_cfg.image_size)
    clips, kept, skipped = [], [], []
    for name, text in tqdm(entries, desc="read clips", unit="file", disable=None):
        clip, reason = try_read_clip(root / name, frames, size)
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
