"""Dynamic resolution (AnyRes): grid choice, tiling, token layout, and constrained generation of tiled images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from unimodal.model.generate import SamplingConfig, SpanState, generate_ids
from unimodal.model.lm import build_lm
from unimodal.sequence import Segment, SequenceCodec
from unimodal.tokenizers.anyres import (
    AnyResImage,
    candidate_grids,
    choose_grid,
    decode_anyres,
    decode_thumbnail,
    encode_anyres,
    fit_layout,
    merge_tiles,
    split_image,
)
from unimodal.vocab import Vocabulary


class BlockTokenizer:
    """A lossless-on-purpose image tokenizer for exact tests: 4x4 grey blocks, 16 levels -> codes [B, 8, 8]."""

    image_size = 32
    codebook_size = 16

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        grey = F.avg_pool2d(images.mean(dim=1, keepdim=True), 4)[:, 0]
        return (grey * 15).round().long()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        grey = codes.float()[:, None] / 15
        return F.interpolate(grey, scale_factor=4, mode="nearest").repeat(1, 3, 1, 1)


def _block_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A grey image of random 4x4 blocks at the 16 levels BlockTokenizer keeps exactly."""
    levels = torch.randint(0, 16, (height // 4, width // 4), generator=torch.Generator().manual_seed(seed))
    grey = levels.float().repeat_interleave(4, 0).repeat_interleave(4, 1) / 15
    return grey[None].repeat(3, 1, 1)


def _count(ids: np.ndarray, vocab: Vocabulary, name: str) -> int:
    return int((ids == vocab.special(name)).sum())


# --- grid choice ---------------------------------------------------------------------------------
@pytest.mark.parametrize("height, width, max_tiles, grid", [
    (32, 32, 4, (1, 1)),     # square, one tile's size
    (20, 20, 9, (1, 1)),     # smaller than a tile: more tiles would only upsample
    (64, 64, 4, (2, 2)),     # square, larger: 2x2 keeps full resolution
    (64, 64, 3, (1, 1)),     # ... unless 2x2 is not allowed (1x1 then wastes nothing)
    (64, 128, 4, (1, 2)),    # wide: 1x2 keeps as much as 2x2 or 1x4 and wastes nothing
    (64, 128, 8, (2, 4)),    # wide with room: full resolution
    (128, 64, 4, (2, 1)),    # tall
    (100, 30, 4, (4, 1)),    # very tall
    (30, 100, 4, (1, 4)),    # very wide
    (64, 128, 1, (1, 1)),    # max_tiles respected
])
def test_choose_grid_cases(height, width, max_tiles, grid):
    assert choose_grid(height, width, 32, max_tiles) == grid


def test_candidate_grids_are_ordered_and_bounded():
    assert candidate_grids(4) == [(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1)]
    with pytest.raises(ValueError, match="max_tiles"):
        candidate_grids(0)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 400), st.integers(1, 400), st.sampled_from([8, 16, 32]), st.integers(1, 9))
def test_choose_grid_properties(height, width, tile_size, max_tiles):
    rows, cols = choose_grid(height, width, tile_size, max_tiles)
    assert rows * cols <= max_tiles

    def kept(grid, h, w):
        layout = fit_layout(h, w, *grid, tile_size)
        return min(layout.resized[0] * layout.resized[1], h * w)

    best = kept((rows, cols), height, width)
    assert all(kept(g, height, width) <= best for g in candidate_grids(max_tiles))   # most resolution kept
    assert kept(choose_grid(width, height, tile_size, max_tiles), width, height) == best  # transposition
    if height <= tile_size and width <= tile_size:
        assert (rows, cols) == (1, 1)
    layout = fit_layout(height, width, rows, cols, tile_size)
    assert all(0 <= o and o + r <= c for o, r, c in zip(layout.offset, layout.resized, layout.canvas, strict=True))


# --- pixels ----------------------------------------------------------------------------------------
def test_split_and_merge_are_exact_inverses_at_full_resolution():
    image = torch.rand(3, 64, 128, generator=torch.Generator().manual_seed(0))
    tiled = split_image(image, 32, max_tiles=8)
    assert (tiled.layout.rows, tiled.layout.cols) == (2, 4)
    assert tiled.tiles.shape == (8, 3, 32, 32) and tiled.thumbnail.shape == (3, 32, 32)
    assert torch.equal(tiled.tiles[5], image[:, 32:64, 32:64])  # row-major: tile (1, 1)
    assert torch.equal(merge_tiles(tiled.tiles, tiled.layout), image)
    # the thumbnail keeps the aspect ratio: 16 rows of image, 8 of padding above and below
    assert tiled.thumbnail_layout.resized == (16, 32) and tiled.thumbnail_layout.offset == (8, 0)
    assert float(tiled.thumbnail[:, :8].abs().max()) == 0.0


