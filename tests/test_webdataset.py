"""Data beyond one disk: image-caption pairs in WebDataset tars (img2dataset's layout) train with ``data=webdataset``,
an unreadable member is skipped and named, and streaming (litdata) token shards give the batches memmap shards do."""

from __future__ import annotations

import io
import json
import tarfile
from functools import partial

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import smoke_overrides
from tests.test_shards import FakeImage, FakeSamples, FakeText, expect
from unimodal.data.shards import write_shard
from unimodal.data.stream_shards import StreamTokenShard, write_stream_shard
from unimodal.errors import VocabularyMismatch
from unimodal.vocab import Vocabulary

CORRUPT = "00001.tar:sample-00001-0004.jpg"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_tars(folder, tars: int = 3, per_tar: int = 12) -> str:
    """``tars`` shards of ``per_tar`` samples: PNG or JPEG images with a .txt or a .json caption; one JPEG of
    the second tar is garbage."""
    rng = np.random.default_rng(0)
    colours = ["red", "green", "blue"]
    for t in range(tars):
        with tarfile.open(folder / f"{t:05d}.tar", "w") as tar:
            for i in range(per_tar):
                key = f"sample-{t:05d}-{i:04d}"
                colour = colours[(t + i) % 3]
                pixels = np.zeros((20, 24, 3), np.uint8)
                pixels[..., colours.index(colour)] = 200 + rng.integers(0, 50)
                buffer = io.BytesIO()
                fmt = "PNG" if i % 2 else "JPEG"
                Image.fromarray(pixels).save(buffer, format=fmt)
                data = buffer.getvalue()
                if f"{t:05d}.tar:{key}.jpg" == CORRUPT:
                    data = b"\xff\xd8\xff" + bytes(rng.integers(0, 256, 300, dtype=np.uint8))
                _add(tar, f"{key}.{'png' if fmt == 'PNG' else 'jpg'}", data)
                if i % 3:
                    _add(tar, f"{key}.txt", f"a {colour} square".encode())
                else:
                    _add(tar, f"{key}.json", json.dumps({"caption": f"a {colour} square", "key": key}).encode())
    return f"{folder}/{{00000..{tars - 1:05d}}}.tar"


def test_tars_load_and_the_corrupt_member_is_named(tmp_path, capsys):
    from unimodal.data.sources import data_fingerprint, load_samples

    urls = write_tars(tmp_path)
    cfg = OmegaConf.create({"name": "webdataset", "urls": urls, "limit": None, "num_train": 100, "num_val": 100,
                            "num_test": 100, "image_size": 16, "channels": 3})
    splits = load_samples(cfg, ("train", "val", "test"))
    lines = [line for line in capsys.readouterr().out.splitlines() if "skipped" in line]
    assert len(lines) == 1 and CORRUPT in lines[0] and "1 unreadable samples" in lines[0]
    assert sum(len(s) for s in splits.values()) == 35 and splits["train"].images.shape[1:] == (16, 16, 3)
    assert all(c.startswith("a ") and c.endswith(" square") for s in splits.values() for c in s.captions)
    first = data_fingerprint(cfg)
    (tmp_path / "00002.tar").write_bytes((tmp_path / "00002.tar").read_bytes() + b"\0" * 512)
    assert data_fingerprint(cfg) != first   # other tars: other tokenizers and shards


def test_webdataset_smoke_run_trains_from_streaming_shards(tmp_path, capsys):
    from unimodal.config import compose
    from unimodal.training.run import train

    urls = write_tars(tmp_path)
    run_dir = train(compose(smoke_overrides(tmp_path, "modality=image", "data=webdataset", f"data.urls={urls}",
                                            "data.image_size=16", "paths.shards_format=litdata",
                                            f"run_dir={tmp_path}/run")))
    out = capsys.readouterr().out
    assert sum(CORRUPT in line for line in out.splitlines()) == 1
    assert "streaming shard (litdata)" in out
    assert (run_dir / "lm" / "model.safetensors").is_file()


def test_streaming_shards_give_the_batches_of_memmap_shards(tmp_path):
    from unimodal.sequence import SequenceCodec
    from unimodal.training.lm_data import TaskBatches, TaskDataset, collate

    vocab = Vocabulary(64, {"image": (50, 1)})
    memmap = write_shard(tmp_path / "train", FakeSamples(23), {"text": FakeText(), "image": FakeImage()}, vocab,
                         expect(), progress=False)
    stream = write_stream_shard(str(tmp_path / "train.litdata"), memmap)
    assert isinstance(stream, StreamTokenShard) and len(stream) == len(memmap) == 23
    codec = SequenceCodec(vocab, image_grid=(2, 3))
    tasks = ["text->image", "image->text"]
    batches = []
    for shard in (memmap, stream):
        dataset = TaskDataset(shard, codec, tasks, context_length=64, cond_drop_prob=0.3, seed=1)
        sampler = TaskBatches(len(shard), len(tasks), 4, seed=2)
        batches.append([collate([dataset[item] for item in batch], vocab.pad_id)
                        for _ in range(2) for batch in sampler])
    assert len(batches[0]) == len(batches[1]) > 10
    for want, got in zip(*batches, strict=True):
        assert all(torch.equal(want[key], got[key]) for key in want)
    assert stream.captions == memmap.captions and stream.attributes == memmap.attributes
    with pytest.raises(VocabularyMismatch, match="image-fp.*other-fp|other-fp.*image-fp"):
        StreamTokenShard(str(tmp_path / "train.litdata")).check(expect("other-fp"))
    again = partial(StreamTokenShard, str(tmp_path / "train.litdata"))()   # reopened (a loader worker would)
    assert all(np.array_equal(again.payloads(i)["image"], memmap.payloads(i)["image"]) for i in range(23))
