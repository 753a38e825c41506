"""``data=webdataset data.urls="<dir>/{00000..00099}.tar"``: image-caption pairs in WebDataset tar shards.

The layout img2dataset writes: in each tar, ``{key}.jpg`` (or ``.png``, ``.jpeg``, ``.webp``) beside ``{key}.txt``
and/or ``{key}.json`` (its ``"caption"``, or ``"text"``). ``data.urls`` takes brace ranges and several patterns
joined by ``::`` (WebDataset's own syntax); local paths, or any URL WebDataset opens (``pipe:``, http).

The tars are read once, by the ``webdataset`` library, when stage 0 and the token shards need the data (rank 0);
training then reads token shards. Every image is fully decoded here; an unreadable member (a corrupt image, no
caption, a tar that breaks off) is skipped and named in one log line, and nothing else stops. Splits are
train/val/test by a hash of the sample key, as for ``data=folder``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.data.images import ImageTextSet, hash_splits, skipped_line
from unimodal.errors import ConfigError, DataError
from unimodal.media import decode_image, to_channels

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def shard_urls(data_cfg: Any) -> list[str]:
    """``data.urls`` expanded: every tar, in order."""
    try:
        import webdataset  # noqa: F401  (read_tars uses it; checked here, where a run starts)
        from braceexpand import braceexpand
    except ImportError:
        raise ConfigError("data=webdataset needs the webdataset package: pip install 'unimodal[stream]'") from None

    if not data_cfg.get("urls"):
        raise ConfigError('data=webdataset needs data.urls, e.g. data.urls="<dir>/{00000..00099}.tar"')
    urls = [url for pattern in str(data_cfg.urls).split("::") for url in braceexpand(pattern)]
    local = [url for url in urls if "://" not in url and not url.startswith("pipe:")]
    missing = [url for url in local if not Path(url).is_file()]
    if missing:
        raise DataError(f"data.urls: {len(missing)} of {len(urls)} tars do not exist, e.g. {missing[0]}; check the "
                        f"folder and the brace range")
    return urls


def caption_of(sample: dict[str, Any]) -> str | None:
    if isinstance(sample.get("txt"), bytes):
        return sample["txt"].decode("utf-8", errors="replace").strip() or None
    if isinstance(sample.get("json"), bytes):
        try:
            record = json.loads(sample["json"])
        except ValueError:
            return None
        text = record.get("caption") or record.get("text") if isinstance(record, dict) else None
        return text.strip() if isinstance(text, str) and text.strip() else None
    return None


def read_tars(data_cfg: Any) -> tuple[list[str], list[np.ndarray], list[str], list[tuple[str, str]]]:
    """``(keys, images, captions, skipped)`` of every sample the tars hold (up to ``data.limit``)."""
    import webdataset as wds

    size, limit = int(data_cfg.image_size), data_cfg.get("limit")
    keys, images, captions, skipped = [], [], [], []

    def broken(err: Exception) -> bool:   # a tar that cannot be read on: name it, go on with the next
        skipped.append(((str(err).splitlines() or [type(err).__name__])[0][:160], "unreadable tar"))
        return True

    dataset = wds.WebDataset(shard_urls(data_cfg), shardshuffle=False, handler=broken, empty_check=False,
                             nodesplitter=lambda urls: urls)
    for sample in dataset:
        where = f"{Path(str(sample.get('__url__', ''))).name}:{sample['__key__']}"
        extension = next((ext for ext in IMAGE_EXTENSIONS if isinstance(sample.get(ext), bytes)), None)
        caption = caption_of(sample)
        if extension is None or caption is None:
            skipped.append((where, "no image" if extension is None else "no caption"))
            continue
        image, reason = decode_image(io.BytesIO(sample[extension]), size)
        if image is None:
            skipped.append((f"{where}.{extension}", reason))
            continue
        keys.append(where)   # tar name and key: the splits do not move with the folder
        images.append(image)
        captions.append(caption)
        if limit and len(images) >= int(limit):
            break
    return keys, images, captions, skipped


def load_webdataset(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, ImageTextSet]:
    keys, images, captions, skipped = read_tars(data_cfg)
    if skipped:
        print(skipped_line("unreadable samples", data_cfg.urls, skipped), flush=True)
    if not images:
        raise DataError(f"data.urls={data_cfg.urls}: no readable image-caption pair in its tars ({len(skipped)} "
                        f"skipped); each sample needs {{key}}.jpg|png and {{key}}.txt or {{key}}.json")
    everything = ImageTextSet(to_channels(np.stack(images), int(data_cfg.channels)), captions, names=keys)
    return hash_splits(everything, data_cfg, splits, "webdataset", "the tars need at least 3 readable samples")


def webdataset_signature(data_cfg: Any) -> str:
    """What the tars hold, for cache keys: names and sizes of local tars, the URLs of others."""
    from unimodal.tokenizers.base import hash_json

    entries = []
    for url in shard_urls(data_cfg):
        path = Path(url)
        entries.append([path.name, path.stat().st_size] if "://" not in url and path.is_file() else url)
    return hash_json(entries)[:16]