def test_padding_is_cropped_for_odd_aspect_ratios():
    ramp = torch.linspace(0.0, 0.3, 90)
    image = (ramp[None, None, :] + torch.linspace(0.0, 0.1, 50)[None, :, None]).repeat(3, 1, 1)
    tiled = split_image(image, 32, max_tiles=4, fill=1.0)
    layout = tiled.layout
    assert (layout.rows, layout.cols) == (2, 2) and layout.resized == (36, 64) and layout.offset == (14, 0)
    assert float(tiled.tiles[0, :, :14].min()) == 1.0  # the padding above the image
    merged = merge_tiles(tiled.tiles, layout)
    assert merged.shape == (3, 50, 90)
    assert float((merged - image).abs().max()) < 0.02  # resampled twice, and no padding leaked in


def test_64x128_roundtrip_is_exact_with_a_lossless_tokenizer():
    tokenizer = BlockTokenizer()
    image = _block_image(64, 128)
    payload = encode_anyres(tokenizer, image, max_tiles=8)
    assert payload.grid == (2, 4) and payload.tiles.shape == (2, 4, 8, 8) and payload.original_size == (64, 128)
    assert torch.equal(decode_anyres(tokenizer, payload), image)
    assert decode_thumbnail(tokenizer, payload).shape == (3, 64, 128)


# --- the check: 64x128 -> tile layout -> tokens -> 64x128 ----------------------------------
@pytest.fixture(scope="module")
def grid_tokenizer():
    from unimodal.tokenizers.image import GridImageTokenizer

    torch.manual_seed(0)
    return GridImageTokenizer(image_size=32, block_channels=[8, 8, 8], norm_groups=4, latent_dim=3,
                              quantizer={"kind": "fsq", "levels": [4, 4, 4]}).eval()


@pytest.mark.parametrize("max_tiles, grid", [(4, (1, 2)), (8, (2, 4))])
def test_64x128_image_tile_layout_and_size(grid_tokenizer, max_tiles, grid):
    tokenizer = grid_tokenizer
    image = torch.rand(3, 64, 128, generator=torch.Generator().manual_seed(2))
    payload = encode_anyres(tokenizer, image, max_tiles=max_tiles)
    rows, cols = grid
    code_grid = tokenizer.grid_shape  # (8, 8)
    assert payload.grid == grid and payload.tiles.shape == (rows, cols, *code_grid)

    vocab = Vocabulary(50, {"image": (tokenizer.codebook_size, 1)})
    codec = SequenceCodec(vocab, code_grid, image_anyres_max_tiles=max_tiles)
    ids = codec.encode([Segment("image", payload)], add_bos=False, add_eos=False).ids
    tile_len = code_grid[0] * code_grid[1]
    low, high = vocab.range_of("image")
    assert _count(ids, vocab, "<tile>") == rows * cols and _count(ids, vocab, "<row>") == rows - 1
    assert int(((ids >= low) & (ids < high)).sum()) == (1 + rows * cols) * tile_len
    # exact layout: <boi> thumbnail, then per row (<tile> codes) * cols, rows joined by <row>, <eoi>
    names = ["<boi>", *["code"] * tile_len]
    for row in range(rows):
        names += ["<row>"] * (row > 0) + (["<tile>", *["code"] * tile_len]) * cols
    names.append("<eoi>")
    assert [vocab.token_name(int(i)) if not low <= i < high else "code" for i in ids] == names

    (segment,) = codec.decode(ids)
    assert not segment.truncated and segment.payload == payload and segment.payload.original_size is None
    decoded = decode_anyres(tokenizer, segment.payload, size=(64, 128))
    assert decoded.shape == (3, 64, 128)
    assert torch.allclose(decoded, decode_anyres(tokenizer, payload), atol=1e-6)  # same as with the size kept
    assert decode_anyres(tokenizer, segment.payload).shape == (3, rows * 32, cols * 32)  # size unknown: canvas


# --- sequence layout ---------------------------------------------------------------------------------
VOCAB = Vocabulary(30, {"image": (16, 1), "audio": (8, 2)})
TILE = (2, 3)


