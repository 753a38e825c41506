"""Scores for real data without an exact analyzer: a CLIP-style score and a Fréchet distance.

No pretrained CLIP or Inception network can be downloaded here, so both feature networks are small CNNs
trained on the spot, and named for what they are:

- *CLIP-style score*: a small contrastive image-text model trained on the dataset's own training captions
  (images through a CNN, captions as bags of words). Its own test retrieval accuracy is reported beside the
  score, so the reader sees how much the judge can tell apart. Score = 100 x mean max(cosine, 0), as CLIPScore.
- *FD (Fashion-MNIST classifier features)*: the Fréchet distance (:func:`unimodal.eval.metrics.fid.frechet_distance`)
  between Gaussians fitted to the penultimate features of a CNN trained to classify Fashion-MNIST. Not the
  Inception FID, and not comparable with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

SIZE = 32


def to_grey(images: np.ndarray, size: int = SIZE) -> torch.Tensor:
    """uint8 ``[N, H, W, C]`` -> float ``[N, 1, size, size]`` in [0, 1]: one input for grey and RGB sources."""
    batch = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).permute(0, 3, 1, 2).mean(1, keepdim=True)
    if batch.shape[-1] != size or batch.shape[-2] != size:
        batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return batch


class SmallCNN(nn.Module):
    """Three stride-2 convolutions and a global average: a ``width``-d feature, then a linear head."""

    def __init__(self, outputs: int, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, width, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _batches(count: int, batch_size: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield rng.integers(count, size=min(batch_size, count))


def train_classifier(images: np.ndarray, labels: np.ndarray, steps: int = 400, batch_size: int = 128,
                     seed: int = 0, progress: bool = True) -> SmallCNN:
    """A CNN classifier on ``images`` (the Fréchet distance's feature network)."""
    torch.manual_seed(seed)
    x, y = to_grey(images), torch.as_tensor(labels, dtype=torch.long)
    model = SmallCNN(int(y.max()) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for index in tqdm(_batches(len(x), batch_size, steps, seed), total=steps, desc="classifier",
                      disable=not progress):
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def classifier_accuracy(model: SmallCNN, images: np.ndarray, labels: np.ndarray) -> float:
    predicted = torch.cat([model(to_grey(images[i:i + 512])).argmax(-1) for i in range(0, len(images), 512)])
    return float((predicted.numpy() == np.asarray(labels)).mean())


@torch.no_grad()
def features(model: SmallCNN, images: np.ndarray) -> np.ndarray:
    return torch.cat([model.features(to_grey(images[i:i + 512])) for i in range(0, len(images), 512)]).numpy()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass
class Contrastive:
    """A small CLIP-like pair of encoders in one shared, l2-normalised space."""

    image: SmallCNN
    text: nn.EmbeddingBag
    vocab: dict[str, int]   # word -> row; row 0 is every unknown word

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        ids = [[self.vocab.get(w, 0) for w in words(c)] or [0] for c in captions]
        offsets = torch.tensor([0, *np.cumsum([len(i) for i in ids])[:-1]], dtype=torch.long)
        flat = torch.tensor([t for i in ids for t in i], dtype=torch.long)
        return F.normalize(self.text(flat, offsets), dim=-1)

    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        return F.normalize(self.image(to_grey(images)), dim=-1)

    def parameters(self) -> list[nn.Parameter]:
        return [*self.image.parameters(), *self.text.parameters()]


def train_contrastive(images: np.ndarray, captions: list[str], steps: int = 400, batch_size: int = 128,
                      dim: int = 64, seed: int = 0, progress: bool = True) -> Contrastive:
    """InfoNCE both ways; captions repeated inside a batch are all positives (soft targets), since a class
    caption such as "a sneaker" is shared by thousands of images."""
    torch.manual_seed(seed)
    vocab = {w: i + 1 for i, w in enumerate(sorted({w for c in captions for w in words(c)}))}
    model = Contrastive(SmallCNN(dim), nn.EmbeddingBag(len(vocab) + 1, dim, mode="mean"), vocab)
    caption_index = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    keys = torch.tensor([caption_index[c] for c in captions])
    x = to_grey(images)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    scale = 1 / 0.07  # CLIP's initial temperature, kept fixed: short runs are steadier without learning it
    for index in tqdm(_batches(len(x), batch_size, steps, seed), total=steps, desc="contrastive",
                      disable=not progress):
        img = F.normalize(model.image(x[index]), dim=-1)
        txt = model.encode_text([captions[i] for i in index])
        logits = scale * img @ txt.T
        same = (keys[index][:, None] == keys[index][None, :]).float()
        targets = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.image.eval()
    return model


@torch.no_grad()
def retrieval_accuracy(model: Contrastive, images: np.ndarray, captions: list[str]) -> tuple[float, int]:
    """Top-1 accuracy of picking each image's own caption among the distinct captions; and their number."""
    distinct = list(dict.fromkeys(captions))
    index = {c: i for i, c in enumerate(distinct)}
    sims = model.encode_images(images) @ model.encode_text(distinct).T
    hits = (sims.argmax(-1).numpy() == np.array([index[c] for c in captions])).mean()
    return float(hits), len(distinct)


@torch.no_grad()
def clip_score(model: Contrastive, images: np.ndarray, captions: list[str]) -> float:
    """100 x mean max(cosine(image, its caption), 0)."""
    cos = (model.encode_images(images) * model.encode_text(captions)).sum(-1)
    return float(100 * cos.clamp(min=0).mean())
