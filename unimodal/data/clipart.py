"""``data=clipart``: Debian's ``openclipart-svg`` rendered with cairosvg, captioned from the SVG titles.

Rendering all ~7,400 files takes about 80 s at 64 px, so the renders of one file list at one size are
cached once as an npz under ``data.cache_dir`` (written to a temporary name, then renamed). Each SVG is
drawn at ``image_size`` wide (scaled down to fit when taller), centred on white; with AnyRes on
(``data.anyres``, following ``tokenizer.image.anyres``) it keeps its aspect ratio, drawn at the size its tile
grid holds. Files that fail to render, or render blank, are skipped and counted. Splits come from a hash of each
file's path.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.data.images import ImageTextSet, hash_splits, images_to_channels, skipped_line
from unimodal.errors import DataError
from unimodal.tokenizers.anyres_settings import AnyResSettings

CLIPART_ROOT = "/usr/share/openclipart/svg"   # Debian's openclipart-svg
CACHE_VERSION = 1          # bump when rendering or caption cleaning changes: old caches are then ignored
COLLECTION_TITLE_MIN = 8   # a title shared by this many files names a collection, not the picture
HEAD_BYTES = 65_536        # titles and keywords sit in the metadata at the top of the file

_TITLE = re.compile(r"<dc:title>(.*?)</dc:title>|<title[^>]*>(.*?)</title>", re.S)
_KEYWORD = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)
_CLIPART = re.compile(r"\b(?:open)?clip[\s-]*arts?\b(?:\s+by\s+[^-]*-)?")   # "clipart", "Clip art by X -"
_FILE_SUFFIX = re.compile(r"\.(?:svgz?|png|jpe?g|gif)\b")
_VERSION = re.compile(r"[\s_-]+(?:v|ver\.?|version)?\s*\d+(?:\.\d+)*\s*$")   # "tree_01", "logo v2", "x 1.0"
NOISE_WORDS = {"svg"}   # file-format noise in titles ("Lemon SVG theme")


def clean_caption(text: str) -> str:
    """A noisy SVG title or file name -> a short lower-case caption ('' when nothing is left)."""
    text = html.unescape(text).lower().strip()
    text = _FILE_SUFFIX.sub(" ", text)
    text = _CLIPART.sub(" ", text)
    text = _VERSION.sub("", text)
    words = []
    for word in re.sub(r"[^\w']+|_", " ", text).split():
        word = re.sub(r"^([^\W\d_]+)\d+$", r"\1", word.strip("'"))  # "home10" -> "home"
        if word and not any(ch.isdigit() for ch in word) and word not in NOISE_WORDS:
            words.append(word)
    return " ".join(words)


def svg_text(path: Path) -> tuple[str, list[str]]:
    """The picture's title (the first ``dc:title``/``title``) and its keywords, as written in the file."""
    head = path.read_bytes()[:HEAD_BYTES].decode("utf-8", errors="replace")
    match = _TITLE.search(head)
    title = (match.group(1) or match.group(2) or "") if match else ""
    return title, [k for k in _KEYWORD.findall(head) if k.strip()]


def captions_for(root: Path, names: list[str], all_names: list[str]) -> list[str]:
    """Cleaned titles; collection-wide titles ("Lemon SVG theme") and empty ones fall back to the file
    name, then to the keywords, then to the category folder. Titles are counted over ``all_names`` (every
    SVG under ``root``), so a file's caption does not depend on ``data.limit``."""
    texts = {name: svg_text(root / name) for name in {*names, *all_names}}
    shared = Counter(title.strip().lower() for title, _ in texts.values())
    captions = []
    for name in names:
        title, keywords = texts[name]
        caption = clean_caption(title) if shared[title.strip().lower()] < COLLECTION_TITLE_MIN else ""
        caption = caption or clean_caption(Path(name).stem)
        caption = caption or " ".join(list(dict.fromkeys(filter(None, map(clean_caption, keywords))))[:3])
        captions.append(caption or clean_caption(Path(name).parent.name) or "clip art")
    return captions


