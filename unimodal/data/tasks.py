"""Task templates: a tokenized sample plus a direction (``source->target``) -> a segment list.

The condition (source) is dropped with probability ``cond_drop_prob`` so the model also learns the
unconditional distribution that classifier-free guidance contrasts against.
"""

from __future__ import annotations

import numpy as np

from unimodal.sequence import Segment


def parse_task(task: str) -> tuple[str | None, str]:
    if task == "text":
        return None, "text"
    source, target = task.split("->")
    return source, target


def task_segments(payloads: dict[str, object], task: str, drop_condition: bool = False) -> list[Segment]:
    """``payloads`` maps modality -> local payload (text ids, image codes, audio codes)."""
    source, target = parse_task(task)
    segments = []
    if source is not None and not drop_condition:
        segments.append(Segment(source, payloads[source], role="user"))
    segments.append(Segment(target, payloads[target], role="assistant", loss=True))
    return segments


def prompt_segments(payloads: dict[str, object], source: str | None) -> list[Segment]:
    return [] if source is None else [Segment(source, payloads[source], role="user")]


def draw_drop(rng: np.random.Generator, prob: float) -> bool:
    return bool(prob > 0 and rng.random() < prob)
