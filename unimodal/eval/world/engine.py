"""The one scoring engine: generate a direction (``text->image``, ``audio->text``, ``text->video``, ...) for evaluation
scenes, read each output back with the synthetic world's exact analyzers, and tally hits per split and category.

What is asked and how an answer is judged live in :mod:`.suite` (scenes, clips, :func:`~.suite.categories`). A
:data:`Producer` makes the outputs for a batch of scenes:

- :func:`batched_producer`: the run's LM, every prompt of a batch in one ``generate_ids`` call (``evaluate.py``)
- :func:`prompt_producer`: one ``Pipeline.generate`` per scene, seeded by its index (a user's path)
- :func:`round_trip_producer`: the video tokenizer alone, encode -> decode of the rendered clip (a ceiling)

:func:`score_direction` then reads (:func:`read_output` for still scenes, :func:`read_motion` for clips), judges and
counts; :class:`Score` holds one category's hits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unimodal.data.motion import motions_in, parse_motion_caption
from unimodal.data.synthetic.analyze import analyze_image, analyze_sound, parse_caption
from unimodal.eval.sampling import sampling_for
from unimodal.eval.world.suite import EvalScene, categories
from unimodal.media import images_to_tensor, videos_to_tensor
from unimodal.model.generate import SamplingConfig
from unimodal.pipeline.rerank import rerank_ids
from unimodal.sequence import Encoded, Segment
from unimodal.tokenizers.anyres import AnyResImage
from unimodal.tokenizers.anyres_settings import flatten_anyres

SCORED = ("text", "image", "audio", "video")  # modalities with an exact analyzer
KEEP_MEDIA = 24  # generated media kept per split for the report's figures


@dataclass
class Score:
    """Hits of one category (or one question kind), with examples."""

    name: str
    hits: int = 0
    total: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.hits / max(self.total, 1)


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


# --- reading outputs back ------------------------------------------------------------------
def read_output(generation: Any, modality: str, sample_rate: int) -> list[tuple[str, str]]:
    """The generated output as an ordered list of (colour, shape), by the world's exact analyzers."""
    if modality == "text":
        return parse_caption(generation.text)
    if modality == "image":
        return [(o.color, o.shape) for o in analyze_image(generation.images[0])] if generation.images else []
    return [tuple(pair) for pair in analyze_sound(generation.audio[0], sample_rate)] if generation.audio else []


def read_motion(generation: Any, target: str) -> list[tuple[str, str, str | None]]:
    """A generated clip through the motion analyzer, or a generated caption parsed."""
    if target == "video":
        return motions_in(generation.videos[0]) if generation.videos else []
    return parse_motion_caption(generation.text)


# --- prompts ------------------------------------------------------------------
def render(world: Any, scene: Any, modality: str) -> np.ndarray:
    """A scene's exact rendering: image, sound, or (``world`` a MotionWorld, ``scene`` a clip) clip."""
    if modality == "image":
        return world.render_image(scene)
    if modality == "video":
        return world.render_video(scene)
    return world.render_sound(scene)


def encode_rendered(pipe: Any, media: list[np.ndarray], modality: str, batch_size: int = 64) -> np.ndarray:
    """Images, sounds or clips encoded by the run's tokenizer: local codes ``[N, ...]``."""
    tokenizer = pipe.tokenizers[modality].eval()
    device = next(tokenizer.parameters()).device
    codes = []
    for start in range(0, len(media), batch_size):
        with torch.no_grad():
            codes.append(tokenizer.encode(_media_batch(media[start:start + batch_size], modality).to(device))
                         .cpu().numpy())
    return np.concatenate(codes)


def rendered_payloads(pipe: Any, media: list[np.ndarray], modality: str, batch_size: int = 64) -> list[Any]:
    """Each image, sound or clip as a segment payload: its local codes; an image of a run that reads images as
    features, its pixels (as the encoder reads them) with those codes."""
    codes = encode_rendered(pipe, media, modality, batch_size)
    if modality != "image" or not pipe.reads_features:
        return list(codes)
    return [pipe.feature_payload(image, c) for image, c in zip(media, codes, strict=True)]


def media_payloads(pipe: Any, world: Any, scenes: list[Any], modality: str, batch_size: int = 64) -> list[Any]:
    """Each scene rendered as ``modality``, as a segment payload (:func:`rendered_payloads`)."""
    return rendered_payloads(pipe, [render(world, scene, modality) for scene in scenes], modality, batch_size)


def prompt_ids(pipe: Any, world: Any, scenes: list[EvalScene], source: str) -> list[Encoded]:
    """Each scene rendered as ``source`` and encoded as a generation prompt (no ``<eos>``)."""
    if source == "text":
        texts = pipe.tokenizers["text"].encode([world.caption(s.scene) for s in scenes])
        return [pipe.codec.encode([Segment("text", ids)], add_eos=False) for ids in texts]
    return media_prompts(pipe, [render(world, s.scene, source) for s in scenes], source)