def render_svg(path: Path, size: int, anyres: AnyResSettings | None = None) -> np.ndarray:
    """uint8 ``[size, size, 3]``: drawn ``size`` wide (shrunk to fit when taller), centred on white. With
    ``anyres``, uint8 ``[h, w, 3]`` of the drawing's own aspect ratio, at the size its tile grid holds."""
    import io

    import cairosvg
    from PIL import Image, ImageOps

    # Wide enough for the widest tile grid, so AnyRes images are shrunk to their size, never enlarged.
    width = size if anyres is None else size * anyres.max_tiles
    # bytestring, not url=: with unsafe=False cairosvg then resolves no external reference (no network).
    png = cairosvg.svg2png(bytestring=path.read_bytes(), output_width=width)
    with Image.open(io.BytesIO(png)) as drawn:
        rgba = drawn.convert("RGBA")
    if anyres is not None:
        height, width = anyres.kept_size(rgba.height, rgba.width, size)
        rgba = rgba.resize((width, height), Image.Resampling.LANCZOS)
        canvas = Image.new("RGBA", rgba.size, "white")
        canvas.alpha_composite(rgba)
        return np.asarray(canvas.convert("RGB"), dtype=np.uint8)
    rgba = ImageOps.contain(rgba, (size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), "white")
    canvas.alpha_composite(rgba, ((size - rgba.width) // 2, (size - rgba.height) // 2))
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8)


def list_svgs(root: Path, limit: int | None) -> tuple[list[str], list[str]]:
    """Every SVG under ``root`` (relative paths, sorted) and the ones selected by ``limit``."""
    if not root.is_dir():
        raise DataError(f"OpenClipart folder {root} is missing (data.root); install it with "
                        f"`sudo apt-get install openclipart-svg` or point data.root at a folder of SVGs")
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.svg"))
    if not names:
        raise DataError(f"data.root={root} holds no .svg files")
    if not limit:
        return names, names
    # the first `limit` in hash order: a spread over every category, not just the first folder
    return names, sorted(sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())[:int(limit)])


def render_all(root: Path, names: list[str], all_names: list[str], size: int, cache: Path,
               anyres: AnyResSettings | None = None) -> ImageTextSet:
    """Render (or reuse the cached renders of) ``names``; failures are skipped and logged."""
    if cache.is_file():
        with np.load(cache) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            images = data["images"]
            if "shapes" in data:   # images of their own sizes, stored back to back
                ends = np.cumsum([int(np.prod(shape)) for shape in data["shapes"]])
                images = [part.reshape(shape) for part, shape in zip(np.split(images, ends[:-1]), data["shapes"],
                                                                     strict=True)]
            return ImageTextSet(images, meta["captions"], names=meta["names"])
    from tqdm.auto import tqdm

    print(f"[data] rendering {len(names)} OpenClipart SVGs at {size} px once (about {len(names) // 90 + 1} s); "
          f"cache: {cache}", flush=True)
    images, kept, skipped = [], [], []
    for name in tqdm(names, desc="render svg", unit="file", disable=None):
        try:
            image = render_svg(root / name, size, anyres)
        except Exception as err:  # cairosvg raises many kinds (XML, CSS, value, cairo errors) on bad files
            skipped.append((name, type(err).__name__))
            continue
        if image.min() == 255:
            skipped.append((name, "blank"))
            continue
        images.append(image)
        kept.append(name)
    if skipped:
        print(skipped_line(f"of {len(names)} SVGs (failed to render)", root, skipped), flush=True)
    if not kept:
        raise DataError(f"none of the {len(names)} SVGs under {root} rendered")
    result = ImageTextSet(images if anyres else np.stack(images), captions_for(root, kept, all_names), names=kept)
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta = {"names": kept, "captions": result.captions, "skipped": skipped}
    arrays = {"images": result.images}
    if anyres:   # npz holds no ragged arrays without pickle: one flat array and each image's shape
        arrays = {"images": np.concatenate([image.reshape(-1) for image in images]),
                  "shapes": np.array([image.shape for image in images], dtype=np.int64)}
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    os.replace(tmp, cache)   # complete files only: a killed run never leaves a cache that looks whole
    return result


def cache_path(data_cfg: Any, root: Path, names: list[str], all_names: list[str]) -> Path:
    from unimodal.tokenizers.base import hash_json

    size = int(data_cfg.image_size)
    # Captions also depend on every title under root (collection titles), hence the full listing.
    anyres = AnyResSettings.from_config(data_cfg.get("anyres"))
    extra = {} if anyres is None else {"anyres": anyres.to_json()}   # square renders keep their cache key
    key = hash_json({"root": str(root.resolve()), "files": names, "all": hash_json(all_names), "size": size,
                     "version": CACHE_VERSION, **extra})
    return Path(str(data_cfg.cache_dir or ".cache/unimodal")) / f"clipart-{size}px-{key[:12]}.npz"


def load_clipart(data_cfg: Any, splits: tuple[str, ...]) -> dict[str, ImageTextSet]:
    root = Path(str(data_cfg.root or CLIPART_ROOT))
    all_names, names = list_svgs(root, data_cfg.limit)
    cache = cache_path(data_cfg, root, names, all_names)
    anyres = AnyResSettings.from_config(data_cfg.get("anyres"))
    everything = render_all(root, names, all_names, int(data_cfg.image_size), cache, anyres)
    everything.images = images_to_channels(everything.images, int(data_cfg.channels))
    return hash_splits(everything, data_cfg, splits, "clipart", "raise data.limit (3 or more)")