@st.composite
def anyres_payloads(draw, max_tiles: int = 6):
    rows = draw(st.integers(1, max_tiles))
    cols = draw(st.integers(1, max_tiles // rows))
    codes = draw(st.lists(st.integers(0, 15), min_size=(1 + rows * cols) * 6, max_size=(1 + rows * cols) * 6))
    codes = np.array(codes)
    return AnyResImage(codes[:6].reshape(TILE), codes[6:].reshape(rows, cols, *TILE))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(anyres_payloads(), st.just("text"), st.just("plain")), min_size=1, max_size=4))
def test_sequence_roundtrip_with_anyres_payloads(kinds):
    codec = SequenceCodec(VOCAB, TILE, 4, image_anyres_max_tiles=6)
    segments = []
    for i, kind in enumerate(kinds):
        if kind == "text":
            segments.append(Segment("text", [i, i + 1]))
        elif kind == "plain":  # fixed-grid images keep working beside AnyRes ones
            segments.append(Segment("image", np.full(TILE, i % 16)))
        else:
            segments.append(Segment("image", kind, loss=True))
    segments = [s for i, s in enumerate(segments)
                if not (s.modality == "text" and i and segments[i - 1].modality == "text")]
    encoded = codec.encode(segments)
    decoded = codec.decode(encoded.ids)
    assert len(decoded) == len(segments)
    for got, want in zip(decoded, segments, strict=True):
        assert got.modality == want.modality and not got.truncated
        if isinstance(want.payload, AnyResImage):
            assert got.payload == want.payload
        else:
            assert np.array_equal(np.asarray(got.payload), np.asarray(want.payload))


def test_truncated_anyres_span_keeps_whole_rows():
    codec = SequenceCodec(VOCAB, TILE, image_anyres_max_tiles=6)
    payload = AnyResImage(np.zeros(TILE), np.arange(2 * 3 * 6).reshape(2, 3, *TILE) % 16)
    ids = codec.encode([Segment("image", payload)], add_bos=False, add_eos=False).ids
    tile_ends = [int(i) + 7 for i in np.flatnonzero(ids == VOCAB.special("<tile>"))]
    for cut in range(1, len(ids)):
        (segment,) = codec.decode(ids[:cut]) or [None]
        complete = sum(end <= cut for end in tile_ends)
        if complete == 0:  # no whole tile yet: what is left of the thumbnail, as a plain image
            assert segment is None or np.asarray(segment.payload).shape[1] == TILE[1]
            continue
        # the first row may end anywhere; a second row counts only when whole
        expected = (1, complete) if complete <= 3 else ((1, 3) if complete < 6 else (2, 3))
        assert segment.truncated and segment.payload.grid == expected
    (whole,) = codec.decode(ids)
    assert whole.payload == payload and not whole.truncated


def test_malformed_anyres_spans_decode_to_rectangles():
    codec = SequenceCodec(VOCAB, TILE, image_anyres_max_tiles=6)
    tile, row, boi, eoi = (VOCAB.special(n) for n in ("<tile>", "<row>", "<boi>", "<eoi>"))
    code = VOCAB.range_of("image")[0]
    thumb, one = [code] * 6, [tile] + [code + 1] * 6
    # rows of 2, then 1: the short last row is dropped
    (segment,) = codec.decode([boi, *thumb, *one, *one, row, *one, eoi])
    assert segment.payload.grid == (1, 2) and segment.truncated
    # a text id inside a tile: the tile is dropped, the thumbnail remains a plain image
    (segment,) = codec.decode([boi, *thumb, tile, code, 3, eoi])
    assert np.asarray(segment.payload).shape == TILE and segment.truncated
    # a thumbnail straight to <eoi> is a plain image, not truncated
    (segment,) = codec.decode([boi, *thumb, eoi])
    assert np.asarray(segment.payload).shape == TILE and not segment.truncated


def test_codec_refuses_what_it_cannot_write():
    payload = AnyResImage(np.zeros(TILE), np.zeros((2, 2, *TILE)))
    with pytest.raises(ValueError, match="image_anyres_max_tiles"):
        SequenceCodec(VOCAB, TILE).encode([Segment("image", payload)])
    with pytest.raises(ValueError, match="more than image_anyres_max_tiles=3"):
        SequenceCodec(VOCAB, TILE, image_anyres_max_tiles=3).encode([Segment("image", payload)])
    with pytest.raises(ValueError, match="row_separators"):
        SequenceCodec(VOCAB, TILE, row_separators=True, image_anyres_max_tiles=3)
    with pytest.raises(ValueError, match="image_grid"):
        SequenceCodec(VOCAB, TILE, image_anyres_max_tiles=3).encode([Segment("image", np.zeros((3, 3)))])


