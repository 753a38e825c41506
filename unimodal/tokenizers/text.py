"""Text tokenizer: byte-level BPE trained with Hugging Face ``tokenizers`` on the training captions."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from unimodal.tokenizers.base import ModalityTokenizer, TokenizerLoadError, hash_json, register

TOKENIZER_FILE = "tokenizer.json"


@register
class TextTokenizer(ModalityTokenizer):
    """Byte-level BPE. Local codes are the BPE ids in ``[0, vocab_size)``; the shared vocabulary
    adds its own special tokens, so this tokenizer needs none."""

    modality = "text"
    kind = "bpe"

    def __init__(self, vocab_size: int = 512, min_frequency: int = 2, lowercase: bool = True,
                 tokenizer: Tokenizer | None = None) -> None:
        self.vocab_size = int(vocab_size)
        self.min_frequency = int(min_frequency)
        self.lowercase = lowercase
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 512, min_frequency: int = 2,
              lowercase: bool = True) -> TextTokenizer:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        texts = [t.lower() if lowercase else t for t in texts]
        tokenizer.train_from_iterator(texts, trainer=trainer)
        # Pad the id space to the configured size so the vocabulary layout depends on config only.
        return cls(vocab_size, min_frequency, lowercase, tokenizer)

    def _require(self) -> Tokenizer:
        if self.tokenizer is None:
            raise RuntimeError("text tokenizer is not trained; call TextTokenizer.train(texts)")
        return self.tokenizer

    @property
    def codebook_size(self) -> int:
        return max(self.vocab_size, self._require().get_vocab_size())

    def num_tokens(self, text: str) -> int:
        return len(self.encode([text])[0])

    def encode(self, batch: str | list[str]) -> list[list[int]]:
        texts = [batch] if isinstance(batch, str) else list(batch)
        if self.lowercase:
            texts = [t.lower() for t in texts]
        return [enc.ids for enc in self._require().encode_batch(texts)]

    def decode(self, codes: Any) -> str | list[str]:
        tokenizer = self._require()
        if len(codes) and isinstance(codes[0], (list, tuple)):
            return [tokenizer.decode(list(c)) for c in codes]
        return tokenizer.decode([int(c) for c in codes])

    # --- persistence ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "min_frequency": self.min_frequency,
                "lowercase": self.lowercase}

    def state_dict_for_save(self) -> dict[str, torch.Tensor]:
        return {}

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def save_extra(self, directory: Path) -> None:
        self._require().save(str(directory / TOKENIZER_FILE))

    def extra_fingerprint(self) -> str:
        return hash_json(self._require().to_str())

    @classmethod
    def from_config(cls, config: dict[str, Any], directory: Path | None = None) -> TextTokenizer:
        path = Path(directory or ".") / TOKENIZER_FILE
        if not path.is_file():
            raise TokenizerLoadError(f"{path}: BPE tokenizer file missing")
        return cls(**config, tokenizer=Tokenizer.from_file(str(path)))
