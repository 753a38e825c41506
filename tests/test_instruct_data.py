"""The chat template's loss mask, and synthetic instruction data with exact answers (no training here)."""

from __future__ import annotations

import numpy as np
import pytest

from unimodal.data.chat import Turn, chat_prompt, encode_chat
from unimodal.data.instruct import ChatDataset, Edit, ask, edit_scene
from unimodal.data.synthetic.world import Scene, SceneObject, World
from unimodal.data.tokens import TokenizedSet
from unimodal.errors import ConfigError
from unimodal.sequence import Segment, SequenceCodec
from unimodal.vocab import Vocabulary

VOCAB = Vocabulary(40, {"image": (16, 1), "audio": (8, 2)})
GRID, FRAMES = (2, 2), 3
CODEC = SequenceCodec(VOCAB, GRID, FRAMES)


def _image(value: int) -> np.ndarray:
    return np.full(GRID, value, dtype=np.int64)


def test_loss_mask_covers_exactly_the_assistant_tokens():
    """System, three user turns (two images in the first, an image and a sound later), three assistant turns
    answering with text, an image, and text followed by an image."""
    audio = np.arange(2 * FRAMES).reshape(2, FRAMES) % 8
    turns = [
        Turn("system", [Segment("text", [1, 2])]),
        Turn("user", [Segment("image", _image(3)), Segment("image", _image(4)), Segment("text", [5, 6])]),
        Turn("assistant", [Segment("text", [7, 8])]),
        Turn("user", [Segment("text", [9]), Segment("image", _image(5))]),
        Turn("assistant", [Segment("image", _image(6))]),
        Turn("user", [Segment("audio", audio), Segment("text", [10])]),
        Turn("assistant", [Segment("text", [11]), Segment("image", _image(7))]),
    ]
    encoded = encode_chat(CODEC, turns)
    s = VOCAB.special
    img = VOCAB.range_of("image")[0]

    def image_ids(value: int) -> list[int]:
        return [s("<boi>"), *[img + value] * 4, s("<eoi>")]

    audio_ids = [s("<boa>"), *CODEC.flatten_audio(audio).tolist(), s("<eoa>")]
    # (ids, is an assistant token) in order, written out by hand
    expected = [
        ([s("<bos>"), s("<system>"), 1, 2], False),
        ([s("<user>"), *image_ids(3), *image_ids(4), 5, 6], False),
        ([s("<assistant>")], False), ([7, 8, s("<eos>")], True),
        ([s("<user>"), 9, *image_ids(5)], False),
        ([s("<assistant>")], False), ([*image_ids(6), s("<eos>")], True),
        ([s("<user>"), *audio_ids, 10], False),
        ([s("<assistant>")], False), ([11, *image_ids(7), s("<eos>")], True),
    ]
    want_ids = [i for ids, _ in expected for i in ids]
    want_mask = [flag for ids, flag in expected for _ in ids]
    assert encoded.ids.tolist() == want_ids
    assert encoded.loss_mask.tolist() == want_mask
    assert len(encoded.modality_of_position) == len(want_ids)


def test_generation_prompt_ends_with_open_assistant_turn():
    ids = chat_prompt(CODEC, [Segment("image", _image(1)), Segment("text", [4, 5])])
    s = VOCAB.special
    assert ids.tolist()[:2] == [s("<bos>"), s("<user>")] and ids.tolist()[-3:] == [4, 5, s("<assistant>")]
    with pytest.raises(ValueError, match="user"):
        encode_chat(CODEC, [Turn("assistant", [])], add_generation_prompt=True)


