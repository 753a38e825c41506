"""What the Run tab shows about a run folder: a summary, its config, tokenizer cards and evaluation figures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from unimodal.pipeline import Pipeline
from unimodal.run_folder import CONFIG_FILE, PRETRAINED_DIR, TOKENIZERS_DIR

CARD_FIGURES = ("reconstructions.png", "spectrograms.png", "frames.png")
PICTURE_LINK = re.compile(r"!\[[^\]]*\]\([^)]*\)\n?")   # a card's relative picture links: the tab shows them itself
CONFIG_SECTION = re.compile(r"## Config\n.*?(?=\n## |\Z)", re.S)   # the run's config is shown whole elsewhere


@dataclass
class Card:
    """One tokenizer's card: its text, figures, and example sounds (original / reconstruction pairs)."""

    modality: str
    markdown: str
    figures: list[Path] = field(default_factory=list)
    sounds: list[tuple[str, Path]] = field(default_factory=list)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_config(run_dir: Path) -> str:
    """The run's config.yaml as text (empty when the folder has none)."""
    path = Path(run_dir) / CONFIG_FILE
    return path.read_text() if path.is_file() else ""


def is_instruct(run_dir: Path) -> bool:
    """Whether the run was tuned to chat (stage=instruct keeps the pretrained model in lm-pretrain/)."""
    run_dir = Path(run_dir)
    return (run_dir / PRETRAINED_DIR).is_dir() or "train_instruct: true" in run_config(run_dir)


def run_summary(pipeline: Pipeline) -> str:
    """One paragraph of Markdown: what the run is and how far it was trained."""
    run_dir, info = Path(pipeline.run_dir), pipeline.info
    trained = _json(run_dir / "train_summary.json")
    parameters = sum(p.numel() for p in pipeline.model.parameters())
    device = next(pipeline.model.parameters()).device
    facts = [f"**{info.get('modality', '?')}**", f"{parameters / 1e6:.1f}M parameters",
             f"context {pipeline.context_length} tokens", f"vocabulary {pipeline.vocab.size} ids", f"on {device}"]
    if "steps" in trained:
        facts.insert(1, f"{trained['steps']} LM steps")
    if is_instruct(run_dir):
        facts.insert(1, "chat-tuned (stage=instruct)")
    tasks = ", ".join(info.get("tasks", []))
    return f"`{run_dir}`: " + " · ".join(facts) + (f"  \nTrained on: {tasks}" if tasks else "")


def tokenizer_cards(run_dir: Path, modalities: list[str]) -> list[Card]:
    """The card of each tokenizer the run holds (``<run>/tokenizers/<modality>/card.md``), in order."""
    cards = []
    for modality in modalities:
        folder = Path(run_dir) / TOKENIZERS_DIR / modality
        card = folder / "card.md"
        if not card.is_file():
            continue
        text = CONFIG_SECTION.sub("", PICTURE_LINK.sub("", card.read_text()))
        figures = [folder / name for name in CARD_FIGURES if (folder / name).is_file()]
        sounds = []
        for original in sorted((folder / "samples").glob("*_original.wav"))[:2]:
            reconstruction = original.with_name(original.name.replace("_original", "_reconstruction"))
            sounds.append(("original", original))
            if reconstruction.is_file():
                sounds.append(("reconstruction", reconstruction))
        cards.append(Card(modality, text, figures, sounds))
    return cards


def eval_figures(run_dir: Path) -> tuple[str, list[tuple[Path, str]]]:
    """The latest evaluation (``scripts/evaluate.py run=...`` writes ``<run>/eval``): a line saying when, and each
    direction's exact accuracy on seen and held-out scenes, and its figures; how to make one when there is none."""
    folder = Path(run_dir) / "eval"
    metrics = _json(folder / "metrics.json")
    names = metrics.get("figures") or sorted(p.name for p in folder.glob("*.png"))
    figures = [(folder / name, Path(name).stem.replace("_", " ")) for name in names if (folder / name).is_file()]
    if not figures and not metrics:
        return (f"No evaluation yet: `python scripts/evaluate.py run={run_dir}` scores every direction and "
                f"writes its figures here."), []
    exact = []
    for direction, splits in (metrics.get("directions") or {}).items():
        scores = [splits.get(split, {}).get("exact", {}).get("accuracy") for split in ("seen", "held_out")]
        if None not in scores:
            exact.append(f"{direction} {scores[0]:.2f} / {scores[1]:.2f}")
    when = f" of {metrics['date']}" if "date" in metrics else ""
    line = f"Latest evaluation{when} (`{folder / 'report.md'}`)"
    if exact:
        line += f". Exact, seen / held-out scenes: {'; '.join(exact)}"
    return line, figures
