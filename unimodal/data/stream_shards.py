"""Token shards that stream: ``paths.shards_format=litdata``, from a local disk or object storage.

litdata rather than WebDataset: our batch samplers choose samples by index (and resume by counting batches), and
litdata's StreamingDataset reads any item by index from chunks on a disk or in object storage (``s3://``,
``gs://``, fetched on demand into a local cache), where WebDataset streams a tar front to back.

A streaming shard is made from a memmap shard of the same split (``unimodal/data/shards.py``, tokenized once
on local disk): each sample becomes one litdata item (its index and each modality's local codes), written by
``litdata.optimize`` into chunks, with the memmap shard's ``shard.json``, ``vocab.json`` and ``samples.json``
beside them, ``shard.json`` last (a folder without it is incomplete and is rebuilt). It has the same interface,
the same fingerprints and the same refusals as a memmap shard, so training reads either alike.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.data.shards import META, SAMPLES, VOCAB, TokenShard
from unimodal.errors import ConfigError, DataError

STREAM = "litdata"   # the ``stream`` entry of a streaming shard's shard.json


def is_remote(location: str) -> bool:
    return "://" in location


def stream_complete(location: str) -> bool:
    return _exists(f"{location}/{META}")


_opened: dict[str, TokenShard] = {}   # per writer process: the memmap shard items are copied from


def _item(folder: str, index: int) -> dict[str, Any]:
    if folder not in _opened:
        _opened[folder] = TokenShard(folder)
    shard = _opened[folder]
    offsets = shard.index[index]
    item: dict[str, Any] = {"index": index}
    for column, name in enumerate(shard.modalities):
        offset, length = (int(v) for v in offsets[column])
        item[name] = np.asarray(shard.tokens[offset:offset + length])
    return item


def _litdata() -> Any:
    try:
        import litdata
    except ImportError:
        raise ConfigError("paths.shards_format=litdata needs the litdata package: pip install 'unimodal[stream]'") \
            from None
    return litdata


def write_stream_shard(location: str, shard: TokenShard) -> StreamTokenShard:
    """Every sample of ``shard`` as litdata chunks at ``location`` (a folder or an object-store URL)."""
    optimize = _litdata().optimize

    remote = is_remote(location)
    target = location if remote else f"{location}.partial-{os.getpid()}"
    if not remote:
        shutil.rmtree(target, ignore_errors=True)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    # One worker, in order: item i is sample i (checked again on every read).
    optimize(fn=partial(_item, str(shard.folder)), inputs=list(range(len(shard))), output_dir=target,
             chunk_bytes="64MB", num_workers=1, verbose=False, mode="overwrite", start_method="fork")
    for name in (VOCAB, SAMPLES, META):   # shard.json last: from here on the shard is complete
        _write(f"{target}/{name}", (shard.folder / name).read_text())
    if not remote:
        shutil.rmtree(location, ignore_errors=True)
        os.replace(target, location)
    return StreamTokenShard(location)


class StreamTokenShard:
    """A streaming shard, read through ``litdata.StreamingDataset``: the interface of ``TokenShard`` (``len``,
    ``payloads(i)``, ``captions``, ``attributes``, ``check``)."""

    def __init__(self, location: str | Path, cache_dir: str | None = None) -> None:
        self.folder = location = str(location)
        try:
            self.meta = json.loads(_read(f"{location}/{META}"))
            extra = json.loads(_read(f"{location}/{SAMPLES}"))
        except (OSError, ValueError) as err:
            raise DataError(f"{location}: not a readable streaming token shard ({err}); delete it to rebuild it") \
                from None
        self.captions: list[str] = extra["captions"]
        self.attributes: list[list[list[str]]] = extra["attributes"]
        self.modalities: list[str] = self.meta["modalities"]
        self.cache_dir = cache_dir
        self._items: Any = None

    def __getstate__(self) -> dict[str, Any]:   # a DataLoader worker opens its own reader
        return dict(self.__dict__, _items=None)

    @property
    def items(self) -> Any:
        if self._items is None:
            self._items = _litdata().StreamingDataset(self.folder, cache_dir=self.cache_dir)
        return self._items

    def __len__(self) -> int:
        return int(self.meta["count"])

    def payloads(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        if int(item["index"]) != index:
            raise DataError(f"{self.folder}: item {index} holds sample {item['index']}; delete it to rebuild it")
        out = {}
        for name in self.modalities:
            flat = np.asarray(item[name], dtype=np.int64)
            shape = self.meta["shapes"][name]
            out[name] = flat if shape is None else flat.reshape(shape)
        return out

    def codes(self, index: int, modality: str) -> np.ndarray:
        return self.payloads(index)[modality]

    def check(self, expect: dict[str, Any]) -> None:
        TokenShard.check(self, expect)   # the same refusal, naming both fingerprints


def _read(location: str) -> str:
    if not is_remote(location):
        return Path(location).read_text()
    return _remote(location, "r")


def _write(location: str, text: str) -> None:
    if not is_remote(location):
        Path(location).write_text(text)
        return
    _remote(location, "w", text)


def _exists(location: str) -> bool:
    if not is_remote(location):
        return Path(location).is_file()
    import fsspec

    return fsspec.core.url_to_fs(location)[0].exists(location)


def _remote(location: str, mode: str, text: str = "") -> str:
    try:
        import fsspec
    except ImportError:
        raise ConfigError(f"{location}: object-store shards need fsspec and its backend (e.g. pip install s3fs)") \
            from None
    with fsspec.open(location, mode) as handle:
        if mode == "w":
            handle.write(text)
            return ""
        return handle.read()