def test_questions_have_exact_answers():
    objects = [("red", "circle"), ("blue", "square"), ("red", "cross")]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        question, answer = ask("count", objects, rng)
        shape = question.split()[2]
        if question == "how many objects are there?":
            assert answer == "three"
        else:
            wanted = {"circles": "one", "squares": "one", "crosses": "one"}.get(shape, "zero")
            assert answer == wanted, question
        question, answer = ask("colour", objects, rng)
        place = {"left?": "red", "middle?": "blue", "right?": "red", "circle?": "red", "square?": "blue",
                 "cross?": "red"}
        assert answer == place[question.split()[-1]], question
        qa = ask("shape", objects, rng)
        assert qa is not None
        if "blue" in qa[0]:
            assert qa[1] == "square"
        else:  # red is not unique: only a position can name the object
            assert "red" not in qa[0]
        seen.add(qa[0])
    assert "what shape is the blue object?" in seen
    assert ask("sound", objects, np.random.default_rng(1))[1] in ("circle", "cross", "three")


def test_edit_recolours_one_named_object():
    world = World()
    rng = np.random.default_rng(0)
    for scene in world.dataset(50, seed=3):
        result = edit_scene(scene, rng, world.held_out)
        if result is None:
            continue
        text, edited = result
        changed = [(a, b) for a, b in zip(scene.objects, edited.objects, strict=True) if a != b]
        assert len(changed) == 1
        before, after = changed[0]
        assert (before.shape, before.x, before.y) == (after.shape, after.x, after.y) and before.color != after.color
        assert text.startswith("draw the same scene with the ") and text.endswith(f" in {after.color}.")
        assert (after.color, after.shape) not in world.held_out
    pair = Scene((SceneObject("circle", "red", "small", 5, 5), SceneObject("circle", "red", "small", 20, 5)))
    assert edit_scene(pair, rng) is None   # two identical objects: no way to name one


def _fake_tokens(count: int = 12) -> TokenizedSet:
    world = World()
    scenes = world.dataset(count, seed=0)
    rng = np.random.default_rng(0)
    return TokenizedSet([rng.integers(0, 40, 4) for _ in scenes],
                        {"image": rng.integers(0, 16, (count, *GRID)), "audio": rng.integers(0, 8, (count, 2, FRAMES))},
                        [world.caption(s) for s in scenes],
                        [[list(p) for p in s.attributes()] for s in scenes])


def test_chat_dataset_masks_only_answers():
    tokens = _fake_tokens()
    words: dict[str, int] = {}

    def encode_text(value: str) -> list[int]:  # one id per word: answers can be read back from the ids
        return [words.setdefault(w, len(words) % 40) for w in value.split()]

    edits = {0: Edit("draw the same scene with the circle in blue.", _image(9), [("blue", "circle")])}
    mix = {"count": 1.0, "colour": 1.0, "shape": 1.0, "describe": 1.0, "edit": 1.0, "sound": 1.0, "compare": 1.0,
           "paired": 1.0}
    data = ChatDataset(tokens, CODEC, encode_text, mix, max_turns=3, context_length=256, edits=edits,
                       tasks=["text->image", "image->text"], seed=0, length=200)
    assert set(data.kinds) == set(mix)
    eos, assistant = VOCAB.eos_id, VOCAB.special("<assistant>")
    kinds_seen = set()
    for index in range(200):
        item = data[index]
        again = data[index]
        assert item["ids"].tolist() == again["ids"].tolist()   # an index is always the same conversation
        turns, kinds = data.conversation(index)
        kinds_seen.update(kinds)
        if kinds == ["paired"]:
            continue
        ids, mask = item["ids"].tolist(), item["loss_mask"].tolist()
        answers = [t for t in turns if t.role == "assistant"]
        assert len(answers) == len(kinds) == ids.count(assistant) == ids.count(eos)
        # every masked run starts right after <assistant> and ends with its <eos>
        starts = [i for i in range(1, len(ids)) if mask[i] and not mask[i - 1]]
        ends = [i for i in range(len(ids)) if mask[i] and (i + 1 == len(ids) or not mask[i + 1])]
        assert [ids[i - 1] for i in starts] == [assistant] * len(answers)
        assert [ids[i] for i in ends] == [eos] * len(answers)
    assert kinds_seen == set(mix)


def test_mix_without_usable_kind_is_refused():
    tokens = _fake_tokens()
    with pytest.raises(ConfigError, match="instruct.mix"):
        ChatDataset(tokens, CODEC, lambda v: [1], {"edit": 1.0}, 2, 256, edits=None)
