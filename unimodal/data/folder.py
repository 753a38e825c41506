"""``data=folder``: a user's image folder with captions in ``metadata.jsonl`` (Hugging Face imagefolder).

A folder of sounds (``.wav``, ``.flac``, ...) is read by :mod:`unimodal.data.audio_folder` instead.

Each line of ``<data.path>/metadata.jsonl`` is ``{"file_name": "cats/01.png", "text": "a cat"}``; paths are
relative to the folder. Every image is fully decoded (PIL ``load()``, not just ``open()``), so a truncated,
empty or non-image file is caught here, skipped, and named in one log line; it never reaches a model.
Images are made RGB (transparency composited on white), centre-cropped to a square and resized to
``data.image_size``; with AnyRes on (``tokenizer.image.anyres.max_tiles``, which ``data.anyres`` follows) each
keeps its aspect ratio instead, scaled to fit its tile grid. A malformed metadata line is an error naming the file
and line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.data.audio_folder import is_audio_folder, load_audio_folder
from unimodal.data.audio_sets import AudioTextSet
from unimodal.data.images import ImageTextSet, hash_splits, images_to_channels, skipped_line
from unimodal.errors import ConfigError, DataError
from unimodal.media import try_read_image
from unimodal.tokenizers.anyres_settings import AnyResSettings

METADATA = "metadata.jsonl"
EXAMPLE_LINE = '{"file_name": "a.png", "text": "a caption"}'


def folder_root(data_cfg: Any) -> Path:
    if not data_cfg.path:
        raise ConfigError("data=folder needs data.path=<folder with images and metadata.jsonl>")
    root = Path(str(data_cfg.path)).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={data_cfg.path}: no such folder")
    if not (root / METADATA).is_file():
        raise DataError(f"{root / METADATA} is missing: data=folder needs one JSON line per image, "
                        f"like {EXAMPLE_LINE}")
    return root


def read_metadata(root: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``(file_name, text)`` per line; a line that is not such an object is an error naming file and line."""
    path = root / METADATA
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); each line must look like "
                            f"{EXAMPLE_LINE}") from None
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("file_name", "text")):
            raise DataError(f"{path}:{number}: needs string fields \"file_name\" and \"text\", like {EXAMPLE_LINE}")
        name = record["file_name"]
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"{path}:{number}: file_name {name!r} must be a path inside {root}")
        entries.append((name, record["text"]))
        if limit and len(entries) >= limit:
            break
    return entries


def load_folder(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, ImageTextSet | AudioTextSet]:
    """Read and verify every listed image (or sound: :mod:`unimodal.data.audio_folder`) once, log the skipped
    ones, then split by hash of the file name."""
    from tqdm.auto import tqdm

    root = folder_root(data_cfg)
    entries = read_metadata(root, data_cfg.limit)
    if is_audio_folder(entries):
        return load_audio_folder(root, entries, data_cfg, splits)
    size = int(data_cfg.image_size)
    anyres = AnyResSettings.from_config(data_cfg.get("anyres"))
    kept_size = None if anyres is None else (lambda height, width: anyres.kept_size(height, width, size))
    images, kept, skipped, seen = [], [], [], {}
    for name, text in tqdm(entries, desc="read images", unit="file", disable=None):
        if name not in seen:
            seen[name] = try_read_image(root / name, size, kept_size)
        image, reason = seen[name]
        if image is None:
            if reason and (name, reason) not in skipped:
                skipped.append((name, reason))
            continue
        images.append(image)
        kept.append((name, text))
    if skipped:
        print(skipped_line("unreadable files", root, skipped), flush=True)
    if not kept:
        raise DataError(f"{root / METADATA}: none of its {len(entries)} files is a readable image")
    images = images if anyres is not None else np.stack(images)
    everything = ImageTextSet(images_to_channels(images, int(data_cfg.channels)), [t for _, t in kept],
                              names=[n for n, _ in kept])
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
