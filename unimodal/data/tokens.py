"""Tokenize a dataset once: per-sample local codes for every modality, cached on disk.

The cache is keyed by the data fingerprint and every tokenizer's fingerprint, written to a
temporary name and renamed only when complete (a killed run never leaves a file that looks whole).
Task templates are applied at load time, so one cache serves every direction and layout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unimodal.errors import VocabularyMismatch


@dataclass
class TokenizedSet:
    text: list[np.ndarray]
    media: dict[str, np.ndarray] = field(default_factory=dict)   # modality -> [N, ...] local codes
    captions: list[str] = field(default_factory=list)
    attributes: list[list[list[str]]] = field(default_factory=list)  # [(colour, shape)] per sample

    def __len__(self) -> int:
        return len(self.text)

    def payloads(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text[index]}
        for name, codes in self.media.items():
            out[name] = codes[index]
        return out

    # --- persistence ---------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lengths = np.array([len(t) for t in self.text], dtype=np.int64)
        arrays = {"text_flat": np.concatenate(self.text).astype(np.int32) if len(self.text) else
                  np.zeros(0, np.int32), "text_lengths": lengths}
        for name, codes in self.media.items():
            arrays[f"media_{name}"] = codes.astype(np.int32)
        meta = dict(meta, captions=self.captions, attributes=self.attributes)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, expect: dict[str, Any]) -> TokenizedSet:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            for key, value in expect.items():
                if meta.get(key) != value:
                    raise VocabularyMismatch(
                        f"{path}: token cache was built with {key}={meta.get(key)} but this run has "
                        f"{key}={value}; delete the cache file or use the matching tokenizers")
            offsets = np.concatenate([[0], np.cumsum(data["text_lengths"])])
            flat = data["text_flat"].astype(np.int64)
            text = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
            media = {key[len("media_"):]: data[key].astype(np.int64) for key in data.files
                     if key.startswith("media_")}
        return cls(text, media, meta.get("captions", []), meta.get("attributes", []))


def tokenize_samples(samples: Any, tokenizers: dict[str, Any], batch_size: int = 64, progress: bool = True,
                     desc: str = "tokenize") -> TokenizedSet:
    """Encode every sample of a split (:class:`unimodal.data.sources.Samples`) with every tokenizer given
    (text always), one media batch at a time."""
    captions = list(samples.captions)
    text = [np.asarray(ids, dtype=np.int64) for ids in tokenizers["text"].encode(captions)]
    media: dict[str, list[np.ndarray]] = {name: [] for name in tokenizers if name != "text"}
    bar = tqdm(total=len(samples), desc=desc, disable=not progress, unit="sample")
    for start in range(0, len(samples), batch_size):
        stop = min(start + batch_size, len(samples))
        with torch.no_grad():
            for name, codes in media.items():
                codes.append(tokenizers[name].eval().encode(samples.media(name, start, stop)).cpu().numpy())
        bar.update(stop - start)
    bar.close()
    return TokenizedSet(text, {k: np.concatenate(v) for k, v in media.items()}, captions, samples.attributes)


def tokenize_scenes(world: Any, scenes: list[Any], tokenizers: dict[str, Any], batch_size: int = 64,
                    progress: bool = True, desc: str = "tokenize") -> TokenizedSet:
    """Synthetic scenes, rendered and encoded: :func:`tokenize_samples` over ``SceneSamples``."""
    from unimodal.data.sources import SceneSamples

    return tokenize_samples(SceneSamples(world, scenes), tokenizers, batch_size, progress, desc)


def images_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 ``[H, W, C]`` images -> float ``[B, C, H, W]`` in [0, 1]."""
    batch = np.stack([np.asarray(im) for im in images]).astype(np.float32) / 255.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def tensor_to_images(batch: torch.Tensor) -> list[np.ndarray]:
    """float ``[B, C, H, W]`` in [0, 1] -> uint8 ``[H, W, C]`` arrays."""
    arr = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)
