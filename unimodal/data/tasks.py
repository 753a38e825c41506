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


def text_key(medium: str) -> str:
    """The payload of the caption a sample gives ``medium`` when it differs from its main caption (``text``)."""
    return f"text:{medium}"


def payload_for(payloads: dict[str, object], modality: str, partner: str | None) -> object:
    """``modality``'s payload in a task with ``partner``: text paired with a medium that has its own caption
    (``text:<medium>``, e.g. a clip's motion caption beside a still scene's) takes that one."""
    if modality == "text" and partner is not None and text_key(partner) in payloads:
        return payloads[text_key(partner)]
    return payloads[modality]


def task_segments(payloads: dict[str, object], task: str, drop_condition: bool = False) -> list[Segment]:
    """``payloads`` maps modality -> local payload (text ids, image codes, audio codes)."""
    source, target = parse_task(task)
    segments = []
    if source is not None and not drop_condition:
        segments.append(Segment(source, payload_for(payloads, source, target), role="user"))
    segments.append(Segment(target, payload_for(payloads, target, source), role="assistant", loss=True))
    return segments


def prompt_segments(payloads: dict[str, object], source: str | None, target: str | None = None) -> list[Segment]:
    return [] if source is None else [Segment(source, payload_for(payloads, source, target), role="user")]


def draw_drop(rng: np.random.Generator, prob: float) -> bool:
    return bool(prob > 0 and rng.random() < prob)
