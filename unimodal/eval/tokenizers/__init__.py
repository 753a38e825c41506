"""Tokenizer evaluation, one path for image, audio and video tokenizers: measure reconstructions on held-out
data (:mod:`.measure`), write the folder's ``metrics.json``, ``card.md`` and figures (:mod:`.card`), and
``scripts/evaluate.py task=tokenizer`` (:mod:`.run`). Stage 0 of training writes each card through it."""
