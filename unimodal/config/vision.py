"""Schema of the keys of ``model.vision_input=features``: ``encoder.*`` (conf/encoder/) and ``projector.*``
(conf/projector/), merged into :class:`unimodal.config.Config` like every other group."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import II


@dataclass
class EncoderTrainConfig:
    """encoder=trained: the contrastive image-text stage (unimodal/training/encoder_trainer.py)."""
    steps: int = 400
    batch_size: int = 64
    lr: float = 1e-3
    max_minutes: float | None = None   # opt-in clock cap; None: the steps alone
    max_images: int = 10000      # training images it reads (the first of the train split)
    text_hidden_size: int = 128  # the text tower, used only for training
    text_layers: int = 2
    projection_dim: int = 64


@dataclass
class EncoderConfig:
    """conf/encoder/*.yaml: the vision encoder of model.vision_input=features (unimodal/model/vision.py)."""
    kind: str = "trained"        # trained (a small CLIP ViT trained here) | pretrained (a CLIP/SigLIP folder or hub id)
    path: str | None = None      # pretrained: folder or hub id
    feature_layer: int = -2      # hidden_states index whose features are read (LLaVA: the penultimate)
    drop_cls: bool = True        # leave out the CLS position (LLaVA); SigLIP has none
    anyres_max_tiles: int = 0    # > 0: an image is a thumbnail plus up to this many tiles, each encoded
    trainable: bool = False      # stage=instruct: tune the encoder too (frozen in every other stage)
    image_size: int = II("data.image_size")   # trained: the ViT's input size
    patch_size: int = 4          # trained
    hidden_size: int = 64        # trained
    num_layers: int = 3          # trained
    num_heads: int = 4           # trained
    intermediate_size: int = 128   # trained
    train: EncoderTrainConfig = field(default_factory=EncoderTrainConfig)


@dataclass
class ProjectorConfig:
    """conf/projector/*.yaml: encoder features -> LM input vectors (unimodal/model/projector.py)."""
    kind: str = "mlp"            # mlp (LLaVA-1.5) | linear (LLaVA-1) | qformer (BLIP-2's learned queries)
    input_size: int | None = None   # the encoder's hidden size when null; set, it must match the encoder's
    num_queries: int = 16        # qformer: slots per image (crop)
    hidden_size: int = 64        # qformer: width
    num_layers: int = 2          # qformer
    num_heads: int = 4           # qformer
    intermediate_size: int = 128   # qformer
    dropout: float = 0.0         # qformer
