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
import torch.nn.functional as F
from tqdm.auto import tqdm

from unimodal.data.tasks import task_segments
from unimodal.eval.world.engine import encode_media
from unimodal.eval.world.suite import EvalScene
from unimodal.model.lm import embed_ids
from unimodal.sequence import MODALITY_CODES

_NAMES = {code: name for name, code in MODALITY_CODES.items()}
_MEDIA = ("image", "audio", "video")  # video: ``world`` is a MotionWorld and the scenes are its clips


def _payloads(pipe: Any, world: Any, scenes: list[EvalScene]) -> list[dict[str, Any]]:
    texts = pipe.tokenizers["text"].encode([world.caption(s.scene) for s in scenes])
    media = {m: encode_media(pipe, world, [s.scene for s in scenes], m)
             for m in pipe.info["media"] if m in _MEDIA}
    return [{"text": texts[i], **{m: codes[i] for m, codes in media.items()}} for i in range(len(scenes))]


@torch.no_grad()
def bits_per_token(pipe: Any, world: Any, scenes: list[EvalScene], batch_size: int = 32,
                   progress: bool = True) -> dict[str, dict[str, float]]:
    """split -> modality -> mean bits per predicted token, over every task of the run."""
    tasks = [t for t in pipe.info["tasks"] if "->" in t and all(m in ("text", *_MEDIA) for m in t.split("->"))]
    payloads = _payloads(pipe, world, scenes)
    sequences = [(scene.split, pipe.codec.encode(task_segments(payload, task)))
                 for scene, payload in zip(scenes, payloads, strict=True) for task in tasks]
    sums: dict[str, dict[str, list[float]]] = {}
    device = next(pipe.model.parameters()).device
    for start in tqdm(range(0, len(sequences), batch_size), desc="lm loss", disable=not progress):
        chunk = sequences[start:start + batch_size]
        width = max(len(e) for _, e in chunk)
        ids = torch.full((len(chunk), width), pipe.vocab.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        kinds = torch.zeros((len(chunk), width), dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (_, encoded) in enumerate(chunk):  # right padding: positions start at 0 in every row
            n = len(encoded)
            ids[row, :n] = torch.from_numpy(encoded.ids)
            mask[row, :n] = torch.from_numpy(encoded.loss_mask)
            kinds[row, :n] = torch.from_numpy(encoded.modality_of_position.astype(np.int64))
            attention[row, :n] = 1
        ids, attention = ids.to(device), attention.to(device)
        logits = pipe.model(inputs_embeds=embed_ids(pipe.model, ids), attention_mask=attention,
                            use_cache=False).logits[:, :-1].float().cpu()
        target = mask[:, 1:]
        nats = F.cross_entropy(logits[target], ids.cpu()[:, 1:][target], reduction="none")
        rows = torch.arange(len(chunk))[:, None].expand_as(target)[target]
        for value, row, kind in zip(nats.tolist(), rows.tolist(), kinds[:, 1:][target].tolist(), strict=True):
            total = sums.setdefault(chunk[row][0], {}).setdefault(_NAMES[kind], [0.0, 0])
            total[0] += value
            total[1] += 1
    return {split: {name: total / count / math.log(2) for name, (total, count) in sorted(parts.items())}
            for split, parts in sums.items()}
