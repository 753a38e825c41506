"""Every tokenizer kind; importing this package (as importing any module in it does first) registers them all
for :func:`unimodal.tokenizers.base.load_tokenizer` and :func:`~unimodal.tokenizers.base.registered_kind`."""

from unimodal.tokenizers import audio, encodec_checkpoint, hf_text, image, pretrained, qformer, text, video  # noqa: F401
