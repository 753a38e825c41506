"""Real image sources: Fashion-MNIST, OpenClipart, a user folder; bad files are skipped and named."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import smoke_overrides
from unimodal.config import compose
from unimodal.data.clipart import CLIPART_ROOT, clean_caption
from unimodal.data.images import FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT
from unimodal.data.sources import data_fingerprint, load_images, load_samples
from unimodal.errors import ConfigError, DataError

needs_fashion = pytest.mark.skipif(not Path(FASHION_MNIST_ROOT).is_dir(),
                                   reason="needs `apt-get install dataset-fashion-mnist` (.ci/run installs it)")
needs_clipart = pytest.mark.skipif(not Path(CLIPART_ROOT).is_dir(),
                                   reason="needs `apt-get install openclipart-svg` (.ci/run installs it)")


def data_cfg(*overrides: str):
    return compose(list(overrides)).data


# --- Fashion-MNIST ---------------------------------------------------------------------------
@needs_fashion
def test_fashion_mnist_splits_shapes_and_captions():
    cfg = data_cfg("data=fashion_mnist", "data.num_train=64", "data.num_val=8", "data.num_test=16")
    sets = load_samples(cfg, ("train", "val", "test"))
    assert [len(sets[s]) for s in ("train", "val", "test")] == [64, 8, 16]
    train = sets["train"]
    assert train.images.shape == (64, 32, 32, 1) and train.images.dtype == np.uint8 and train.channels == 1
    assert train.images.max() > 200 and train.images[:, :2].max() == 0   # 28 -> 32 pads 2 black rows
    for caption, label in zip(train.captions, train.labels, strict=True):
        assert caption.split(" ", 1)[1] == FASHION_MNIST_CLASSES[label]
    assert "an ankle boot" in train.captions and "a t-shirt" in train.captions
    batch = train.media("image", 0, 4)
    assert tuple(batch.shape) == (4, 1, 32, 32) and 0 <= float(batch.min()) and float(batch.max()) <= 1
    rgb = load_images(data_cfg("data=fashion_mnist", "data.num_test=4", "data.channels=3", "data.image_size=16"),
                      "test")
    assert rgb.images.shape == (4, 16, 16, 3)


def test_fashion_mnist_missing_root_gives_install_command(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as err:
        load_images(data_cfg("data=fashion_mnist", f"data.root={tmp_path}"), "train")
    assert str(tmp_path) in str(err.value)


def test_fashion_mnist_wrong_magic_number(tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        with gzip.open(tmp_path / name, "wb") as handle:
            handle.write(b"\x00\x00\x99\x99" + bytes(32))
    with pytest.raises(DataError, match="magic number"):
        load_images(data_cfg("data=fashion_mnist", f"data.root={tmp_path}"), "train")


# --- OpenClipart -----------------------------------------------------------------------------
@pytest.mark.parametrize("title, caption", [
    ("Clipart by Nicu Buculei - jigsaw_red_10", "jigsaw red"),
    ("help-books-aj.svg", "help books aj"),
    ("Ice Cream Cone (4 Scoop)", "ice cream cone scoop"),
    ("Homes Clipart", "homes"),
    ("Clip Art: Red   Flower", "red flower"),
    ("Tree_01", "tree"),
    ("logo v2", "logo"),
    ("Version 1.0", "version"),
    ("Man&apos;s hat", "man's hat"),
    ("clip art", ""),
])
def test_clipart_caption_cleaning(title, caption):
    assert clean_caption(title) == caption


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/" width="{w}" '
       'height="20"><metadata><dc:title>{title}</dc:title></metadata>'
       '<rect x="2" y="2" width="10" height="10" fill="{colour}"/></svg>')


def test_clipart_render_skips_bad_svgs_and_caches(tmp_path, capsys, monkeypatch):
    import unimodal.data.clipart as clipart

    root = tmp_path / "svg" / "shapes"
    root.mkdir(parents=True)
    for i, colour in enumerate(["red", "green", "blue", "black"]):
        (root / f"box_{i}.svg").write_text(SVG.format(w=20 + 20 * i, title=f"A {colour} box_0{i}.svg", colour=colour))
    (root / "broken.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><rect")
    (root / "blank.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"/>')
    overrides = ("data=clipart", f"data.root={tmp_path / 'svg'}", f"paths.cache_dir={tmp_path / 'cache'}",
                 "data.image_size=16")
    sets = load_samples(data_cfg(*overrides), ("train", "val", "test"))
    out = capsys.readouterr().out
    assert "skipped 2 of 6 SVGs" in out and "broken.svg (" in out and "blank.svg (blank)" in out
    everything = [c for s in sets.values() for c in s.captions]
    assert sorted(everything) == ["a black box", "a blue box", "a green box", "a red box"]
    image = sets["train"].images[0]
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and image[-1, -1].tolist() == [255, 255, 255]
    assert len(list((tmp_path / "cache").glob("clipart-16px-*.npz"))) == 1

    def no_render(*_):
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(clipart, "render_svg", no_render)
    again = load_samples(data_cfg(*overrides), ("train",))["train"]
    assert again.captions == sets["train"].captions and np.array_equal(again.images, sets["train"].images)


@needs_clipart
def test_clipart_package_renders_a_few(tmp_path):
    cfg = data_cfg("data=clipart", "data.limit=5", f"paths.cache_dir={tmp_path}")
    sets = load_samples(cfg, ("train", "val", "test"))
    total = sum(len(s) for s in sets.values())
    assert 3 <= total <= 5
    for split in sets.values():
        assert split.images.shape[1:] == (64, 64, 3) and split.images.dtype == np.uint8
        assert all(isinstance(c, str) and c and c == c.lower() for c in split.captions)


# --- a user folder ---------------------------------------------------------------------------
def png_bytes(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def make_folder(root: Path) -> Path:
    """4 good images (one RGBA, one wide, one JPEG) and 3 bad files, all listed in metadata.jsonl."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir()
    (root / "a.png").write_bytes(png_bytes((40, 40)))
    (root / "b.png").write_bytes(png_bytes((24, 24), "RGBA", seed=1))
    (root / "sub" / "c.png").write_bytes(png_bytes((64, 32), seed=2))
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(root / "d.jpg")
    (root / "truncated.png").write_bytes(png_bytes((48, 48), seed=3)[:1500])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("this is a text file, not a picture\n")
    lines = [{"file_name": name, "text": f"picture {name}"} for name in
             ("a.png", "truncated.png", "b.png", "empty.png", "sub/c.png", "notes.png", "d.jpg")]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return root


