"""README's config list names exactly the options in conf/, group by group."""

from __future__ import annotations

import re
from pathlib import Path

from unimodal.config import CONF_DIR

ROOT = Path(__file__).resolve().parent.parent


def groups() -> dict[str, set[str]]:
    """Every config group folder under conf/ (``tokenizer/image``, ...) and its options."""
    return {str(folder.relative_to(CONF_DIR)): {p.stem for p in folder.glob("*.yaml")}
            for folder in sorted(CONF_DIR.rglob("*")) if folder.is_dir() and any(folder.glob("*.yaml"))}


def readme_list() -> dict[str, str]:
    """The README's ``### Configs`` block: ``conf/<path>`` -> its text (continuation lines joined)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("### Configs", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("conf/"):
            current, _, rest = line.partition(" ")
            entries[current.rstrip("/")] = rest
        elif current and line.strip():
            entries[current.rstrip("/")] += " " + line.strip()
    return entries


def names(description: str) -> set[str]:
    """The option names of a line: what is left once every parenthesised remark is taken out."""
    while re.search(r"\([^()]*\)", description):
        description = re.sub(r"\([^()]*\)", "", description)
    description = description.split(":", 1)[0]
    return {word for word in re.split(r"[,\s]+", description) if word}


def test_readme_lists_every_option_of_every_group():
    listed = readme_list()
    for group, options in groups().items():
        assert f"conf/{group}" in listed, f"README's config list has no line for conf/{group}/"
        assert names(listed[f"conf/{group}"]) == options, f"conf/{group}/"
    for path in CONF_DIR.glob("*.yaml"):
        assert f"conf/{path.name}" in listed, f"README's config list does not name conf/{path.name}"
    stale = [entry for entry in listed if not (ROOT / entry).exists()]
    assert not stale, f"README names what conf/ does not have: {stale}"
