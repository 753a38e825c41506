"""``unimodal.load(run_dir)``: a trained run (or its export) as a generation pipeline.

A run that reads images as features (``model.vision_input=features``) takes a prompt image as pixels: its crops go
through the encoder's own image processor and fill the image's feature slots; generated images are tokens as
always."""

from unimodal.model.generate import SamplingConfig
from unimodal.pipeline.core import Generation, Part, Pipeline, load

__all__ = ["Generation", "Part", "Pipeline", "SamplingConfig", "load"]
