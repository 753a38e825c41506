"""Token shards: every sample of a split tokenized once, as one flat memmap plus an index.

A shard is a folder (one per split)::

    tokens.bin    uint16 (vocabulary <= 65,536 ids) or uint32: every sample's tokens, back to back
    index.npy     int64 [N, M, 2]: offset and length of sample n's modality m (order: shard.json "modalities")
    grids.npy     int64 [N, 2]: each AnyRes image's tile grid (rows, cols), only in shards of AnyRes runs
    shard.json    format, dtype, count, modalities, per-modality code shapes, tokenizer, data and vocabulary
                  fingerprints
    vocab.json    the vocabulary the tokenizers give, with its fingerprint
    samples.json  captions and (synthetic) attributes, for evaluation and debugging

Tokens are *local codes* (text ids, image grid codes, an AnyRes image's thumbnail then its tiles, audio ``[K, T]``
codes), not global ids: task
templates still compose each sample at load time (any direction, audio layout or condition drop from the
same shard) and the codec maps codes into the shared id space then. The dtype is chosen by the vocabulary
size, which bounds every local code.

A shard is written into ``<split>.partial-<pid>`` and renamed to ``<split>`` only when complete, so a
killed run never leaves a folder that looks whole; the next run rebuilds it. Reuse is keyed by the data and
tokenizer fingerprints; a shard built with others is refused, naming both.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unimodal.data.tasks import text_key
from unimodal.errors import DataError, VocabularyMismatch
from unimodal.tokenizers.anyres import AnyResImage
from unimodal.tokenizers.anyres_settings import flatten_anyres, unflatten_anyres
from unimodal.vocab import Vocabulary

FORMAT = 1
TOKENS, INDEX, META, VOCAB, SAMPLES = "tokens.bin", "index.npy", "shard.json", "vocab.json", "samples.json"
GRIDS = "grids.npy"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (half the disk and page cache of uint32), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 2 ** 16 else np.dtype(np.uint32)


class TokenShard:
    """One split, read through memmaps (nothing is read whole). Same interface as
    :class:`unimodal.data.tokens.TokenizedSet`: ``len``, ``payloads(i)``, ``captions``, ``attributes``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.meta = json.loads((self.folder / META).read_text())
            extra = json.loads((self.folder / SAMPLES).read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"{self.folder}: not a readable token shard ({err}); delete the folder to rebuild "
                            f"it") from None
        if self.meta.get("format") != FORMAT:
            raise DataError(f"{self.folder}: shard format {self.meta.get('format')}, this code reads {FORMAT}; "
                            f"delete the folder to rebuild it")
        self.captions: list[str] = extra["captions"]
        self.attributes: list[list[list[str]]] = extra["attributes"]
        self.modalities: list[str] = self.meta["modalities"]
        self.dtype = np.dtype(self.meta["dtype"])
        expected = int(self.meta["num_tokens"]) * self.dtype.itemsize
        size = (self.folder / TOKENS).stat().st_size if (self.folder / TOKENS).is_file() else -1
        if size != expected:
            raise DataError(f"{self.folder / TOKENS}: {size} bytes, shard.json promises {expected}; delete "
                            f"{self.folder} to rebuild it")
        self._tokens: np.ndarray | None = None
        self._index: np.ndarray | None = None
        self._grids: np.ndarray | None = None

    # Opened lazily and dropped when pickled: a DataLoader worker maps the files itself.
    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _tokens=None, _index=None, _grids=None)

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            count = int(self.meta["num_tokens"])
            self._tokens = (np.memmap(self.folder / TOKENS, dtype=self.dtype, mode="r", shape=(count,))
                            if count else np.zeros(0, self.dtype))
        return self._tokens

    @property
    def index(self) -> np.ndarray:
        if self._index is None:
            self._index = np.load(self.folder / INDEX, mmap_mode="r")
        return self._index

    def __len__(self) -> int:
        return int(self.meta["count"])

    def codes(self, index: int, modality: str) -> np.ndarray | AnyResImage:
        """Sample ``index``'s local codes of one modality (int64, in its code shape; AnyRes images as such)."""
        offset, length = (int(v) for v in self.index[index, self.modalities.index(modality)])
        flat = np.asarray(self.tokens[offset:offset + length], dtype=np.int64)
        shape = self.meta["shapes"][modality]
        if isinstance(shape, dict):   # {"anyres": one tile's code shape}: the grid is per sample
            if self._grids is None:
                self._grids = np.load(self.folder / GRIDS, mmap_mode="r")
            return unflatten_anyres(flat, shape["anyres"], tuple(int(n) for n in self._grids[index]))
        return flat if shape is None else flat.reshape(shape)

    def payloads(self, index: int) -> dict[str, Any]:
        return {name: self.codes(index, name) for name in self.modalities}

    def check(self, expect: dict[str, Any]) -> None:
        """Refuse this shard unless its shard.json has every ``expect`` value (tokenizer and data fingerprints)."""
        for key, value in expect.items():
            if self.meta.get(key) != value:
                raise VocabularyMismatch(
                    f"{self.folder}: token shard was built with {key} fingerprint(s) {self.meta.get(key)} but "
                    f"this run has {value}; point paths.shards_dir elsewhere, delete the folder, or use the "
                    f"tokenizers and data it was built with")


