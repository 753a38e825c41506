"""Importing this package registers every tokenizer kind (see ``base.load_tokenizer``)."""

from unimodal.tokenizers import audio, image, text  # noqa: F401
