"""Evaluation: ``metrics/`` (pure measures), ``tokenizers/`` (how well a tokenizer reconstructs), ``world/`` (a run
scored on the synthetic world by its exact analyzers) and ``realdata/`` (a run on real images, by judges trained
here)."""
