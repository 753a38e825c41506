"""What the Generate form holds -> one checked request for the pipeline (no gradio here).

The page sends its fields as a dict keyed by :func:`field_names`; every value is checked here, so a request
sent by hand (gradio also serves an HTTP API) gets the same one-line messages as the page's own controls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from unimodal.demo.uploads import NAMES, check_medium, read_upload
from unimodal.errors import UnimodalError
from unimodal.pipeline import SamplingConfig

MODALITIES = ("text", "image", "audio", "video")   # the order of an interleaved answer's parts
MEDIA_FIELDS = {"image": "image", "audio": "sound", "video": "clip"}
MAX_SAMPLES = 8
# knob -> (label, lowest, highest, whole number)
KNOBS: dict[str, tuple[str, float, float, bool]] = {
    "cfg_scale": ("guidance scale", 0.0, 20.0, False),
    "temperature": ("temperature", 0.0, 5.0, False),
    "top_k": ("top-k", 0, 100_000, True),
    "top_p": ("top-p", 0.0, 1.0, False),
}


@dataclass
class Request:
    """One checked generation request: prompt parts in order, the answer's modalities, sampling settings."""

    parts: list[Any]
    outputs: list[str]
    sampling: SamplingConfig
    seed: int = 0
    num_samples: int = 1
    chat: bool = False


def field_names(modalities: list[str]) -> list[str]:
    """The form's fields in the order the page lays out its inputs (``modalities``: text first, then media)."""
    media = [m for m in modalities if m != "text"]
    knobs = [f"{knob}.{m}" for m in modalities for knob in KNOBS]
    return ["prompt", *[MEDIA_FIELDS[m] for m in media], "outputs", "chat", "seed", "num_samples", *knobs]


def number(value: Any, label: str, lowest: float, highest: float, whole: bool) -> float | int:
    """A form number in ``[lowest, highest]``; anything else is a message naming the control and its range."""
    kind = "a whole number" if whole else "a number"
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        parsed = float("nan")
    if not np.isfinite(parsed) or not lowest <= parsed <= highest or (whole and parsed != int(parsed)):
        raise UnimodalError(f"{label} must be {kind} from {lowest:g} to {highest:g}, got {value!r}")
    return int(parsed) if whole else parsed


def checked_outputs(chosen: Any, media: list[str]) -> list[str]:
    """The ticked output modalities in answer order (text first); none, or one the run lacks, is a message."""
    chosen = [chosen] if isinstance(chosen, str) else list(chosen or [])
    if not chosen:
        raise UnimodalError(f"choose what to generate: tick one or more of {', '.join(['text', *media])}")
    for name in chosen:
        if name not in MODALITIES:
            raise UnimodalError(f"output {name!r} is not a modality; choose among {', '.join(['text', *media])}")
        check_medium(name, media)
    return [m for m in MODALITIES if m in chosen]


def sampling_from(form: dict[str, Any], modalities: list[str], defaults: SamplingConfig) -> SamplingConfig:
    """The per-modality knobs of the form over ``defaults`` (its schedule, penalty and budget stay)."""
    tables: dict[str, dict[str, float]] = {knob: dict(getattr(defaults, knob)) for knob in KNOBS}
    for modality in modalities:
        for knob, (label, lowest, highest, whole) in KNOBS.items():
            key = f"{knob}.{modality}"
            if form.get(key) is not None:
                tables[knob][modality] = number(form[key], f"{label} of {modality}", lowest, highest, whole)
    return replace(defaults, **tables)


def prompt_parts(form: dict[str, Any], media: list[str], sample_rate: int, chat: bool) -> list[Any]:
    """Typed text and uploads -> prompt parts: the text first, or last in a chat turn (media, then the
    question, as the instruction data is laid out)."""
    text = str(form.get("prompt") or "").strip()
    uploads = []
    for kind, field in MEDIA_FIELDS.items():
        if form.get(field) is not None:
            check_medium(kind, media)
            uploads.append(read_upload(form[field], kind, sample_rate))
    if not text and not uploads:
        things = " or ".join(NAMES[m] for m in media)
        raise UnimodalError(f"nothing to answer: type a prompt{' or upload ' + things if things else ''}")
    texts = [text] if text else []
    return [*uploads, *texts] if chat else [*texts, *uploads]


def read_settings(form: dict[str, Any], media: list[str], defaults: SamplingConfig) -> tuple[SamplingConfig, int]:
    """The sampling knobs and the seed of the form (the Chat tab shares them with Generate)."""
    seed = number(form.get("seed", 0), "seed", 0, 2**31 - 1, True)
    return sampling_from(form, ["text", *media], defaults), int(seed)


def read_form(form: dict[str, Any], media: list[str], sample_rate: int, defaults: SamplingConfig) -> Request:
    """The whole form -> a :class:`Request`; the first bad field is a :class:`UnimodalError` naming it."""
    outputs = checked_outputs(form.get("outputs"), media)
    chat = bool(form.get("chat"))
    sampling, seed = read_settings(form, media, defaults)
    num_samples = number(form.get("num_samples", 1), "number of samples", 1, MAX_SAMPLES, True)
    parts = prompt_parts(form, media, sample_rate, chat)
    return Request(parts, outputs, sampling, seed, int(num_samples), chat)
