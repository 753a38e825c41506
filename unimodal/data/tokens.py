"""Tokenized samples in memory: per-sample local codes for every modality.

Training reads the on-disk form, :class:`unimodal.data.shards.TokenShard` (same interface); this one serves
small sets built on the fly (tests, tools). Task templates are applied at load time, so one set serves
every direction and layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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