def media_prompts(pipe: Any, media: list[np.ndarray], modality: str, batch_size: int = 64) -> list[Encoded]:
    """Images, sounds or clips as generation prompts (no ``<eos>``): their codes; an image of a run that reads
    images as features, its pixels with those codes."""
    return [pipe.codec.encode([Segment(modality, payload)], add_eos=False)
            for payload in rendered_payloads(pipe, media, modality, batch_size)]


def _media_batch(media: list[np.ndarray], modality: str) -> torch.Tensor:
    if modality == "image":
        return images_to_tensor(media)
    if modality == "video":
        return videos_to_tensor(media)
    return torch.from_numpy(np.stack(media))


# --- producers -----------------------------------------------------------------------------
Producer = Callable[[list[EvalScene], int], list[Any]]  # scenes, batch offset -> one Generation per scene


def batched_producer(pipe: Any, world: Any, direction: str, cfg_scale: float | None = None,
                     seed: int = 0, temperature: float | None = None, rerank: int = 1) -> Producer:
    """Generations of ``direction`` by a run's model: all prompts of a batch in one ``generate_ids`` call, or the
    best of ``rerank`` candidates by the inverse direction (:mod:`unimodal.pipeline.rerank`)."""
    source, _, target = direction.partition("->")
    sampling = sampling_for(pipe, target, cfg_scale, temperature)

    def produce(scenes: list[EvalScene], start: int) -> list[Any]:
        prompts = prompt_ids(pipe, world, scenes, source)
        new_ids = rerank_ids(pipe, prompts, target, sampling, rerank, seed=seed + start)
        return [pipe.decode(ids) for ids in new_ids]

    return produce


def prompt_producer(pipe: Any, world: Any, direction: str, sampling: SamplingConfig, seed: int = 0) -> Producer:
    """Generations of ``direction`` through ``Pipeline.generate``, one call per scene (the caption or the rendered
    media as the prompt), the ``i``-th scene with seed ``seed + i``: what a user of the pipeline would get."""
    source, _, target = direction.partition("->")

    def produce(scenes: list[EvalScene], start: int) -> list[Any]:
        return [pipe.generate(world.caption(item.scene) if source == "text" else render(world, item.scene, source),
                              output=target, seed=seed + start + offset, sampling=sampling)[0]
                for offset, item in enumerate(scenes)]

    return produce


def round_trip_producer(pipe: Any, world: Any) -> Producer:
    """Each rendered clip encoded and decoded by the run's video tokenizer, no LM: the analyzer's reading of these
    is the ceiling that the tokenizer sets for ``text->video``."""
    from unimodal.pipeline import Generation

    def produce(scenes: list[EvalScene], start: int) -> list[Any]:
        results = []
        for item in scenes:
            segment = pipe.segments_from(world.render_video(item.scene))[0]
            results.append(Generation(ids=np.zeros(0, np.int64), segments=[], videos=[pipe.decode_media(segment)]))
        return results

    return produce


# --- the loop ------------------------------------------------------------------------------
def _target_codes(generation: Any, target: str) -> np.ndarray | None:
    for segment in generation.segments:
        if segment.modality == target and not segment.truncated:
            if isinstance(segment.payload, AnyResImage):   # thumbnail and tiles: every code generated
                return flatten_anyres(segment.payload)
            return np.asarray(segment.payload).reshape(-1)
    return None


def score_direction(produce: Producer, world: Any, direction: str, scenes: list[EvalScene], batch_size: int = 64,
                    sample_rate: int = 16000, progress: bool = True, read: Callable[[Any, str], list] | None = None,
                    judge: Callable[[list, list], dict[str, tuple[int, int]]] = categories, hit: str = "exact",
                    keep_media: int = KEEP_MEDIA) -> DirectionResult:
    """Generate ``direction`` for every scene (``batch_size`` scenes per call) and score it per split.

    ``read`` (generation, target modality) and ``judge`` (want, found) default to the still world's; clips pass
    their own. An example counts as a ``hit`` when the judge's ``hit`` category does; the first ``keep_media``
    outputs of each split keep their media for figures."""
    target = direction.partition("->")[2]
    splits = list(dict.fromkeys(s.split for s in scenes))
    result = DirectionResult(direction, {split: {} for split in splits})
    kept = dict.fromkeys(splits, 0)
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
            if kept[item.split] < keep_media:
                kept[item.split] += 1
                media = (generation.images or generation.audio or generation.videos or [generation.text])[0]
            result.examples.append({"split": item.split, "prompt": world.caption(item.scene), "want": item.want,
                                    "found": found, "hit": cats[hit][0] == 1, "media": media})
        bar.update(len(chunk))
    bar.close()
    return result
