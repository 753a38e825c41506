"""Property tests of the shared vocabulary and the sequence codec."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unimodal.sequence import LAYOUTS, Segment, SequenceCodec
from unimodal.vocab import Vocabulary

VOCAB = Vocabulary(300, {"image": (64, 1), "audio": (16, 3)})
GRID = (3, 4)
FRAMES = 5


def _segment(draw, modality: str) -> Segment:
    if modality == "text":
        payload = draw(st.lists(st.integers(0, 299), min_size=1, max_size=8))
    elif modality == "image":
        payload = np.array(draw(st.lists(st.integers(0, 63), min_size=12, max_size=12))).reshape(GRID)
    else:
        payload = np.array(draw(st.lists(st.integers(0, 15), min_size=15, max_size=15))).reshape(3, FRAMES)
    return Segment(modality, payload, loss=draw(st.booleans()))


@st.composite
def segment_lists(draw):
    kinds = draw(st.lists(st.sampled_from(["text", "image", "audio"]), min_size=1, max_size=5))
    merged = [k for i, k in enumerate(kinds) if not (k == "text" and i and kinds[i - 1] == "text")]
    return [_segment(draw, k) for k in merged]


@settings(max_examples=150, deadline=None)
@given(segment_lists(), st.sampled_from(LAYOUTS), st.booleans())
def test_encode_decode_roundtrip(segments, layout, rows):
    codec = SequenceCodec(VOCAB, GRID, FRAMES, layout, row_separators=rows)
    encoded = codec.encode(segments)
    assert len(encoded.ids) == len(encoded.loss_mask) == len(encoded.modality_of_position)
    decoded = codec.decode(encoded.ids)
    assert [s.modality for s in decoded] == [s.modality for s in segments]
    for got, want in zip(decoded, segments, strict=True):
        assert np.array_equal(np.asarray(got.payload), np.asarray(want.payload))
        assert not got.truncated


@settings(max_examples=100, deadline=None)
@given(st.integers(0, VOCAB.size - 1))
def test_every_global_id_maps_to_one_local_code(global_id):
    modality, codebook, code = VOCAB.lookup(global_id)
    if modality == "special":
        assert VOCAB.special(VOCAB.specials[code]) == global_id
    else:
        assert int(VOCAB.to_global(modality, code, codebook)) == global_id
    owners = [m for m, r in VOCAB.ranges.items() if r.start <= global_id < r.stop]
    assert owners == [modality]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(LAYOUTS), st.integers(1, 4), st.integers(1, 9))
def test_audio_layouts_unflatten_exactly(layout, books, frames):
    vocab = Vocabulary(10, {"audio": (7, books)})
    codec = SequenceCodec(vocab, None, frames, layout)
    codes = np.random.default_rng(books * 31 + frames).integers(0, 7, (books, frames))
    flat = codec.flatten_audio(codes)
    assert len(flat) == codec.audio_span_length()
    plan = codec.span_plan("audio")
    assert ((flat >= plan.low) & (flat < plan.high)).all()
    assert np.array_equal(codec.unflatten_audio(flat), codes)


def test_truncated_span_is_reported():
    codec = SequenceCodec(VOCAB, GRID, FRAMES)
    ids = codec.encode([Segment("text", [1, 2]), Segment("image", np.zeros(GRID, int))]).ids
    cut = codec.decode(ids[:-6])  # drop <eoi>, <eos> and four codes: one whole row is lost
    assert cut[-1].modality == "image" and cut[-1].truncated
    assert np.asarray(cut[-1].payload).shape == (2, 4)


def test_loss_mask_marks_target_only():
    codec = SequenceCodec(VOCAB, GRID, FRAMES)
    encoded = codec.encode([Segment("text", [5, 6]), Segment("image", np.ones(GRID, int), loss=True)])
    # <bos> t t <boi> 12 codes <eoi> <eos>: loss on the codes, the closer and <eos>
    assert encoded.loss_mask.tolist() == [False] * 4 + [True] * 14


def test_vocab_json_roundtrip_and_mismatch(tmp_path):
    VOCAB.save(tmp_path / "v.json")
    again = Vocabulary.load(tmp_path / "v.json")
    assert again.fingerprint == VOCAB.fingerprint
    other = Vocabulary(300, {"image": (65, 1), "audio": (16, 3)})
    with pytest.raises(Exception, match=other.fingerprint):
        VOCAB.check_same(other, "checkpoint x")


def test_fingerprint_is_stable_across_processes():
    code = ("from unimodal.vocab import Vocabulary;"
            "print(Vocabulary(300, {'image': (64, 1), 'audio': (16, 3)}).fingerprint)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == VOCAB.fingerprint
