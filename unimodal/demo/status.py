"""What every tab shares: modality names as the page says them, the status line, and the progress bar."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

LABELS = {"text": "text", "image": "image", "audio": "sound", "video": "clip"}


def error_line(what: str, err: Exception) -> dict[str, Any]:
    """A user error as the status line: red, one line; the server carries on."""
    return gr.update(value=f"{what}: {err}", elem_classes=["error-line"])


def ok_line(text: str) -> dict[str, Any]:
    return gr.update(value=text, elem_classes=[])


def tracker(progress: gr.Progress, what: str) -> Callable[[int, int], None]:
    """The pipeline's ``progress(done, total)`` -> gradio's progress bar over the event's outputs."""
    def track(done: int, total: int) -> None:
        progress((done, total), desc=what, unit="tokens")
    return track
