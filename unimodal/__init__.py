"""unimodal: any-to-any generation through one shared discrete vocabulary."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load(run_dir: Any, device: str | None = None) -> Any:
    """Load a trained run (``scripts/train.py`` output) as a :class:`unimodal.pipeline.Pipeline`."""
    from unimodal.pipeline import Pipeline

    return Pipeline.load(run_dir, device)
