"""``scripts/generate.py``: read the prompt (text, image, sound or clip files), generate through the run's
pipeline (:mod:`unimodal.pipeline`) and write each answer's media (PNG, WAV, GIF and MP4)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from unimodal.commands.app import check_overrides, run_app
from unimodal.commands.options import validate_generate
from unimodal.config import compose
from unimodal.errors import UnimodalError

USAGE = """usage: python scripts/generate.py run=<dir> (prompt="..."|image=<png>|audio=<wav>|video=<gif>) output=<...>

  output=image|audio|video|text, or a list: output=[text,image]; a video is written as a GIF (and an MP4)
  num_samples=4 seed=0 cfg_scale.image=2.5 temperature.image=0.7 top_k.image=0 top_p.image=1.0
  cfg_schedule.image=constant|linear|cosine repetition_penalty=1.0 max_new_tokens=256
  rerank=8: each answer the best of 8 by the inverse direction's likelihood of the prompt (one output)
  size=64x32 (WIDTHxHEIGHT) or aspect=2:1 (WIDTH:HEIGHT): generated images of that size or shape (AnyRes runs)
  out_dir=<folder> (default: <run>/samples)
  chat (a stage=instruct run): image=<png> question="how many circles are there?" output=text"""


def main(argv: list[str] | None = None) -> int:
    return run_app(generate_from, "generate", USAGE, argv, prepare=quote_free_text,
                   check=lambda args: check_overrides(args, "generate", validate_schema=False))


def _table(node: Any) -> dict[str, Any]:
    return dict(OmegaConf.to_container(node)) if node is not None else {}


def sampling_from(cfg: Any) -> Any:
    """The :class:`~unimodal.model.generate.SamplingConfig` of the options."""
    from unimodal.model.fast_decode import fast_mode
    from unimodal.model.generate import SamplingConfig

    return SamplingConfig(temperature=_table(cfg.temperature), top_k=_table(cfg.top_k), top_p=_table(cfg.top_p),
                          cfg_scale=_table(cfg.cfg_scale), cfg_schedule=_table(cfg.cfg_schedule),
                          repetition_penalty=float(cfg.repetition_penalty), max_new_tokens=int(cfg.max_new_tokens),
                          min_text_tokens=int(cfg.min_text_tokens),
                          fast=fast_mode(cfg.get("fast", "auto")))  # checked by validate_generate


def _positive_pair(value: Any, separator: str, key: str, example: str) -> tuple[float, float]:
    parts = str(value).lower().split(separator)
    try:
        first, second = (float(parts[0]), float(parts[1])) if len(parts) == 2 else (float(parts[0]),) * 2
    except ValueError:
        first = second = 0.0
    if len(parts) > 2 or first <= 0 or second <= 0:
        raise UnimodalError(f"{key}={value}: write {example}")
    return first, second


def image_size_from(cfg: Any, pipeline: Any) -> tuple[int, int] | None:
    """``size=WIDTHxHEIGHT`` or ``aspect=WIDTH:HEIGHT`` -> (height, width) of the generated images, or None."""
    size, aspect = cfg.get("size"), cfg.get("aspect")
    if size is not None and aspect is not None:
        raise UnimodalError(f"size={size} and aspect={aspect} both given: give one of them")
    if size is not None:
        width, height = _positive_pair(size, "x", "size", "WIDTHxHEIGHT in pixels, like size=64x32")
        if width != int(width) or height != int(height):
            raise UnimodalError(f"size={size}: write whole pixels, like size=64x32")
        return int(height), int(width)
    if aspect is None:
        return None
    width, height = _positive_pair(aspect, ":", "aspect", "WIDTH:HEIGHT, like aspect=2:1")
    settings = pipeline.codec.anyres_settings
    if "image" in pipeline.tokenizers and settings is not None:
        return settings.size_for_aspect(width, height, int(pipeline.tokenizers["image"].image_size))
    if width != height:
        raise UnimodalError(f"aspect={aspect}: this run generates square images only; train with "
                            f"tokenizer.image.anyres.max_tiles=4 for other aspect ratios")
    return None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "sample"


FREE_TEXT_KEYS = ("prompt", "question", "run", "image", "audio", "video", "out_dir")


def quote_free_text(override: str) -> str:
    """``prompt=a red circle, left of ...`` -> a quoted Hydra string, so commas and spaces stay text."""
    key, _, value = override.partition("=")
    if key in FREE_TEXT_KEYS and value and value[0] not in "'\"":
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"{key}='{escaped}'"
    return override


def generate(overrides: list[str]) -> list[Path]:
    """From Python, with the command line's overrides (without Hydra's)."""
    return generate_from(compose([quote_free_text(o) for o in overrides], config_name="generate",
                                 validate_schema=False))


def generate_from(cfg: Any) -> list[Path]:
    """Generate from the run of ``run=``; print each text answer and the path of every file written."""
    cfg = validate_generate(cfg)
    from unimodal.media import read_audio, read_image, read_video, write_gif, write_mp4, write_png, write_wav
    from unimodal.pipeline import Pipeline

    pipeline = Pipeline.load(cfg.run)
    prompt: list[Any] = []
    if cfg.prompt:
        prompt.append(str(cfg.prompt))
    if cfg.image:
        prompt.append(read_image(cfg.image))
    if cfg.audio:
        prompt.append(read_audio(cfg.audio, pipeline.sample_rate))
    if cfg.get("video"):
        prompt.append(read_video(cfg.video))
    question = cfg.get("question")
    if question:  # a chat turn: the media above, then the question (a run tuned with stage=instruct)
        prompt.append(str(question))
    outputs = list(cfg.output)
    results = pipeline.generate(prompt, output=outputs, num_samples=int(cfg.num_samples), seed=int(cfg.seed),
                                sampling=sampling_from(cfg), chat=bool(question),
                                image_size=image_size_from(cfg, pipeline), rerank=int(cfg.get("rerank", 1)))
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.run) / "samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = slug(str(cfg.prompt or question or "") or Path(str(cfg.image or cfg.audio or cfg.get("video"))).stem)
    written: list[Path] = []
    for index, result in enumerate(results):
        if result.text:
            print(f"[{index}] {result.text}")
        for k, image in enumerate(result.images):
            written.append(write_png(image, out_dir / f"{name}-{index}-{k}.png"))
        for k, wave in enumerate(result.audio):
            path = out_dir / f"{name}-{index}-{k}.wav"
            write_wav(path, wave, pipeline.sample_rate)
            written.append(path)
        for k, clip in enumerate(result.videos):
            scale = max(1, 256 // clip.shape[1])
            written.append(write_gif(clip, out_dir / f"{name}-{index}-{k}.gif", result.video_fps, scale))
            mp4 = write_mp4(clip, out_dir / f"{name}-{index}-{k}.mp4", result.video_fps, scale)
            written += [mp4] if mp4 else []
        if result.truncated:
            print(f"[{index}] note: a span was cut off")
    for path in written:
        print(f"wrote {path}")
    return written