def write_shard(folder: str | Path, samples: Any, tokenizers: dict[str, Any], vocab: Vocabulary,
                expect: dict[str, Any], batch_size: int = 64, progress: bool = True,
                desc: str = "tokenize") -> TokenShard:
    """Encode every sample of a split (:class:`unimodal.data.sources.Samples`) with every tokenizer given
    (text always) into a shard at ``folder``, streaming one media batch at a time to disk."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(folder)
    tmp = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    dtype = token_dtype(vocab.size)
    media = [name for name in tokenizers if name != "text"]
    views = {m: list(c) for m, c in getattr(samples, "captions_for", {}).items() if m in media}
    modalities = ["text", *media, *(text_key(m) for m in views)]
    captions = list(samples.captions)
    text = tokenizers["text"].encode(captions)
    view_ids = {m: tokenizers["text"].encode(c) for m, c in views.items()}   # a medium's own captions
    index = np.zeros((len(samples), len(modalities), 2), dtype=np.int64)
    grids = np.zeros((len(samples), 2), dtype=np.int64)   # AnyRes tile grids (written when there are some)
    shapes: dict[str, Any] = {"text": None, **{text_key(m): None for m in views}}
    offset = 0
    bar = tqdm(total=len(samples), desc=desc, disable=not progress, unit="sample")
    with open(tmp / TOKENS, "wb") as handle:
        for start in range(0, len(samples), batch_size):
            stop = min(start + batch_size, len(samples))
            with torch.no_grad():
                batch = {name: _numpy(tokenizers[name].eval().encode(samples.media(name, start, stop)))
                         for name in media}
            for name, codes in batch.items():
                shape = ({"anyres": list(codes[0].thumbnail.shape)} if isinstance(codes, list)
                         else list(codes.shape[1:]))
                if shapes.setdefault(name, shape) != shape:
                    raise DataError(f"{name} tokenizer gave codes of shape {shape} after "
                                    f"{shapes[name]}; shards hold one code shape per modality")
            for row in range(stop - start):
                for codes in batch.values():
                    if isinstance(codes, list):
                        grids[start + row] = codes[row].grid
                parts = [np.asarray(text[start + row]), *(_flat(batch[name][row]) for name in media),
                         *(np.asarray(view_ids[m][start + row]) for m in views)]
                for column, part in enumerate(parts):
                    index[start + row, column] = offset, part.size
                    offset += part.size
                handle.write(np.concatenate(parts).astype(dtype).tobytes())
            bar.update(stop - start)
        handle.flush()
        os.fsync(handle.fileno())
    bar.close()
    np.save(tmp / INDEX, index)
    if any(isinstance(shape, dict) for shape in shapes.values()):
        np.save(tmp / GRIDS, grids)
    vocab.save(tmp / VOCAB)
    (tmp / SAMPLES).write_text(json.dumps({"captions": captions, "attributes": samples.attributes}))
    meta = {"format": FORMAT, "count": len(samples), "num_tokens": offset, "dtype": dtype.name,
            "modalities": modalities, "shapes": shapes, "vocab": vocab.fingerprint, **expect}
    (tmp / META).write_text(json.dumps(meta, indent=2))  # written last: the folder is complete from here on
    try:
        os.replace(tmp, folder)
    except OSError:  # another process renamed its complete copy there first: use that one
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / META).is_file():
            raise
    return TokenShard(folder)


def _numpy(codes: Any) -> np.ndarray | list[AnyResImage]:
    """A tokenizer's codes for a batch: a tensor, or one :class:`AnyResImage` per sample (AnyRes runs)."""
    return codes if isinstance(codes, list) else codes.cpu().numpy()


def _flat(codes: np.ndarray | AnyResImage) -> np.ndarray:
    return flatten_anyres(codes) if isinstance(codes, AnyResImage) else codes.reshape(-1)


def remove_stale_partials(folder: Path) -> None:
    """Delete ``<folder>.partial-<pid>`` left by runs that died (their pid is gone); live builders keep theirs."""
    for partial in folder.parent.glob(f"{folder.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
