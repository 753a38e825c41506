"""The shared vocabulary: one id space for text, special tokens and every modality's codes.

Layout (in this order): ``[text][specials][image][audio][video]``. Each modality range holds
``codebook_size`` ids per codebook; with ``separate_codebooks`` (the default) each of the K codebooks
of a multi-codebook tokenizer gets its own block, so the model never confuses level 0 with level 1.
The layout is plain JSON; its fingerprint travels with every checkpoint and token cache.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.errors import VocabularyMismatch
from unimodal.tokenizers.base import hash_json

SPECIALS: tuple[str, ...] = (
    "<pad>", "<bos>", "<eos>",
    "<boi>", "<eoi>", "<boa>", "<eoa>", "<bov>", "<eov>",
    "<row>", "<frame>", "<tile>",
    "<user>", "<assistant>", "<system>",
)
MEDIA_ORDER: tuple[str, ...] = ("image", "audio", "video")
OPENERS = {"image": "<boi>", "audio": "<boa>", "video": "<bov>"}
CLOSERS = {"image": "<eoi>", "audio": "<eoa>", "video": "<eov>"}


@dataclass(frozen=True)
class ModalityRange:
    modality: str
    start: int
    codebook_size: int
    num_codebooks: int = 1
    separate_codebooks: bool = True

    @property
    def size(self) -> int:
        return self.codebook_size * (self.num_codebooks if self.separate_codebooks else 1)

    @property
    def stop(self) -> int:
        return self.start + self.size

    def codebook_range(self, codebook: int) -> tuple[int, int]:
        """Global [start, stop) of one codebook's ids."""
        if not 0 <= codebook < self.num_codebooks:
            raise IndexError(f"{self.modality}: codebook {codebook} out of range 0..{self.num_codebooks - 1}")
        offset = self.start + (codebook * self.codebook_size if self.separate_codebooks else 0)
        return offset, offset + self.codebook_size


