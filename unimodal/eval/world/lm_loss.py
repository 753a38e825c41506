"""Language-modelling loss of a run per target modality, in bits per token, on evaluation scenes.

Every task direction of the run is cast from the same scenes (no condition dropped); the loss covers what
training's loss covers (the target segment, its closer and ``<eos>``), and is grouped by the modality of the
predicted token (closers and ``<eos>`` count as ``special``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unimodal.data.tasks import task_segments
from unimodal.eval.world.engine import media_payloads
from unimodal.eval.world.suite import EvalScene
from unimodal.pipeline.rerank import token_nats
from unimodal.sequence import MODALITY_CODES

_NAMES = {code: name for name, code in MODALITY_CODES.items()}
_MEDIA = ("image", "audio", "video")  # video: ``world`` is a MotionWorld and the scenes are its clips


def _payloads(pipe: Any, world: Any, scenes: list[EvalScene], used: set[str]) -> list[dict[str, Any]]:
    texts = pipe.tokenizers["text"].encode([world.caption(s.scene) for s in scenes])
    media = {m: media_payloads(pipe, world, [s.scene for s in scenes], m)  # features runs: pixels and codes
             for m in pipe.info["media"] if m in _MEDIA and m in used}
    return [{"text": texts[i], **{m: codes[i] for m, codes in media.items()}} for i in range(len(scenes))]


def bits_per_token(pipe: Any, world: Any, scenes: list[EvalScene], batch_size: int = 32,
                   progress: bool = True) -> dict[str, dict[str, float]]:
    """split -> modality -> mean bits per predicted token, over every task of the run."""
    return bits_per_token_groups(pipe, [(world, scenes, None)], batch_size, progress)


def bits_per_token_groups(pipe: Any, groups: list[tuple[Any, list[EvalScene], list[str] | None]],
                          batch_size: int = 32, progress: bool = True) -> dict[str, dict[str, float]]:
    """As :func:`bits_per_token`, pooled over groups of (world, scenes, tasks cast from them; None: all of the
    run's): a ``modality=all`` run casts its still directions from scenes and text<->video from clips."""
    sums: dict[str, dict[str, list[float]]] = {}
    for world, scenes, tasks in groups:
        _add_sums(sums, pipe, world, scenes, tasks, batch_size, progress)
    return {split: {name: total / count / math.log(2) for name, (total, count) in sorted(parts.items())}
            for split, parts in sums.items()}


@torch.no_grad()
def _add_sums(sums: dict[str, dict[str, list[float]]], pipe: Any, world: Any, scenes: list[EvalScene],
              tasks: list[str] | None, batch_size: int, progress: bool) -> None:
    if tasks is None:
        tasks = [t for t in pipe.info["tasks"] if "->" in t and all(m in ("text", *_MEDIA) for m in t.split("->"))]
    payloads = _payloads(pipe, world, scenes, {m for t in tasks for m in t.split("->")})
    sequences = [(scene.split, pipe.codec.encode(task_segments(payload, task)))
                 for scene, payload in zip(scenes, payloads, strict=True) for task in tasks]
    for start in tqdm(range(0, len(sequences), batch_size), desc="lm loss", disable=not progress):
        chunk = sequences[start:start + batch_size]
        nats_all, target = token_nats(pipe, [encoded for _, encoded in chunk])
        kinds = torch.zeros(target.shape, dtype=torch.long)
        for row, (_, encoded) in enumerate(chunk):
            kinds[row, :len(encoded) - 1] = torch.from_numpy(encoded.modality_of_position[1:].astype(np.int64))
        nats = nats_all[target]
        rows = torch.arange(len(chunk))[:, None].expand_as(target)[target]
        for value, row, kind in zip(nats.tolist(), rows.tolist(), kinds[target].tolist(), strict=True):
            total = sums.setdefault(chunk[row][0], {}).setdefault(_NAMES[kind], [0.0, 0])
            total[0] += value
            total[1] += 1