def test_folder_skips_bad_files_and_names_them(tmp_path, capsys):
    folder = make_folder(tmp_path / "pics")
    sets = load_samples(data_cfg("data=folder", f"data.path={folder}"), ("train", "val", "test"))
    out = capsys.readouterr().out
    assert f"[data] skipped 3 unreadable files in {folder}:" in out
    for bad in ("truncated.png (truncated)", "empty.png (empty)", "notes.png (not an image)"):
        assert bad in out
    names = sorted(n for s in sets.values() for n in s.names)
    assert names == ["a.png", "b.png", "d.jpg", "sub/c.png"]
    assert [len(sets[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    for split in sets.values():
        assert split.images.shape[1:] == (32, 32, 3) and split.images.dtype == np.uint8
        assert split.captions == [f"picture {n}" for n in split.names]


def test_folder_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        load_images(data_cfg("data=folder"), "train")
    with pytest.raises(DataError, match="no such folder"):
        load_images(data_cfg("data=folder", f"data.path={tmp_path / 'nope'}"), "train")
    with pytest.raises(DataError, match="metadata.jsonl is missing"):
        load_images(data_cfg("data=folder", f"data.path={tmp_path}"), "train")
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "x"}\n{"file_name": "b.png", "text"\n')
    with pytest.raises(DataError, match=r"metadata\.jsonl:2: not valid JSON"):
        load_images(data_cfg("data=folder", f"data.path={tmp_path}"), "train")
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png"}\n')
    with pytest.raises(DataError, match=r"metadata\.jsonl:1: needs string fields"):
        load_images(data_cfg("data=folder", f"data.path={tmp_path}"), "train")


# --- training on image data ------------------------------------------------------------------
def test_tokenizer_stage_trains_on_a_folder_with_bad_files(tmp_path, capsys):
    from unimodal.training.run import train

    folder = make_folder(tmp_path / "pics")
    train(compose(smoke_overrides(tmp_path, "stage=tokenizers", "modality=image", "data=folder",
                                  f"data.path={folder}")))
    out = capsys.readouterr().out
    assert "skipped 3 unreadable files" in out and "notes.png (not an image)" in out
    assert "[stage 0] image tokenizer ->" in out
    exported = [p.name for p in (tmp_path / "tokenizers").iterdir()]
    assert any(name.startswith("image-") for name in exported) and any(name.startswith("text-") for name in exported)


@needs_fashion
def test_language_model_trains_on_fashion_mnist(tmp_path):
    import unimodal
    from unimodal.model.generate import SamplingConfig
    from unimodal.training.run import train

    run_dir = train(compose(smoke_overrides(tmp_path, "modality=image", "data=fashion_mnist", "lm.max_steps=2",
                                            f"run_dir={tmp_path}/run")))
    assert json.loads((run_dir / "run.json").read_text())["tasks"] == ["text->image", "image->text"]
    pipe = unimodal.load(run_dir, device="cpu")
    image = pipe.generate("a sneaker", output="image", sampling=SamplingConfig(max_new_tokens=80))[0].images[0]
    assert image.shape == (32, 32, 1) and image.dtype == np.uint8
    caption = pipe.generate(np.zeros((32, 32, 3), np.uint8), output="text", sampling=SamplingConfig(max_new_tokens=4))
    assert isinstance(caption[0].text, str)


def test_image_only_data_refuses_audio(tmp_path):
    from unimodal.training.run import train

    with pytest.raises(ConfigError, match="modality=image or modality=text"):
        train(compose(smoke_overrides(tmp_path, "data=fashion_mnist")))   # default modality: image+audio
    with pytest.raises(ConfigError, match="tokenizer.image.channels=3"):
        train(compose(smoke_overrides(tmp_path, "data=fashion_mnist", "modality=image",
                                      "tokenizer.image.channels=3")))


def test_synthetic_images_and_unchanged_fingerprint():
    cfg = data_cfg("data.num_test=3")
    test = load_images(cfg, "test")
    assert test.images.shape == (3, 32, 32, 3) and len(test.captions) == 3
    # Token caches and tokenizer folders made before the real sources existed keep their names.
    assert data_fingerprint(data_cfg()) == "9b29b9991547a16c"
