"""Tokenized samples in memory: per-sample local codes for every modality.

Training reads the on-disk form, :class:`unimodal.data.shards.TokenShard` (same interface); this one serves
small sets built on the fly (tests, tools). Task templates are applied at load time, so one set serves
every direction and layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm


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
