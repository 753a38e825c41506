"""The contract every modality tokenizer follows (text, image, audio, video).

A tokenizer turns media into *local* integer codes and back. Local codes live in
``[0, codebook_size)`` for each of ``num_codebooks`` codebooks; the shared
:class:`unimodal.vocab.Vocabulary` maps them to global ids.

Every tokenizer round-trips through a folder: ``config.json`` (its constructor
arguments plus ``kind``) and ``model.safetensors`` (weights; never pickle); its evaluation adds ``card.md``
and ``metrics.json`` beside them (:mod:`unimodal.eval.tokenizers.card`). ``fingerprint`` hashes the config and
the weights so that a language model checkpoint or a token shard can refuse a tokenizer it was not built with.
"""

from __future__ import annotations

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class TokenizerLoadError(RuntimeError):
    """A tokenizer folder is missing, incomplete, or of another kind."""


def hash_json(obj: Any) -> str:
    """Stable short hash of a JSON-serialisable object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def hash_state_dict(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


class ModalityTokenizer(ABC):
    """Media <-> local codes.

    Shapes of ``encode`` output (LongTensor of local codes):
      text ``list[list[int]]`` (variable length), image ``[B, h, w]`` (or ``[B, n]`` for 1-D
      tokenizers), audio ``[B, K, T]``, video ``[B, t, h, w]``.
    """

    modality: ClassVar[str]
    kind: ClassVar[str]

    # --- sizes -------------------------------------------------------------------------
    @property
    @abstractmethod
    def codebook_size(self) -> int:
        """Number of distinct codes in each codebook."""

    @property
    def num_codebooks(self) -> int:
        return 1

    @abstractmethod
    def num_tokens(self, *args: Any, **kwargs: Any) -> int:
        """How many local codes one sample of the given size takes."""

    # --- conversion --------------------------------------------------------------------
    @abstractmethod
    def encode(self, batch: Any) -> Any:
        """Media -> local codes."""

    @abstractmethod
    def decode(self, codes: Any) -> Any:
        """Local codes -> media (the inverse of ``encode``)."""

    # --- persistence -------------------------------------------------------------------
    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""

    @abstractmethod
    def state_dict_for_save(self) -> dict[str, torch.Tensor]:
        """Weights to store in safetensors (may be empty)."""

    @abstractmethod
    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of ``state_dict_for_save``."""

    def save_extra(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Tokenizers with non-tensor state (e.g. BPE merges) write it here."""

    @classmethod
    def from_config(cls, config: dict[str, Any], directory: Path | None = None) -> ModalityTokenizer:
        return cls(**config)

    @property
    def fingerprint(self) -> str:
        return hash_json({"kind": self.kind, "config": self.get_config(),
                          "weights": hash_state_dict(self.state_dict_for_save()),
                          "extra": self.extra_fingerprint()})

    def extra_fingerprint(self) -> str:
        return ""

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"kind": self.kind, "modality": self.modality, "config": self.get_config()}
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict_for_save().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        self.save_extra(directory)
        config["fingerprint"] = self.fingerprint
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
        return directory


class ModuleWeights:
    """Persistence of an ``nn.Module`` tokenizer that keeps its constructor arguments in ``_config``: the config
    as given, every tensor of ``state_dict`` as its weights. Listed before the ``nn.Module`` base."""

    def get_config(self) -> dict[str, Any]:
        return copy.deepcopy(self._config)

    def state_dict_for_save(self) -> dict[str, torch.Tensor]:
        return dict(self.state_dict())

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=True)


def image_channels(tokenizer: Any) -> int:
    """Pixel channels an image tokenizer expects (``channels`` attribute or config key; 3 if neither)."""
    channels = getattr(tokenizer, "channels", None)
    if channels is None and hasattr(tokenizer, "get_config"):
        channels = tokenizer.get_config().get("channels")
    return int(channels) if channels is not None else 3


_REGISTRY: dict[str, type[ModalityTokenizer]] = {}


def register(cls: type[ModalityTokenizer]) -> type[ModalityTokenizer]:
    _REGISTRY[cls.kind] = cls
    return cls


def register_as(name: str) -> Callable[[type[ModalityTokenizer]], type[ModalityTokenizer]]:
    """Register a class under a config name other than its ``kind`` (a loader whose result saves as that kind)."""
    def decorate(cls: type[ModalityTokenizer]) -> type[ModalityTokenizer]:
        _REGISTRY[name] = cls
        return cls
    return decorate


def registered_kind(kind: str) -> type[ModalityTokenizer] | None:
    """The tokenizer class registered under ``kind`` (import ``unimodal.tokenizers`` first)."""
    return _REGISTRY.get(kind)


def load_tokenizer(directory: str | Path) -> ModalityTokenizer:
    """Load any saved tokenizer from its folder; the kind comes from config.json."""
    import unimodal.tokenizers  # noqa: F401 - registers every kind

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise TokenizerLoadError(f"{config_path}: no tokenizer config here (was the tokenizer trained?)")
    try:
        saved = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise TokenizerLoadError(f"{config_path}: not valid JSON ({err})") from err
    kind = saved.get("kind")
    if kind not in _REGISTRY:
        raise TokenizerLoadError(f"{config_path}: unknown tokenizer kind {kind!r}; known: {sorted(_REGISTRY)}")
    tokenizer = _REGISTRY[kind].from_config(saved["config"], directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise TokenizerLoadError(f"{weights}: weights file missing")
    tokenizer.load_weights(load_file(str(weights)))
    return tokenizer
