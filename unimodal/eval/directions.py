"""Score one direction (``text->image``, ``audio->text``, ...) of a run on evaluation scenes, in batches.

The source is rendered exactly from each scene (caption, image or sound), the target is generated, and the
synthetic world's exact analyzers read the output back into an ordered list of (colour, shape), which
:func:`unimodal.eval.suite.categories` compares with the scene's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unimodal.data.synthetic.analyze import analyze_image, analyze_sound, parse_caption
from unimodal.eval.generation import Score, default_sampling
from unimodal.eval.instruct import _encode_media
from unimodal.eval.suite import SPLITS, EvalScene, categories
from unimodal.model.generate import SamplingConfig, generate_ids
from unimodal.sequence import Segment

SCORED = ("text", "image", "audio", "video")  # modalities with an exact analyzer (video: unimodal.eval.video_suite)
KEEP_MEDIA = 24  # generated media kept per split for the report's figures


@dataclass
class DirectionResult:
    direction: str
    scores: dict[str, dict[str, Score]] = field(default_factory=dict)   # split -> category -> score
    examples: list[dict[str, Any]] = field(default_factory=list)       # prompt, want, found, hit, split, media
    codes: list[np.ndarray] = field(default_factory=list)              # generated local codes of the target

    def metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        return {split: {name: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total}
                        for name, s in cats.items()} for split, cats in self.scores.items()}


def scorable(direction: str) -> bool:
    source, _, target = direction.partition("->")
    return source in SCORED and target in SCORED


def read_output(generation: Any, modality: str, sample_rate: int) -> list[tuple[str, str]]:
    """The generated output as an ordered list of (colour, shape), by the world's exact analyzers."""
    if modality == "text":
        return parse_caption(generation.text)
    if modality == "image":
        return [(o.color, o.shape) for o in analyze_image(generation.images[0])] if generation.images else []
    return [tuple(pair) for pair in analyze_sound(generation.audio[0], sample_rate)] if generation.audio else []


def sampling_for(pipe: Any, target: str, cfg_scale: float = 3.0) -> SamplingConfig:
    """Greedy captions; media sampled at temperature 1 with classifier-free guidance, one span long."""
    if target == "text":
        return SamplingConfig(temperature={"default": 0.0}, max_new_tokens=48)
    sampling = default_sampling(cfg_scale)
    sampling.max_new_tokens = len(pipe.codec.span_plan(target)) + 3  # opener, body, closer, <eos>
    return sampling


def prompt_ids(pipe: Any, world: Any, scenes: list[EvalScene], source: str) -> list[np.ndarray]:
    """Each scene rendered as ``source`` and encoded as a generation prompt (no ``<eos>``)."""
    if source == "text":
        texts = pipe.tokenizers["text"].encode([world.caption(s.scene) for s in scenes])
        segments = [Segment("text", ids) for ids in texts]
    else:
        codes = _encode_media(pipe, world, [s.scene for s in scenes], source)
        segments = [Segment(source, c) for c in codes]
    return [pipe.codec.encode([segment], add_eos=False).ids for segment in segments]


def _target_codes(generation: Any, target: str) -> np.ndarray | None:
    for segment in generation.segments:
        if segment.modality == target and not segment.truncated:
            return np.asarray(segment.payload).reshape(-1)
    return None


Producer = Callable[[list[EvalScene], int], list[Any]]  # scenes, batch offset -> one Generation per scene


def pipeline_producer(pipe: Any, world: Any, direction: str, cfg_scale: float = 3.0, seed: int = 0) -> Producer:
    """Generations of ``direction`` by a run's model: all prompts of a batch in one ``generate_ids`` call."""
    source, _, target = direction.partition("->")
    sampling = sampling_for(pipe, target, cfg_scale)

    def produce(scenes: list[EvalScene], start: int) -> list[Any]:
        prompts = prompt_ids(pipe, world, scenes, source)
        new_ids = generate_ids(pipe.model, pipe.codec, prompts, [target], sampling, seed=seed + start)
        return [pipe.decode(ids) for ids in new_ids]

    return produce


def score_direction(produce: Producer, world: Any, direction: str, scenes: list[EvalScene], batch_size: int = 64,
                    sample_rate: int = 16000, progress: bool = True, read: Callable[[Any, str], list] | None = None,
                    judge: Callable[[list, list], dict[str, tuple[int, int]]] = categories) -> DirectionResult:
    """Generate ``direction`` for every scene (``batch_size`` scenes per call) and score it per split.

    ``read`` (generation, target modality) and ``judge`` default to the still world's; clips pass their own."""
    target = direction.partition("->")[2]
    result = DirectionResult(direction, {split: {} for split in SPLITS if any(s.split == split for s in scenes)})
    kept = dict.fromkeys(SPLITS, 0)
    bar = tqdm(total=len(scenes), desc=direction, disable=not progress)
    for start in range(0, len(scenes), batch_size):
        chunk = scenes[start:start + batch_size]
        for item, generation in zip(chunk, produce(chunk, start), strict=True):
            found = read(generation, target) if read else read_output(generation, target, sample_rate)
            cats = judge(item.want, found)
            for name, (hits, total) in cats.items():
                score = result.scores[item.split].setdefault(name, Score(name))
                score.hits += hits
                score.total += total
            codes = _target_codes(generation, target)
            if codes is not None and target != "text":
                result.codes.append(codes)
            media = None
            if kept[item.split] < KEEP_MEDIA:
                kept[item.split] += 1
                media = (generation.images or generation.audio or generation.videos or [generation.text])[0]
            result.examples.append({"split": item.split, "prompt": world.caption(item.scene), "want": item.want,
                                    "found": found, "hit": cats["exact"][0] == 1, "media": media})
        bar.update(len(chunk))
    bar.close()
    return result