# --- constrained generation --------------------------------------------------------------------------
def _sample_with_random_logits(codec: SequenceCodec, outputs: list[str], budget: int, seed: int) -> np.ndarray:
    """SpanState driven by random logits over the whole vocabulary: what an untrained model would draw."""
    rng = np.random.default_rng(seed)
    state = SpanState(codec, outputs, budget)
    ids = []
    while not state.done and len(ids) < budget:
        allowed = state.allowed()
        spans = [allowed] if isinstance(allowed, tuple) else allowed
        mask = np.full(codec.vocab.size, -np.inf)
        for low, high in spans:
            mask[low:high] = 0.0
        token = int(np.argmax(rng.normal(size=codec.vocab.size) * 3 + mask))
        ids.append(token)
        state.advance(token)
    return np.asarray(ids)


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 6), st.integers(5, 90), st.sampled_from([["image"], ["text", "image"], ["image", "audio"],
                                                              ["image", "text", "image"]]), st.integers(0, 10**6))
def test_random_logits_always_give_decodable_anyres_spans(max_tiles, budget, outputs, seed):
    codec = SequenceCodec(VOCAB, TILE, 3, image_anyres_max_tiles=max_tiles)
    ids = _sample_with_random_logits(codec, outputs, budget, seed)
    assert len(ids) <= budget
    for segment in codec.decode(ids):
        assert not segment.truncated
        if isinstance(segment.payload, AnyResImage):
            assert segment.payload.num_tiles <= max_tiles and segment.payload.tiles.shape[2:] == TILE
        elif segment.modality == "image":
            assert np.asarray(segment.payload).shape == TILE
    # whatever was drawn is exactly what the codec writes for the decoded segments
    decoded = codec.decode(ids)
    if decoded:
        encoded = codec.encode(decoded, add_bos=False, add_eos=False).ids
        assert np.array_equal(encoded, ids[:len(encoded)])


def test_random_logits_reach_every_grid_shape():
    codec = SequenceCodec(VOCAB, TILE, image_anyres_max_tiles=4)
    grids = set()
    for seed in range(300):
        for segment in codec.decode(_sample_with_random_logits(codec, ["image"], 60, seed)):
            grids.add(segment.payload.grid if isinstance(segment.payload, AnyResImage) else (0, 0))
    assert grids == {(0, 0), *candidate_grids(4)}  # plain, 1x1 .. 4x1: non-square images are generated


def test_span_grows_only_while_it_can_still_close():
    codec = SequenceCodec(VOCAB, TILE, image_anyres_max_tiles=4)
    # <boi> + 6 thumbnail codes + <eoi> + <eos> = 9 tokens; one tile takes 7 more
    assert _sample_with_random_logits(codec, ["image"], 8, 0).tolist() == [VOCAB.eos_id]
    for budget in range(9, 16):
        for seed in range(20):
            ids = _sample_with_random_logits(codec, ["image"], budget, seed)
            assert ids[-1] == VOCAB.eos_id and len(ids) <= budget
            (segment,) = codec.decode(ids)
            assert np.asarray(segment.payload).shape == TILE  # no room for a tile: a plain image
    grids = {getattr(s.payload, "grid", None) for seed in range(20)
             for s in codec.decode(_sample_with_random_logits(codec, ["image"], 16, seed))}
    assert grids == {None, (1, 1)}  # room for exactly one tile


def test_generate_ids_with_an_untrained_model():
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                            "context_length": 128, "dropout": 0.0})
    model = build_lm(cfg, VOCAB).eval()
    codec = SequenceCodec(VOCAB, TILE, 3, image_anyres_max_tiles=4)
    for trial in range(2):  # one plain, one with classifier-free guidance
        sampling = SamplingConfig(temperature={"default": 1.5}, cfg_scale={"default": 1.0 + 2.0 * trial},
                                  max_new_tokens=45)
        prompts = [np.array([VOCAB.bos_id, trial])] * 2
        for ids in generate_ids(model, codec, prompts, ["text", "image"], sampling, seed=trial):
            for segment in codec.decode(ids):
                assert not segment.truncated
                if isinstance(segment.payload, AnyResImage):
                    assert segment.payload.num_tiles <= 4
