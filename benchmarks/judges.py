"""How strict the judges are: noise read as a hit, and clean, degraded and tokenizer-reconstructed renders read exactly.

    python benchmarks/judges.py [noise=300] [scenes=300] [clips=150] [seed=0]
        [image_tokenizer=<folder>] [audio_tokenizer=<folder>] [video_tokenizer=<folder>]

Per modality (images, sounds, clips), with the world's analyzers and the strict judge (exactly the requested
objects, in order, nothing else):

- noise: ``noise`` inputs of every kind of unimodal/data/synthetic/noise.py, per kind: the share read as one
  recognisable object, and the share read as the single most frequent recognisable object list, which is the hit
  rate of the prompt set that would suit the noise best (the bar: at most 2%)
- clean: ``scenes`` rendered scenes of every colour-shape pair, 1-3 objects (``clips`` clips, 1-2 objects)
- degraded: the same after a 3x3 box blur and Gaussian noise of 0.05 (images, every frame of a clip), or
  white noise at 20 dB SNR (sounds)
- reconstructed: the same through a trained tokenizer's encode -> decode, when its folder is given: the judge
  must not reject what an honest (blurry) reconstruction keeps. Single-object scenes are reported apart.

Appends the numbers to ``benchmarks/results/judges-<commit>.json``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose commit a record names


def noise_rates(readings: list[list[tuple]]) -> dict[str, float]:
    recognisable = [tuple(r) for r in readings if r and all("unknown" not in obj for obj in r)]
    return {"one_object": sum(len(r) == 1 for r in recognisable) / len(readings),
            "best_prompt": max(Counter(recognisable).values(), default=0) / len(readings), "inputs": len(readings)}


def exact_rates(wants: list[list[tuple]], readings: list[list[tuple]]) -> dict[str, Any]:
    from unimodal.eval.world.suite import strict_hit

    hits = [strict_hit(w, r) for w, r in zip(wants, readings, strict=True)]
    single = [h for w, h in zip(wants, hits, strict=True) if len(w) == 1]
    return {"exact": float(np.mean(hits)), "single_exact": float(np.mean(single)) if single else None,
            "scenes": len(hits)}


def reconstruct(folder: str, media: list[np.ndarray], modality: str) -> list[np.ndarray]:
    import torch

    from unimodal.media import images_to_tensor, tensor_to_images, tensor_to_videos, videos_to_tensor
    from unimodal.tokenizers.base import load_tokenizer

    tokenizer = load_tokenizer(Path(folder)).eval()
    out: list[np.ndarray] = []
    for start in range(0, len(media), 32):
        chunk = media[start:start + 32]
        with torch.no_grad():
            if modality == "image":
                out += tensor_to_images(tokenizer.decode(tokenizer.encode(images_to_tensor(chunk))))
            elif modality == "video":
                out += tensor_to_videos(tokenizer.decode(tokenizer.encode(videos_to_tensor(chunk))))
            else:
                decoded = tokenizer.decode(tokenizer.encode(torch.from_numpy(np.stack(chunk))))
                out += [wave.reshape(-1).numpy() for wave in decoded]
    return out


def main(argv: list[str]) -> None:
    from scipy import ndimage

    from unimodal.data.motion import MotionWorld, motions_in
    from unimodal.data.synthetic.analyze import analyze_image, analyze_sound
    from unimodal.data.synthetic.noise import CLIP_NOISE, IMAGE_NOISE, SOUND_NOISE, noise_clip, noise_image, noise_sound
    from unimodal.data.synthetic.world import World
    from unimodal.records import write_record

    args = dict(a.split("=", 1) for a in argv)
    count, seed = int(args.get("noise", 300)), int(args.get("seed", 0))
    rng = np.random.default_rng(seed)
    world = World()
    motion = MotionWorld(world, 9)
    sr = world.config.sample_rate

    def read_image(image: np.ndarray) -> list[tuple]:
        return [(o.color, o.shape) for o in analyze_image(image)]

    def read_sound(wave: np.ndarray) -> list[tuple]:
        return analyze_sound(wave, sr)

    def blur(image: np.ndarray) -> np.ndarray:  # HxWx3 or TxHxWx3, uint8 -> float in [0, 1]
        size = (3, 3, 1) if image.ndim == 3 else (1, 3, 3, 1)
        blurred = ndimage.uniform_filter(image.astype(np.float64) / 255.0, size=size, mode="constant")
        return np.clip(blurred + rng.normal(0.0, 0.05, blurred.shape), 0.0, 1.0)

    def degrade(wave: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        return wave + rng.normal(0.0, rms / 10.0, wave.shape)

    started = time.time()
    results: dict[str, Any] = {}
    scenes = world.dataset(int(args.get("scenes", 300)), seed=seed + 1, split="all")
    clips = motion.dataset(int(args.get("clips", 150)), seed=seed + 1, split="all")
    plans = [("image", IMAGE_NOISE, lambda k: noise_image(rng, k), read_image, scenes,
              world.render_image, blur),
             ("audio", SOUND_NOISE, lambda k: noise_sound(rng, k), read_sound, scenes, world.render_sound, degrade),
             ("video", CLIP_NOISE, lambda k: noise_clip(rng, k), motions_in, clips, motion.render_video,
              lambda v: np.round(255 * blur(v)).astype(np.uint8))]
    for modality, kinds, make_noise, read, items, render, damage in plans:
        per_kind = max(1, (count if modality != "video" else count // 3) // len(kinds))
        entry: dict[str, Any] = {"noise": {k: noise_rates([read(make_noise(k)) for _ in range(per_kind)])
                                           for k in kinds}}
        wants = [item.attributes() for item in items]
        media = [render(item) for item in items]
        entry["clean"] = exact_rates(wants, [read(m) for m in media])
        entry["degraded"] = exact_rates(wants, [read(damage(m)) for m in media])
        folder = args.get(f"{modality}_tokenizer")
        if folder:
            entry["reconstructed"] = {"tokenizer": folder,
                                      **exact_rates(wants, [read(m) for m in reconstruct(folder, media, modality)])}
        results[modality] = entry
        worst = max(v["best_prompt"] for v in entry["noise"].values())
        rebuilt = entry.get("reconstructed")
        print(f"{modality}: noise best-prompt rate <= {worst:.3f}; exact clean {entry['clean']['exact']:.3f}, "
              f"degraded {entry['degraded']['exact']:.3f}" + (f", reconstructed {rebuilt['exact']:.3f} (single "
                                                                 f"{rebuilt['single_exact']:.3f})" if rebuilt else ""),
              flush=True)
    write_record("judges", results, ROOT, argv, started)


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
