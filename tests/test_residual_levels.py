"""An image cell holding K residual levels (rvq) in the LM: laid out as audio's K codebooks are (flat, delay,
coarse_first) by the same code, level k in its own id range, constrained decoding that keeps every level in place;
AnyRes tiles (any allowed grid, or one requested grid) and framewise video frames carry the levels too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unimodal import spans
from unimodal.model.constraints import SpanState
from unimodal.sequence import LAYOUTS, Segment, SequenceCodec
from unimodal.tokenizers.anyres import AnyResImage
from unimodal.vocab import Vocabulary

LEVELS, CODES, GRID = 3, 6, (2, 3)
VOCAB = Vocabulary(20, {"image": (CODES, LEVELS), "audio": (CODES, LEVELS), "video": (5, 2)})


def _body(codec: SequenceCodec, ids: np.ndarray, opener: str, closer: str) -> np.ndarray:
    start = int(np.flatnonzero(ids == codec.vocab.special(opener))[0])
    return ids[start + 1:int(np.flatnonzero(ids == codec.vocab.special(closer))[0])]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(LAYOUTS), st.integers(0, 2**31 - 1))
def test_image_levels_round_trip_with_audio_s_layout(layout, seed):
    """[h, w, K] codes -> ids -> the same codes; the body is audio's layout of the same [K, h*w] codes, id for id
    once each range's start is taken off, and every id lies in its position's planned range."""
    codec = SequenceCodec(VOCAB, GRID, audio_frames=GRID[0] * GRID[1], audio_layout=layout, image_layout=layout)
    codes = np.random.default_rng(seed).integers(0, CODES, (*GRID, LEVELS))
    ids = codec.encode([Segment("text", [1]), Segment("image", codes, loss=True)]).ids
    text, image = codec.decode(ids)
    assert np.array_equal(image.payload, codes) and not image.truncated
    body = _body(codec, ids, "<boi>", "<eoi>")
    plan = codec.span_plan("image")
    assert len(plan) == len(body) and ((body >= plan.low) & (body < plan.high)).all()
    heard = _body(codec, codec.encode([Segment("audio", codes.reshape(-1, LEVELS).T)]).ids, "<boa>", "<eoa>")
    seen_books, heard_books = VOCAB.to_local(body)[1:], VOCAB.to_local(heard)[1:]
    assert all(np.array_equal(a, b) for a, b in zip(seen_books, heard_books, strict=True))


def test_each_level_has_its_own_range_and_a_cut_image_keeps_whole_rows():
    codec = SequenceCodec(VOCAB, GRID, image_layout="flat")
    codes = np.arange(2 * 3 * LEVELS).reshape(*GRID, LEVELS) % CODES
    body = codec.encode([Segment("image", codes)], add_bos=False, add_eos=False).ids[1:-1]
    books = VOCAB.to_local(body)[1]
    assert books.tolist() == [0, 1, 2] * 6   # flat: the levels of each cell in turn, each in its own range
    assert len({tuple(VOCAB.range_of("image", k)) for k in range(LEVELS)}) == LEVELS
    ids = codec.encode([Segment("image", codes)], add_eos=False).ids
    (cut,) = codec.decode(ids[:2 + 4 * LEVELS])   # <bos> <boi>, then four whole cells: one whole row
    assert cut.truncated and np.array_equal(cut.payload, codes[:1])
    with pytest.raises(ValueError, match=r"\[h, w, 3\]"):
        codec.encode([Segment("image", codes[..., 0])])
    with pytest.raises(ValueError, match="row_separators"):
        SequenceCodec(VOCAB, GRID, row_separators=True)


def _sample(codec: SequenceCodec, outputs: list[str], budget: int, seed: int) -> np.ndarray:
    """The span constraints driven by random logits over the whole vocabulary (what an untrained model draws)."""
    rng = np.random.default_rng(seed)
    state = SpanState(codec, outputs, budget)
    ids: list[int] = []
    while not state.done and len(ids) < budget:
        allowed = state.allowed()
        mask = np.full(codec.vocab.size, -np.inf)
        for low, high in [allowed] if isinstance(allowed, tuple) else allowed:
            mask[low:high] = 0.0
        ids.append(int(np.argmax(rng.normal(size=codec.vocab.size) * 3 + mask)))
        state.advance(ids[-1])
    return np.asarray(ids)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_constrained_decoding_puts_level_k_only_where_level_k_belongs(layout):
    codec = SequenceCodec(VOCAB, GRID, image_layout=layout)
    marker = codec.encode([Segment("image", np.zeros((*GRID, LEVELS), np.int64))], add_bos=False, add_eos=False)
    wanted = np.where(marker.ids[1:-1] == VOCAB.pad_id, -1, VOCAB.to_local(np.maximum(marker.ids[1:-1], 0))[1])
    for seed in range(10):
        ids = _sample(codec, ["text", "image"], 40, seed)
        body = _body(codec, ids, "<boi>", "<eoi>")
        assert len(body) == len(wanted)
        assert np.array_equal(np.where(wanted >= 0, VOCAB.to_local(body)[1], -1), wanted)
        assert (body[wanted < 0] == VOCAB.pad_id).all()
        (image,) = [s for s in codec.decode(ids) if s.modality == "image"]
        assert image.payload.shape == (*GRID, LEVELS) and not image.truncated


def _anyres_codec(layout: str, **options) -> SequenceCodec:
    return SequenceCodec(VOCAB, GRID, image_layout=layout, image_anyres_max_tiles=3,
                         image_anyres_grids=[[1, 1], [1, 2], [2, 1]], **options)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_anyres_tiles_carry_the_levels_and_keep_to_the_allowed_grids(layout):
    codec = _anyres_codec(layout)
    rng = np.random.default_rng(0)
    payload = AnyResImage(rng.integers(0, CODES, (*GRID, LEVELS)), rng.integers(0, CODES, (1, 2, *GRID, LEVELS)))
    (decoded,) = codec.decode(codec.encode([Segment("image", payload)]).ids)
    assert decoded.payload == payload and not decoded.truncated
    with pytest.raises(ValueError, match="image_anyres_grids"):
        codec.encode([Segment("image", AnyResImage(payload.thumbnail, np.zeros((1, 3, *GRID, LEVELS), int)))])
    grids = set()
    for seed in range(120):
        for segment in codec.decode(_sample(codec, ["image"], 200, seed)):
            assert not segment.truncated
            tiled = isinstance(segment.payload, AnyResImage)
            assert (segment.payload.thumbnail if tiled else segment.payload).shape == (*GRID, LEVELS)
            grids.add(segment.payload.grid if tiled else None)
    assert grids == {None, (1, 1), (1, 2), (2, 1)}   # never (1, 3), (3, 1): not allowed, though 3 tiles fit


def test_a_requested_grid_is_the_whole_plan_and_generation_holds_to_it():
    codec = _anyres_codec("delay")
    wide = codec.with_image_tiles((1, 2))
    tile = len(codec.tile_plan())
    assert len(wide.span_plan("image")) == tile + 2 * (1 + tile) and len(codec.span_plan("image")) == tile
    for seed in range(6):
        (segment,) = wide.decode(_sample(wide, ["image"], 200, seed))
        assert segment.payload.grid == (1, 2) and not segment.truncated
    # a budget too small for the requested grid never opens the span
    assert _sample(wide, ["image"], len(wide.span_plan("image")) + 2, 0).tolist() == [VOCAB.eos_id]
    with pytest.raises(ValueError, match="not one this codec allows"):
        codec.with_image_tiles((2, 2))
    with pytest.raises(ValueError, match="needs AnyRes"):
        SequenceCodec(VOCAB, GRID).with_image_tiles((1, 2))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_framewise_video_frames_carry_the_levels(layout):
    codec = SequenceCodec(VOCAB, GRID, video_grid=(3, 2, 2), image_layout=layout)
    codes = np.random.default_rng(1).integers(0, 5, (3, 2, 2, 2))
    ids = codec.encode([Segment("video", codes, loss=True)]).ids
    (video,) = codec.decode(ids)
    assert np.array_equal(video.payload, codes) and not video.truncated
    body = _body(codec, ids, "<bov>", "<eov>")
    assert len(body) == len(codec.span_plan("video")) == 3 * spans.stack_span_length(layout, 2, 4) + 2
    for seed in range(4):
        (clip,) = codec.decode(_sample(codec, ["video"], 80, seed))
        assert clip.payload.shape == (3, 2, 2, 2) and not clip.truncated


def test_framewise_tokenizer_with_an_rvq_image_tokenizer():
    from unimodal.tokenizers.video import FramewiseVideoTokenizer

    torch.manual_seed(0)
    image = {"kind": "grid2d", "image_size": 16, "block_channels": [8, 16], "norm_groups": 4, "latent_dim": 4,
             "quantizer": {"kind": "rvq", "num_quantizers": 2, "codebook_size": 8}}
    tokenizer = FramewiseVideoTokenizer(image, num_frames=5, sample_frames=3).eval()
    codes = tokenizer.encode(torch.rand(2, 5, 3, 16, 16))
    assert tokenizer.num_codebooks == 2 and tuple(codes.shape) == (2, 3, 8, 8, 2)
    assert tuple(tokenizer.decode(codes).shape) == (2, 3, 3, 16, 16)


# --- through the LM stage (debug=smoke) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rvq_run(tmp_path_factory, one_thread):
    from tests.conftest import smoke_overrides
    from unimodal.config import compose
    from unimodal.training.run import train

    root = tmp_path_factory.mktemp("rvq")
    return train(compose(smoke_overrides(root, "modality=image", "tokenizer/image=rvq", "tokenizer.image.layout=delay",
                                         f"run_dir={root}/run")))


def test_rvq_trains_through_the_lm_stage_and_its_images_decode(rvq_run, tmp_path):
    import json

    import unimodal
    from unimodal.commands.generate import generate
    from unimodal.model.generate import SamplingConfig

    info = json.loads((rvq_run / "run.json").read_text())
    assert info["image_layout"] == "delay" and info["image_grid"] == [8, 8]
    assert json.loads((rvq_run / "train_summary.json").read_text())["steps"] == 4
    pipe = unimodal.load(rvq_run, device="cpu")
    assert pipe.vocab.ranges["image"].num_codebooks == 2
    images = pipe.generate("a red circle", output="image", num_samples=2,
                           sampling=SamplingConfig(cfg_scale={"image": 2.0}, max_new_tokens=200))
    for answer in images:
        assert answer.segments[0].payload.shape == (8, 8, 2) and not answer.truncated
        assert answer.images[0].shape == (32, 32, 3)
    caption = pipe.generate(images[0].images[0], output="text", sampling=SamplingConfig(max_new_tokens=6))[0]
    assert isinstance(caption.text, str)
    (png,) = generate([f"run={rvq_run}", "prompt=a red circle", "output=image", f"out_dir={tmp_path}"])
    assert png.stat().st_size > 0


@pytest.mark.slow
def test_framewise_video_with_an_rvq_image_tokenizer_trains_and_generates(tmp_path, one_thread):
    """The video span's frames take the image layout: framewise + rvq needs nothing of its own (about 25 s)."""
    import json

    import unimodal
    from tests.conftest import smoke_overrides
    from unimodal.config import compose
    from unimodal.model.generate import SamplingConfig
    from unimodal.training.run import train

    run = train(compose(smoke_overrides(tmp_path, "modality=video", "tokenizer/video=framewise", "tokenizer/image=rvq",
                                        "tokenizer.image.layout=coarse_first", "data.image_size=16",
                                        f"run_dir={tmp_path}/run")))
    assert json.loads((run / "run.json").read_text())["video_grid"] == [3, 4, 4]
    pipe = unimodal.load(run, device="cpu")
    clip = pipe.generate("a red circle moves left", output="video", sampling=SamplingConfig(max_new_tokens=200))[0]
    assert clip.segments[0].payload.shape == (3, 4, 4, 2) and not clip.truncated
    assert clip.videos[0].shape == (3, 16, 16, 3)
