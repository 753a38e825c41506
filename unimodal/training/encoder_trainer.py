"""``encoder=trained``: a small ViT trained here by a contrastive image-text stage on the run's data (as CLIP does, and
BLIP-2's first stage), then exported like a tokenizer and frozen.

The model is transformers' ``CLIPModel``: a ``CLIPVisionModel`` of ``encoder.*`` sizes and a small text tower over the
run's own text tokenizer ids, trained with the contrastive loss both ways. Captions repeat (thousands of scenes share
"a red circle", every Fashion-MNIST image of a class its class name), so every image of a batch whose caption equals
another's counts as a positive of it (soft targets), not only the diagonal. Only the vision tower is kept:

    <paths.tokenizers_dir>/encoder-clip-<hash>/   config.json + model.safetensors (CLIPVisionModel.save_pretrained),
                                                  preprocessor_config.json (CLIPImageProcessor), encoder.json
                                                  (fingerprint, data), metrics.json, card.md

The hash covers the encoder keys, the data and the text tokenizer: the same config reuses the folder, as tokenizers.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from unimodal.data.sources import data_fingerprint
from unimodal.errors import UnimodalError
from unimodal.media import tensor_to_images
from unimodal.model.vision import VisionEncoder, load_encoder
from unimodal.tokenizers.base import hash_json

ENCODER_INFO = "encoder.json"
TRAINED_KEYS = ("image_size", "patch_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "train")
MAX_CAPTION_TOKENS = 64


def _say(message: str) -> None:
    print(message, flush=True)


def encoder_name(encoder_cfg: Any, data_fp: str, text_fingerprint: str) -> str:
    settings = OmegaConf.to_container(encoder_cfg, resolve=True)
    chosen = {key: settings[key] for key in TRAINED_KEYS}
    return f"encoder-clip-{hash_json({'encoder': chosen, 'data': data_fp, 'text': text_fingerprint})[:10]}"


def prepare_encoder(cfg: DictConfig, samples: dict[str, Any], text_tokenizer: Any) -> VisionEncoder:
    """The run's vision encoder: ``encoder.path`` (pretrained), or the trained one of this config, reused or trained
    and exported (stage 0)."""
    enc = cfg.encoder
    if enc.kind == "pretrained":
        encoder = load_encoder(str(enc.path), int(enc.feature_layer), bool(enc.drop_cls))
        _say(f"[stage 0] vision encoder {enc.path}: {type(encoder.model).__name__}, hidden size {encoder.hidden_size}, "
             f"{encoder.num_features} features per {encoder.image_size}px crop (pretrained: not trained here)")
        return encoder
    folder = Path(cfg.paths.tokenizers_dir) / encoder_name(enc, data_fingerprint(cfg.data), text_tokenizer.fingerprint)
    if (folder / ENCODER_INFO).is_file():
        _say(f"[stage 0] reusing vision encoder {folder}")
        return load_encoder(str(folder), int(enc.feature_layer), bool(enc.drop_cls))
    if not cfg.stage.train_tokenizers:
        raise UnimodalError(f"no vision encoder at {folder} for this config and data; run stage=tokenizers (or "
                            f"stage=all) first")
    started = time.perf_counter()
    cap = enc.train.max_minutes
    _say(f"[stage 0] training the vision encoder (contrastive, CLIP ViT) for {enc.train.steps} steps"
         + (f" (clock cap {cap} min)" if cap is not None else ""))
    vision, processor, metrics = train_encoder(enc, samples, text_tokenizer, int(cfg.seed), bool(cfg.progress))
    metrics.update(wall_seconds=round(time.perf_counter() - started, 1), data=str(cfg.data.name))
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    encoder = VisionEncoder(vision, processor, int(enc.feature_layer), bool(enc.drop_cls), str(folder))
    encoder.save(partial)
    info = {"kind": "clip-contrastive", "fingerprint": encoder.fingerprint, "data": str(cfg.data.name),
            "text_tokenizer": text_tokenizer.fingerprint}
    (partial / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (partial / "card.md").write_text(card(folder.name, enc, metrics, info["fingerprint"]))
    (partial / ENCODER_INFO).write_text(json.dumps(info, indent=2))  # last: the folder is complete from here on
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    _say(f"[stage 0] vision encoder -> {folder}  " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return load_encoder(str(folder), int(enc.feature_layer), bool(enc.drop_cls))


def _pixels(samples: Any, processor: Any, count: int, batch_size: int = 256) -> torch.Tensor:
    chunks = []
    for start in range(0, count, batch_size):
        images = tensor_to_images(samples.media("image", start, min(count, start + batch_size)))
        images = [np.repeat(im, 3, axis=-1) if im.shape[-1] == 1 else im for im in images]  # grey data: RGB
        chunks.append(processor(images=images, return_tensors="pt")["pixel_values"])
    return torch.cat(chunks)


def _captions(text_tokenizer: Any, captions: list[str], eos: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [ids[:MAX_CAPTION_TOKENS - 1] + [eos] for ids in text_tokenizer.encode(list(captions))]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
    return ids, mask


def train_encoder(enc: Any, samples: dict[str, Any], text_tokenizer: Any, seed: int = 0,
                  progress: bool = True) -> tuple[Any, Any, dict[str, Any]]:
    """The contrastive stage (module docstring): a trained ``CLIPVisionModel``, its processor and its metrics."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionModel

    size = int(enc.image_size)
    processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                   image_mean=[0.5] * 3, image_std=[0.5] * 3)
    train, val = samples["train"], samples["val"]
    count = min(len(train), int(enc.train.max_images))
    pixels = _pixels(train, processor, count)
    eos, pad = text_tokenizer.codebook_size, text_tokenizer.codebook_size + 1
    ids, mask = _captions(text_tokenizer, train.captions[:count], eos, pad)
    keys = torch.tensor(_caption_keys(train.captions[:count]))
    width = int(enc.train.text_hidden_size)
    torch.manual_seed(seed)
    config = CLIPConfig(
        vision_config={"hidden_size": int(enc.hidden_size), "intermediate_size": int(enc.intermediate_size),
                       "num_hidden_layers": int(enc.num_layers), "num_attention_heads": int(enc.num_heads),
                       "image_size": size, "patch_size": int(enc.patch_size), "num_channels": 3},
        text_config={"vocab_size": pad + 1, "hidden_size": width, "intermediate_size": 2 * width,
                     "num_hidden_layers": int(enc.train.text_layers), "num_attention_heads": int(enc.num_heads),
                     "max_position_embeddings": MAX_CAPTION_TOKENS, "eos_token_id": eos, "pad_token_id": pad,
                     "bos_token_id": eos},
        projection_dim=int(enc.train.projection_dim))
    model = CLIPModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(enc.train.lr), weight_decay=0.05)
    steps, batch = int(enc.train.steps), min(int(enc.train.batch_size), count)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    rng = np.random.default_rng(seed)
    # Step-bound unless encoder.train.max_minutes (opt-in) caps the clock: the same seed, the same encoder.
    cap = enc.train.max_minutes
    deadline = None if cap is None else time.monotonic() + 60 * float(cap)
    done, loss_value = 0, float("nan")
    for _ in tqdm(range(steps), desc="vision encoder", disable=not progress):
        index = torch.from_numpy(rng.choice(count, size=batch, replace=False))
        out = model(input_ids=ids[index], attention_mask=mask[index], pixel_values=pixels[index])
        same = (keys[index][:, None] == keys[index][None, :]).float()
        targets = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(out.logits_per_image, targets) + F.cross_entropy(out.logits_per_text, targets)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        done, loss_value = done + 1, float(loss.detach())
        if deadline is not None and time.monotonic() > deadline:
            break
    model.eval()
    vision = CLIPVisionModel(config.vision_config)
    tower = getattr(vision, "vision_model", vision)  # transformers 4.x wraps the tower, 5.x is the tower
    tower.load_state_dict(getattr(model.vision_model, "vision_model", model.vision_model).state_dict())
    metrics = {"steps": done, "final_loss": round(loss_value, 4), **retrieval(model, processor, val, text_tokenizer)}
    return vision.eval(), processor, metrics


