"""A pretrained EnCodec checkpoint, in the ``encodec`` package's own format, as our audio tokenizer.

``encodec``'s checkpoints (``encodec_24khz-d7cc33bc.th`` and the like) are ``torch.save`` d state dicts of
its ``EncodecModel``, whose ``encoder`` / ``decoder`` / ``quantizer`` modules are the very SEANet and RVQ
classes :class:`~unimodal.tokenizers.audio.EncodecTokenizer` is built from, under the same names. So a
checkpoint loads into a tokenizer of the same architecture key for key; only the RVQ levels past
``num_codebooks`` are dropped (fewer levels = a lower bitrate of the same model). The file is read from a
local path only (``weights_only``: tensors, never pickled code), and the result saves as an ordinary
``encodec`` tokenizer folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from unimodal.errors import ConfigError
from unimodal.tokenizers.audio import EncodecTokenizer

_LEVEL = re.compile(r"^quantizer\.vq\.layers\.(\d+)\.")
# The architecture of encodec's pretrained 24 kHz model (EncodecModel.encodec_model_24khz).
ENCODEC_24KHZ = dict(sample_rate=24000, filters=32, ratios=(8, 5, 4, 2), dimension=128, n_residual_layers=1,
                     lstm=2, causal=True, norm="weight_norm")


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
    state = read_state_dict(path)
    levels = sorted({int(m.group(1)) for key in state if (m := _LEVEL.match(key))})
    embed = state.get("quantizer.vq.layers.0._codebook.embed")
    if not levels or embed is None:
        raise ConfigError(f"{path}: no residual quantizer in this state dict (expected keys "
                          f"quantizer.vq.layers.<n>._codebook.embed of an encodec EncodecModel)")
    keep = len(levels) if num_codebooks is None else int(num_codebooks)
    if not 1 <= keep <= len(levels):
        raise ConfigError(f"num_codebooks={num_codebooks}: {path} has {len(levels)} RVQ levels")
    options = {**ENCODEC_24KHZ, **architecture}
    options["dimension"] = int(embed.shape[1])   # the codebook width is the SEANet bottleneck width
    tokenizer = EncodecTokenizer(**options, num_codebooks=keep, codebook_size=int(embed.shape[0]))
    kept = {k: v for k, v in state.items() if not (m := _LEVEL.match(k)) or int(m.group(1)) < keep}
    hint = "pass the checkpoint's own filters / ratios / n_residual_layers / lstm / causal / norm"
    try:
        result = tokenizer.load_state_dict(kept, strict=False)
    except RuntimeError as err:   # a tensor of another shape
        raise ConfigError(f"{path}: does not match the architecture {options} "
                          f"({str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err}); "
                          f"{hint}") from None
    if result.missing_keys or result.unexpected_keys:
        shown = (result.missing_keys + result.unexpected_keys)[:3]
        raise ConfigError(f"{path}: does not match the architecture {options} ({len(result.missing_keys)} missing "
                          f"and {len(result.unexpected_keys)} unexpected keys, e.g. {shown}); {hint}")
    return tokenizer.eval()
