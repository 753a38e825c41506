"""Images in and out of a run's pipeline: a prompt image's codes (aspect ratio kept), the codec that generates images
of a given size (AnyRes tile grids), and an image as the crops a features run's encoder reads."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unimodal.errors import UnimodalError
from unimodal.feature_spans import FeatureImage, feature_image
from unimodal.media import images_to_tensor, to_channels
from unimodal.sequence import SequenceCodec
from unimodal.tokenizers.anyres import AnyResImage, encode_anyres, fit_layout, to_canvas


def prompt_image_codes(tokenizer: Any, settings: Any, image: np.ndarray,
                       device: torch.device) -> np.ndarray | AnyResImage:
    """A prompt image (uint8 ``[H, W, C]``) -> its codes, aspect ratio kept: AnyRes tiles and thumbnail when the
    run has AnyRes (``settings``), else scaled into the tokenizer's square and padded centred (black, as AnyRes
    pads), never stretched."""
    array = np.asarray(image, dtype=np.uint8)[None]
    array = to_channels(array[..., :3] if array.shape[-1] == 4 else array, int(getattr(tokenizer, "channels", 3)))
    picture = images_to_tensor(array)[0]    # [C, H, W] in [0, 1]
    if settings is not None:
        return encode_anyres(tokenizer, picture, settings.max_tiles, 0.0, settings.grids)
    size = int(tokenizer.image_size)
    square = to_canvas(picture, fit_layout(picture.shape[1], picture.shape[2], 1, 1, size))
    return tokenizer.encode(square[None].to(device))[0].cpu().numpy()


def codec_for(codec: SequenceCodec, tokenizers: dict[str, Any], size: tuple[int, int] | None) -> SequenceCodec:
    """The codec that generates images of ``size`` = (height, width): AnyRes runs fix the tile grid that fits it
    best; other runs generate their tokenizer's square only."""
    settings = codec.anyres_settings
    if size is None:
        return codec.with_image_tiles(None) if settings is not None else codec
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise UnimodalError(f"image size {width}x{height}: both sides must be positive, like size=64x32")
    if "image" not in tokenizers:
        raise UnimodalError(f"an image size was asked for, but this run has no images ({sorted(tokenizers)})")
    tile = int(tokenizers["image"].image_size)
    if settings is not None:
        return codec.with_image_tiles(settings.grid_for(height, width, tile))
    if (height, width) != (tile, tile):
        raise UnimodalError(f"size={width}x{height}: this run generates {tile}x{tile} images only; train with "
                            f"tokenizer.image.anyres.max_tiles=4 for other sizes and aspect ratios")
    return codec


def feature_payload(vision: Any, image: np.ndarray, codes: Any = None) -> FeatureImage:
    """One uint8 ``[H, W, C]`` image as the crops the encoder of ``vision`` reads (AnyRes tiles when it was trained
    so); ``codes``: its tokens, for where it is an answer. Channels are checked by the encoder's processor step."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise UnimodalError(f"an image prompt is uint8 [H, W, C]; got {image.dtype} of shape {image.shape}")
    vision.encoder.to_channels(image)  # refuses a channel count the encoder cannot read, now rather than later
    return feature_image(image, vision.crop_size, vision.anyres_max_tiles, codes)