class Vocabulary:
    """Maps (modality, codebook, local code) <-> global id."""

    def __init__(self, text_size: int, media: dict[str, tuple[int, int]] | None = None,
                 specials: tuple[str, ...] = SPECIALS, separate_codebooks: bool = True) -> None:
        if text_size <= 0:
            raise ValueError("text_size must be positive")
        self.text_size = int(text_size)
        self.specials = tuple(specials)
        self.separate_codebooks = separate_codebooks
        self._special_ids = {name: self.text_size + i for i, name in enumerate(self.specials)}
        self.ranges: dict[str, ModalityRange] = {
            "text": ModalityRange("text", 0, self.text_size),
            "special": ModalityRange("special", self.text_size, len(self.specials)),
        }
        cursor = self.text_size + len(self.specials)
        media = dict(media or {})
        unknown = set(media) - set(MEDIA_ORDER)
        if unknown:
            raise ValueError(f"unknown media modalities {sorted(unknown)}; known: {MEDIA_ORDER}")
        for name in MEDIA_ORDER:
            if name in media:
                codebook_size, num_codebooks = media[name]
                block = ModalityRange(name, cursor, int(codebook_size), int(num_codebooks), separate_codebooks)
                self.ranges[name] = block
                cursor = block.stop
        self.size = cursor

    # --- lookups -------------------------------------------------------------------------
    @property
    def media(self) -> tuple[str, ...]:
        return tuple(name for name in MEDIA_ORDER if name in self.ranges)

    def special(self, name: str) -> int:
        try:
            return self._special_ids[name]
        except KeyError:
            raise KeyError(f"unknown special token {name!r}; known: {list(self.specials)}") from None

    @property
    def pad_id(self) -> int:
        return self.special("<pad>")

    @property
    def bos_id(self) -> int:
        return self.special("<bos>")

    @property
    def eos_id(self) -> int:
        return self.special("<eos>")

    def range_of(self, modality: str, codebook: int | None = None) -> tuple[int, int]:
        if modality not in self.ranges:
            raise KeyError(f"modality {modality!r} is not in this vocabulary ({sorted(self.ranges)})")
        block = self.ranges[modality]
        if codebook is None:
            return block.start, block.stop
        return block.codebook_range(codebook)

    def to_global(self, modality: str, codes: Any, codebook: Any = 0) -> np.ndarray:
        """Local codes (any shape) -> global ids. ``codebook`` broadcasts against ``codes``."""
        block = self.ranges[modality]
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= block.codebook_size):
            raise ValueError(f"{modality} codes must lie in [0, {block.codebook_size}), "
                             f"got [{codes.min()}, {codes.max()}]")
        codebook = np.asarray(codebook, dtype=np.int64)
        if codebook.size and (codebook.min() < 0 or codebook.max() >= block.num_codebooks):
            raise ValueError(f"{modality} codebook index out of range 0..{block.num_codebooks - 1}")
        step = block.codebook_size if block.separate_codebooks else 0
        return block.start + codebook * step + codes

    def to_local(self, ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global ids -> (modality names, codebook indices, local codes), elementwise.

        For a shared codebook range the codebook cannot be read off the id and is returned as -1;
        the sequence layout knows it from the position.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must lie in [0, {self.size}), got [{ids.min()}, {ids.max()}]")
        names = np.empty(ids.shape, dtype=object)
        books = np.zeros(ids.shape, dtype=np.int64)
        codes = np.zeros(ids.shape, dtype=np.int64)
        for block in self.ranges.values():
            inside = (ids >= block.start) & (ids < block.stop)
            if not inside.any():
                continue
            offset = ids[inside] - block.start
            names[inside] = block.modality
            if block.separate_codebooks:
                books[inside] = offset // block.codebook_size
                codes[inside] = offset % block.codebook_size
            else:
                books[inside] = 0 if block.num_codebooks == 1 else -1
                codes[inside] = offset
        return names, books, codes

    def lookup(self, global_id: int) -> tuple[str, int, int]:
        names, books, codes = self.to_local([global_id])
        return str(names[0]), int(books[0]), int(codes[0])

    def token_name(self, global_id: int) -> str:
        modality, codebook, code = self.lookup(global_id)
        if modality == "special":
            return self.specials[code]
        return f"<{modality}:{codebook}:{code}>" if modality != "text" else f"<text:{code}>"

    # --- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "text_size": self.text_size,
            "specials": list(self.specials),
            "separate_codebooks": self.separate_codebooks,
            "ranges": {name: asdict(block) for name, block in self.ranges.items()},
            "size": self.size,
        }

    @property
    def fingerprint(self) -> str:
        return hash_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        media = {name: (block["codebook_size"], block["num_codebooks"])
                 for name, block in data["ranges"].items() if name in MEDIA_ORDER}
        vocab = cls(data["text_size"], media, tuple(data["specials"]), data["separate_codebooks"])
        if vocab.to_dict() != data:
            raise VocabularyMismatch("vocabulary JSON is inconsistent with its own ranges")
        return vocab

    def save(self, path: str | Path) -> None:
        payload = dict(self.to_dict(), fingerprint=self.fingerprint)
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        data = json.loads(Path(path).read_text())
        data.pop("fingerprint", None)
        return cls.from_dict(data)

    def check_same(self, other: Vocabulary, what: str) -> None:
        """Refuse ``other`` (built for ``what``) unless its layout is identical to this one."""
        if self.fingerprint != other.fingerprint:
            raise VocabularyMismatch(
                f"{what} was built for vocabulary {other.fingerprint} but the current tokenizers give "
                f"{self.fingerprint}; retrain it or use the tokenizers it was built with")

    def __repr__(self) -> str:
        parts = ", ".join(f"{b.modality}=[{b.start},{b.stop})" for b in self.ranges.values())
        return f"Vocabulary(size={self.size}, {parts})"
