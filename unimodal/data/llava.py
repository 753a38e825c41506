"""``data=chat``: a user's conversations about images in LLaVA's format, for ``stage=instruct``.

``data.path`` is a JSON array of records, as LLaVA's instruction sets ship, or JSON lines (one record a line)::

    {"id": "0001", "image": "images/cat.png",
     "conversations": [{"from": "human", "value": "<image>\\nWhat is on the sofa?"},
                       {"from": "gpt", "value": "A cat."}]}

``image`` is one path or a list of paths (several images in one conversation), relative to the file's folder.
Each ``<image>`` in a turn marks where the next image goes; a conversation whose turns hold no ``<image>`` gets
its images at the start of the first human turn (LLaVA's rule). Roles: ``human``/``user``, ``gpt``/``assistant``
and ``system``. A record that does not parse or does not have this shape, or that names an image that is missing
or unreadable, is skipped and named with its file and line; every other record is read.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.errors import ConfigError, DataError
from unimodal.media import try_read_image

IMAGE_TAG = "<image>"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
EXAMPLE = ('{"image": "a.png", "conversations": [{"from": "human", "value": "<image>\\nwhat is this?"}, '
           '{"from": "gpt", "value": "a cat"}]}')


@dataclass
class Conversation:
    """One record: where it is (``file:line``), its turns as (role, parts) with each part a text or the index of
    one of ``images`` (uint8 ``[H, W, 3]``)."""

    where: str
    turns: list[tuple[str, list[str | int]]]
    images: list[np.ndarray] = field(default_factory=list)


class _Lines:
    """Character offset -> 1-based line number."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def column(self, offset: int) -> int:
        return offset - self.starts[self.line(offset) - 1]


def _next_record(text: str, lines: _Lines, start: int) -> int:
    """After a record that does not parse: the next line that opens a record at its indentation or less."""
    column = lines.column(start)
    for line_start in lines.starts[lines.line(start):]:
        body = text[line_start:].lstrip(" \t,")
        indent = len(text) - line_start - len(body)
        if body.startswith("{") and indent <= column:
            return len(text) - len(body)
        if body.startswith("]") and indent < column:
            return len(text) - len(body)
    return len(text)


def parse_records(text: str) -> Iterator[tuple[int, Any, str]]:
    """``(line, record, "")`` for every record of a JSON array or JSON-lines text, ``(line, None, why)`` for one
    that does not parse (the array is read on past it)."""
    lines = _Lines(text)
    body = text.lstrip()
    if not body.startswith("["):  # JSON lines
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line), ""
                except json.JSONDecodeError as err:
                    yield number, None, f"not valid JSON ({err.msg})"
        return
    decoder, pos = json.JSONDecoder(), text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            yield lines.line(err.pos), None, f"not valid JSON ({err.msg})"
            end = _next_record(text, lines, pos)
        else:
            yield lines.line(pos), record, ""
        pos = max(end, pos + 1)


def _turns(record: Any, images: int) -> tuple[list[tuple[str, list[str | int]]], str]:
    """A record's turns with images placed, or ``([], why it is not a conversation)``."""
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        return [], 'no "conversations" list'
    turns: list[tuple[str, list[str | int]]] = []
    placed = 0
    for turn in record["conversations"]:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return [], 'a turn without a "value" string'
        role = ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            return [], f"unknown role {turn.get('from')!r} (use human, gpt or system)"
        parts: list[str | int] = []
        for k, piece in enumerate(turn["value"].split(IMAGE_TAG)):
            if k:
                parts.append(placed)
                placed += 1
            if piece.strip():
                parts.append(piece.strip())
        turns.append((role, parts))
    if placed > images:
        return [], f"{placed} {IMAGE_TAG} tags but {images} image(s)"
    if placed == 0 and images:  # no tag: the images open the first human turn
        first = next((i for i, (role, _) in enumerate(turns) if role == "user"), None)
        if first is None:
            return [], "images but no human turn to hold them"
        turns[first] = ("user", [*range(images), *turns[first][1]])
    if not any(role == "assistant" and parts for role, parts in turns):
        return [], "no answer (gpt) turn"
    return turns, ""


def image_paths(record: Any) -> list[str] | None:
    """The record's image paths (none when it has no ``image``), or None when ``image`` is not path(s)."""
    value = record.get("image") if isinstance(record, dict) else None
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def read_conversations(path: str | Path, image_size: int, limit: int | None = None
                       ) -> tuple[list[Conversation], list[str]]:
    """Every usable conversation of the file, images read at ``image_size`` (centre-cropped squares), and one
    ``file:line: why`` for each record skipped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path={path}: no such file; data=chat reads a LLaVA-format JSON file, records "
                        f"like {EXAMPLE}")
    root, cache = path.parent, {}
    kept, skipped = [], []
    for line, record, why in parse_records(path.read_text(encoding="utf-8", errors="replace")):
        where = f"{path}:{line}"
        names = image_paths(record) if record is not None else []
        if record is not None and names is None:
            why = '"image" must be a path or a list of paths'
        turns, why = (_turns(record, len(names)) if not why else ([], why))
        images = []
        for name in names if not why else []:
            if name not in cache:
                cache[name] = try_read_image(root / name, image_size)
            image, reason = cache[name]
            if image is None:
                why = f"image {name!r} {reason}"
                break
            images.append(image)
        if why:
            skipped.append(f"{where}: {why}")
            continue
        kept.append(Conversation(where, turns, images))
        if limit and len(kept) >= limit:
            break
    if not kept:
        raise DataError(f"{path}: no usable conversation ({len(skipped)} skipped"
                        + (f", first: {skipped[0]}" if skipped else "") + f"); records look like {EXAMPLE}")
    return kept, skipped


def check_chat_data(data_cfg: Any) -> Path:
    """``data=chat`` needs ``data.path``: the conversations file."""
    if not data_cfg.get("path"):
        raise ConfigError("data=chat needs data.path=<file.json>: LLaVA-format conversations, records like "
                          + EXAMPLE)
    return Path(str(data_cfg.path))
