"""A pretrained EnCodec checkpoint, in the ``encodec`` package's own format, as our audio tokenizer.

``encodec``'s checkpoints (``encodec_24khz-d7cc33bc.th`` and the like) are ``torch.save`` d state dicts of
its ``EncodecModel``, whose ``encoder`` / ``decoder`` / ``quantizer`` modules are the very SEANet and RVQ
classes :class:`~unimodal.tokenizers.audio.EncodecTokenizer` is built from, under the same names. So a
checkpoint loads into a tokenizer of the same architecture key for key; only the RVQ levels past
``num_codebooks`` are dropped (fewer levels = a lower bitrate of the same model). The file is read from a
local path only (``weights_only``: tensors, never pickled code), and the result saves as an ordinary
``encodec`` tokenizer folder.

By config: ``tokenizer/audio=encodec_pretrained tokenizer.audio.path=<file>`` (stage 0 loads and measures it,
never trains it); in Python: :func:`from_encodec_checkpoint`.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from unimodal.errors import ConfigError
from unimodal.tokenizers.audio import EncodecTokenizer
from unimodal.tokenizers.base import register_as

_LEVEL = re.compile(r"^quantizer\.vq\.layers\.(\d+)\.")

def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such EnCodec checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle / zip errors of a file that is not a checkpoint
        raise ConfigError(f"{path}: not a torch state dict ({type(err).__name__}: {str(err).splitlines()[0]})") \
            from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: expected a state dict of tensors (EncodecModel.state_dict())")
    return state


def from_encodec_checkpoint(path: str | Path, num_codebooks: int | None = None, **architecture: object
                            ) -> EncodecTokenizer:
    """A tokenizer holding the checkpoint's weights.

    ``architecture``: EncodecTokenizer keys (``sample_rate``, ``filters``, ``ratios``, ``dimension``,
    ``n_residual_layers``, ``lstm``, ``causal``, ``norm``); the pretrained 24 kHz model's by default.
    ``codebook_size`` comes from the checkpoint; ``num_codebooks`` defaults to all of its RVQ levels.
    """
    architecture.pop("dimension", None)  # the checkpoint's own, read from its codebooks
    return EncodecCheckpointTokenizer(str(path), num_codebooks, **architecture)


@register_as("encodec_pretrained")
class EncodecCheckpointTokenizer(EncodecTokenizer):
    """``tokenizer/audio=encodec_pretrained``: an EnCodec checkpoint file, loaded by stage 0 and never trained.

    Its ``kind`` stays ``encodec``: it saves as, reloads as and fingerprints as an ordinary encodec tokenizer
    with these weights; only the config name differs (registered under ``encodec_pretrained``).
    """

    trainable = False  # stage 0 measures it, never fits it

    def __init__(self, path: str | None = None, num_codebooks: int | None = None, sample_rate: int = 24000,
                 filters: int = 32, ratios: tuple[int, ...] | list[int] = (8, 5, 4, 2), n_residual_layers: int = 1,
                 lstm: int = 2, causal: bool = True, norm: str = "weight_norm"):
        if not path:
            raise ConfigError("tokenizer.audio.path is not set: pass tokenizer.audio.path=<EnCodec checkpoint file "
                              "(.th or .safetensors)> with tokenizer/audio=encodec_pretrained")
        state = read_state_dict(path)
        levels = sorted({int(m.group(1)) for key in state if (m := _LEVEL.match(key))})
        embed = state.get("quantizer.vq.layers.0._codebook.embed")
        if not levels or embed is None:
            raise ConfigError(f"{path}: no residual quantizer in this state dict (expected keys "
                              f"quantizer.vq.layers.<n>._codebook.embed of an encodec EncodecModel)")
        keep = len(levels) if num_codebooks is None else int(num_codebooks)
        if not 1 <= keep <= len(levels):
            raise ConfigError(f"num_codebooks={num_codebooks}: {path} has {len(levels)} RVQ levels")
        # The codebook width is the SEANet bottleneck width.
        options = dict(sample_rate=int(sample_rate), filters=int(filters), ratios=[int(r) for r in ratios],
                       dimension=int(embed.shape[1]), n_residual_layers=int(n_residual_layers), lstm=int(lstm),
                       causal=bool(causal), norm=str(norm))
        super().__init__(**options, num_codebooks=keep, codebook_size=int(embed.shape[0]))
        kept = {k: v for k, v in state.items() if not (m := _LEVEL.match(k)) or int(m.group(1)) < keep}
        hint = "pass the checkpoint's own filters / ratios / n_residual_layers / lstm / causal / norm"
        try:
            result = self.load_state_dict(kept, strict=False)
        except RuntimeError as err:   # a tensor of another shape
            lines = str(err).splitlines()
            raise ConfigError(f"{path}: does not match the architecture {options} "
                              f"({lines[1].strip() if len(lines) > 1 else err}); {hint}") from None
        if result.missing_keys or result.unexpected_keys:
            shown = (result.missing_keys + result.unexpected_keys)[:3]
            raise ConfigError(f"{path}: does not match the architecture {options} ({len(result.missing_keys)} "
                              f"missing and {len(result.unexpected_keys)} unexpected keys, e.g. {shown}); {hint}")
        self.eval()
