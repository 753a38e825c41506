"""Importing this package registers every tokenizer kind (see ``base.load_tokenizer``)."""

from __future__ import annotations

import inspect
from typing import Any

from unimodal.tokenizers import audio, encodec_checkpoint, hf_text, image, pretrained, qformer, text, video  # noqa: F401


def constructor_options(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The config options ``cls``'s constructor names.

    The config schema holds the union of every kind's keys for a modality (``num_queries`` for
    qformer-1d, ``path`` for pretrained, ...): each kind takes its own and leaves the rest.
    """
    accepted = inspect.signature(cls.__init__).parameters
    return {key: value for key, value in options.items() if key in accepted}
