"""A pretrained language model's own text tokenizer (``tokenizer/text=pretrained``, kind ``hf``).

``stage=align`` starts from a pretrained causal LM, whose embedding rows are indexed by *its* tokenizer's
ids; so the text range of our vocabulary must be exactly that tokenizer. This kind wraps
``transformers.AutoTokenizer`` (a local folder or a hub id; a hub id needs the network once). Local codes
are the tokenizer's ids, encoded without its own special tokens: the shared vocabulary adds ours.

Saving copies the tokenizer's files (what ``save_pretrained`` writes) into ``<tokenizer folder>/hf/``, so
a run folder never needs the original path again; the fingerprint hashes those exact bytes, so a copy
loaded back has the fingerprint it was saved with. Nothing is trained in stage 0.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from unimodal.errors import ConfigError
from unimodal.tokenizers.base import ModalityTokenizer, TokenizerLoadError, register

HF_FOLDER = "hf"  # beside our config.json, which AutoTokenizer would otherwise try to read as a model config
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _load_auto_tokenizer(path: str, where: str) -> Any:
    from transformers import AutoTokenizer

    if not Path(path).exists() and not HUB_ID.match(path):
        raise ConfigError(f"{where}: no such folder (give a Hugging Face tokenizer folder or a hub id owner/name)")
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:  # missing files, offline hub, not a tokenizer folder
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{where}: cannot load a Hugging Face tokenizer ({first})") from None


def _tokenizer_files(tokenizer: Any) -> dict[str, bytes]:
    """The bytes ``save_pretrained`` writes: what we copy, and what the fingerprint covers."""
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


@register
class PretrainedTextTokenizer(ModalityTokenizer):
    """Wraps a Hugging Face tokenizer. ``pad_to`` > 0 pads the text range to that many ids (for models whose
    embedding has more rows than the tokenizer has tokens); 0 keeps the tokenizer's own size. (Not the BPE
    kind's ``vocab_size``: the schema holds both kinds' keys, and configs that set that one mean BPE.)"""

    modality = "text"
    kind = "hf"
    trainable = False  # stage 0 loads it, never fits it

    def __init__(self, path: str | None = None, pad_to: int = 0, tokenizer: Any = None,
                 files: dict[str, bytes] | None = None) -> None:
        if tokenizer is None:
            if not path:
                raise ConfigError("tokenizer.text.path is not set: pass tokenizer.text.path=<Hugging Face tokenizer "
                                  "folder or hub id> with tokenizer/text=pretrained (it defaults to model.pretrained)")
            tokenizer = _load_auto_tokenizer(str(path), f"tokenizer.text.path={path!r}")
        self.path = None if path is None else str(path)
        self.pad_to = int(pad_to or 0)
        self.tokenizer = tokenizer
        self.files = files if files is not None else _tokenizer_files(tokenizer)
        if self.pad_to and self.pad_to < len(tokenizer):
            raise ConfigError(f"tokenizer.text.pad_to={self.pad_to} is below the {len(tokenizer)} tokens of "
                              f"{self.path}; use 0 (the tokenizer's size) or the model's embedding rows")

    @property
    def codebook_size(self) -> int:
        return max(self.pad_to, len(self.tokenizer))

    def num_tokens(self, text: str) -> int:
        return len(self.encode([text])[0])

    def encode(self, batch: str | list[str]) -> list[list[int]]:
        texts = [batch] if isinstance(batch, str) else list(batch)
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def decode(self, codes: Any) -> str | list[str]:
        if len(codes) and isinstance(codes[0], (list, tuple)):
            return [self.tokenizer.decode(list(c), skip_special_tokens=True) for c in codes]
        return self.tokenizer.decode([int(c) for c in codes], skip_special_tokens=True)

    # --- persistence ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"path": self.path, "pad_to": self.pad_to}

    def state_dict_for_save(self) -> dict[str, torch.Tensor]:
        return {}

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def save_extra(self, directory: Path) -> None:
        target = Path(directory) / HF_FOLDER
        target.mkdir(parents=True, exist_ok=True)
        for name, blob in self.files.items():
            (target / name).write_bytes(blob)

    def extra_fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name, blob in sorted(self.files.items()):
            digest.update(name.encode())
            digest.update(hashlib.sha256(blob).digest())
        return digest.hexdigest()[:16]

    @classmethod
    def from_config(cls, config: dict[str, Any], directory: Path | None = None) -> PretrainedTextTokenizer:
        folder = Path(directory or ".") / HF_FOLDER
        if not folder.is_dir():
            raise TokenizerLoadError(f"{folder}: the copied Hugging Face tokenizer files are missing")
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        tokenizer = _load_auto_tokenizer(str(folder), str(folder))
        return cls(config.get("path"), int(config.get("pad_to") or 0), tokenizer=tokenizer, files=files)