def _caption_keys(captions: list[str]) -> list[int]:
    index: dict[str, int] = {}
    return [index.setdefault(c, len(index)) for c in captions]


@torch.no_grad()
def retrieval(model: Any, processor: Any, split: Any, text_tokenizer: Any) -> dict[str, Any]:
    """How well the trained pair tells the held-out split apart: top-1 of each image's own caption among the split's
    distinct captions (and their number, so chance is visible)."""
    count = min(len(split), 1000)
    distinct = list(dict.fromkeys(split.captions[:count]))
    ids, mask = _captions(text_tokenizer, distinct, text_tokenizer.codebook_size, text_tokenizer.codebook_size + 1)
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=_pixels(split, processor, count)).logits_per_image
    want = torch.tensor([distinct.index(c) for c in split.captions[:count]])
    return {"val_retrieval_top1": round(float((logits.argmax(-1) == want).float().mean()), 4),
            "val_distinct_captions": len(distinct), "val_images": count}


def card(name: str, enc: Any, metrics: dict[str, Any], fingerprint: str) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    return f"""# Vision encoder `{name}`

A CLIP ViT (`transformers.CLIPVisionModel`, {enc.num_layers} layers, hidden size {enc.hidden_size}, {enc.num_heads}
heads, {enc.image_size}px input in {enc.patch_size}px patches) trained by unimodal's contrastive image-text stage on
the run's data, with a {enc.train.text_layers}-layer caption tower over the run's text tokenizer (dropped after
training). Not a pretrained CLIP: it has seen only this data.

| metric | value |
|---|---|
{rows}

`val_retrieval_top1`: picking each held-out image's own caption among the split's distinct captions.

```python
from transformers import CLIPImageProcessor, CLIPVisionModel
model = CLIPVisionModel.from_pretrained("<this folder>")
processor = CLIPImageProcessor.from_pretrained("<this folder>")
```

Fingerprint: `{fingerprint}` (architecture, weights and pixel settings; a model trained on this encoder refuses
another).
"""
