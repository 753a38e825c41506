"""A ``data=folder`` folder: files listed in ``metadata.jsonl`` (the Hugging Face imagefolder convention), each
line ``{"file_name": "cats/01.png", "text": "a cat"}`` with paths relative to the folder.

Images, sounds and clips are read the same way (:func:`read_listed`): each listed file once, a file that cannot be
read is skipped and named in one log line, so it never reaches a model. A malformed metadata line is an error
naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unimodal.data.images import skipped_line
from unimodal.errors import ConfigError, DataError

METADATA = "metadata.jsonl"
EXAMPLE_LINE = '{"file_name": "a.png", "text": "a caption"}'


def folder_root(data_cfg: Any) -> Path:
    if not data_cfg.path:
        raise ConfigError("data=folder needs data.path=<folder with images and metadata.jsonl>")
    root = Path(str(data_cfg.path)).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={data_cfg.path}: no such folder")
    if not (root / METADATA).is_file():
        raise DataError(f"{root / METADATA} is missing: data=folder needs one JSON line per image, "
                        f"like {EXAMPLE_LINE}")
    return root


def read_metadata(root: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``(file_name, text)`` per line; a line that is not such an object is an error naming file and line."""
    path = root / METADATA
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); each line must look like "
                            f"{EXAMPLE_LINE}") from None
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("file_name", "text")):
            raise DataError(f"{path}:{number}: needs string fields \"file_name\" and \"text\", like {EXAMPLE_LINE}")
        name = record["file_name"]
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"{path}:{number}: file_name {name!r} must be a path inside {root}")
        entries.append((name, record["text"]))
        if limit and len(entries) >= limit:
            break
    return entries


def read_listed(root: Path, entries: list[tuple[str, str]], read: Callable[[Path], tuple[Any, str]],
                what: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Read every listed file once with ``read`` (a value, or None and why); log the skipped ones in one line.
    Returns the readable entries in order (a name listed twice stays twice) and each readable file's value."""
    from tqdm.auto import tqdm

    results: dict[str, tuple[Any, str]] = {}
    kept: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for name, text in tqdm(entries, desc=f"read {what}", unit="file", disable=None):
        if name not in results:
            results[name] = read(root / name)
        value, reason = results[name]
        if value is None:
            if (name, reason) not in skipped:
                skipped.append((name, reason))
            continue
        kept.append((name, text))
    if skipped:
        print(skipped_line("unreadable files", root, skipped), flush=True)
    return kept, {name: value for name, (value, _) in results.items() if value is not None}
