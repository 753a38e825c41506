"""AnyRes end to end on the real config tree (debug=smoke): a folder of 2:1 and 1:1 images keeps its shapes through
the data, the token shards and the LM; ``generate.py size=32x16`` and ``aspect=2:1`` write 2:1 PNGs; prompt images
keep their aspect ratio; clipart keeps each drawing's shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import smoke_overrides
from unimodal.config import compose
from unimodal.data.sources import load_samples

WIDE, SQUARE = (16, 32), (16, 16)   # (height, width) at data.image_size=16: one tile high


def write_folder(root):
    """Eight 2:1 pictures (a red bar) and eight 1:1 ones (a blue block), captioned so."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for index in range(16):
        wide = index % 2 == 0
        height, width = (24, 48) if wide else (24, 24)
        picture = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
        picture[6:18, 4:-4] = (220, 30, 30) if wide else (30, 30, 220)
        name = f"{'wide' if wide else 'square'}_{index}.png"
        Image.fromarray(picture).save(root / name)
        lines.append({"file_name": name, "text": "a wide red bar" if wide else "a blue block"})
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return root


def anyres_overrides(root, folder, *extra):
    return smoke_overrides(root, "modality=image", "data=folder", f"data.path={folder}", "data.image_size=16",
                           "tokenizer.image.anyres.max_tiles=2", *extra)


@pytest.fixture(scope="module")
def anyres_run(tmp_path_factory, one_thread):
    from unimodal.training.run import train

    root = tmp_path_factory.mktemp("anyres")
    folder = write_folder(root / "pictures")
    return root, folder, train(compose(anyres_overrides(root, folder, f"run_dir={root}/run")))


def test_the_run_records_anyres_and_its_data_keeps_its_shapes(anyres_run):
    from unimodal.data.shards import GRIDS

    root, folder, run = anyres_run
    info = json.loads((run / "run.json").read_text())
    assert info["image_anyres"] == {"max_tiles": 2, "grids": [[1, 1], [1, 2], [2, 1]]}
    assert info["image_grid"] == [4, 4] and info["image_layout"] == "flat"
    train = load_samples(compose(anyres_overrides(root, folder)).data, ("train",))["train"]
    assert {image.shape[:2] for image in train.images} == {WIDE, SQUARE}
    (grids_file,) = (root / "cache" / "shards").glob(f"*/train/{GRIDS}")
    assert {tuple(g) for g in np.load(grids_file)} == {(1, 2), (1, 1)}   # the LM read 2:1 images as 1x2 tiles
    assert json.loads((run / "train_summary.json").read_text())["steps"] == 4


def test_generate_writes_a_2_to_1_png_when_asked(anyres_run, tmp_path):
    from unimodal.commands.generate import generate

    _, _, run = anyres_run
    (sized,) = generate([f"run={run}", "prompt=a wide red bar", "output=image", "size=32x16", f"out_dir={tmp_path}"])
    with Image.open(sized) as png:   # written 16x larger (nearest) so that people can see it
        assert png.size == (32 * 16, 16 * 16)   # width x height: 2:1
    (shaped,) = generate([f"run={run}", "prompt=a wide red bar", "output=image", "aspect=2:1", "seed=1",
                          f"out_dir={tmp_path / 'aspect'}"])
    with Image.open(shaped) as png:
        assert png.size[0] == 2 * png.size[1]
    (square,) = generate([f"run={run}", "prompt=a blue block", "output=image", "aspect=1:1",
                          f"out_dir={tmp_path / 'square'}"])
    with Image.open(square) as png:
        assert png.size[0] == png.size[1]


def test_size_options_answer_in_one_line(anyres_run, capsys):
    from unimodal.commands.generate import main

    _, _, run = anyres_run
    for bad, says in (("size=wide", "size=wide: write WIDTHxHEIGHT"), ("aspect=0:1", "aspect=0:1: write"),
                      ("size=8x0", "size=8x0: write")):
        assert main([f"run={run}", "prompt=a", bad]) == 2
        assert says in capsys.readouterr().err
    assert main([f"run={run}", "prompt=a", "size=32x16", "aspect=2:1"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_prompt_images_keep_their_aspect_ratio(anyres_run):
    import unimodal
    from unimodal.model.generate import SamplingConfig

    _, _, run = anyres_run
    pipe = unimodal.load(run, device="cpu")
    wide = np.zeros((30, 60, 3), np.uint8)
    (segment,) = pipe.segments_from(wide)
    assert segment.payload.grid == (1, 2) and segment.payload.thumbnail.shape == (4, 4)
    caption = pipe.generate(wide, output="text", sampling=SamplingConfig(max_new_tokens=6))[0]
    assert isinstance(caption.text, str)
    answer = pipe.generate("a wide red bar", output="image", image_size=WIDE)[0]
    assert answer.images[0].shape == (*WIDE, 3) and answer.segments[0].payload.grid == (1, 2)


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
       '<rect width="{w}" height="{h}" fill="red"/></svg>')


def test_clipart_keeps_each_drawing_s_aspect_ratio(tmp_path, monkeypatch):
    import unimodal.data.clipart as clipart

    root = tmp_path / "svg" / "shapes"
    root.mkdir(parents=True)
    for index, (width, height) in enumerate([(40, 20), (20, 20), (20, 40), (60, 20)]):
        (root / f"shape_{index}.svg").write_text(SVG.format(w=width, h=height))
    overrides = ("data=clipart", f"data.root={tmp_path / 'svg'}", f"paths.cache_dir={tmp_path / 'cache'}",
                 "data.image_size=16", "tokenizer.image.anyres.max_tiles=2")
    data = compose(overrides).data
    sets = load_samples(data, ("train", "val", "test"))
    shapes = sorted(image.shape for split in sets.values() for image in split.images)
    assert shapes == [(11, 32, 3), (16, 16, 3), (16, 32, 3), (32, 16, 3)]   # 3:1 fits a 1x2 canvas at 11x32

    def no_render(*_):
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(clipart, "render_svg", no_render)
    again = load_samples(data, ("train",))["train"]
    assert all(np.array_equal(a, b) for a, b in zip(again.images, sets["train"].images, strict=True))
