"""Examples for the page, taken from the run's own data (its validation split), so a first click is sensible."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Examples:
    """Captions, images and sounds of validation samples, and chat questions about them (instruct runs)."""

    captions: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    sounds: list[Path] = field(default_factory=list)
    questions: list[tuple[Path, str]] = field(default_factory=list)   # (image, question)
    source: str = ""


def run_examples(run_dir: Path, media: list[str], folder: Path, count: int = 4, chat: bool = False) -> Examples:
    """``count`` validation samples of the data the run was trained on, media written under ``folder``;
    no examples (and a log line saying why) when that data cannot be read here."""
    from omegaconf import OmegaConf

    from unimodal.errors import UnimodalError
    from unimodal.run_folder import CONFIG_FILE

    config = Path(run_dir) / CONFIG_FILE
    try:
        data_cfg = OmegaConf.load(config).data
        return _examples(data_cfg, media, Path(folder), count, chat)
    except (UnimodalError, OSError, ValueError, KeyError, AttributeError) as err:
        log.warning("no examples from %s: %s", config, err)
        return Examples()


def _examples(data_cfg, media: list[str], folder: Path, count: int, chat: bool) -> Examples:
    from PIL import Image

    from unimodal.data.sources import load_samples
    from unimodal.media import tensor_to_images, write_wav

    samples = load_samples(data_cfg, ("val",))["val"]
    count = min(count, len(samples))
    folder.mkdir(parents=True, exist_ok=True)
    examples = Examples(captions=list(samples.captions[:count]), source=f"data={data_cfg.name}, validation split")
    if "image" in media and "video" not in media:
        for index, image in enumerate(tensor_to_images(samples.media("image", 0, count))):
            path = folder / f"example-{index}.png"
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
            examples.images.append(path)
    if "audio" in media:
        rate = int(data_cfg.sample_rate)
        for index, wave in enumerate(samples.media("audio", 0, count).numpy()):
            path = folder / f"example-{index}.wav"
            write_wav(path, wave, rate)
            examples.sounds.append(path)
    if chat and examples.images and data_cfg.name == "synthetic":
        examples.questions = _questions(samples.attributes[:count], examples.captions, examples.images)
    return examples


def _questions(attributes: list[list[list[str]]], captions: list[str], images: list[Path]) -> list[tuple[Path, str]]:
    """One question of each visual kind the instruction data asks, about the example images in turn."""
    from unimodal.data.instruct import SWAP_QUESTION, ask

    rng = np.random.default_rng(0)
    questions = []
    for index, kind in enumerate(("count", "colour", "shape", "describe")):
        objects = [tuple(pair) for pair in attributes[index % len(images)]]
        asked = ask(kind, objects, rng, captions[index % len(images)])
        if asked is not None:
            questions.append((images[index % len(images)], asked[0]))
    questions.append((images[0], SWAP_QUESTION))
    return questions
