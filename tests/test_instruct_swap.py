"""The interleaved instruction kind: "describe this image, then draw it with the colours swapped" -> the caption,
then the image of the colour-swapped scene (data rule, chat encoding, and an untrained model's chat answer)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_instruct_data import CODEC, GRID, VOCAB, _fake_tokens, _image
from tests.tiny_pipeline import tiny_pipeline
from unimodal.data.instruct import SWAP_QUESTION, ChatDataset, Edit, make_swaps, swap_scene
from unimodal.data.synthetic.world import Scene, SceneObject, World
from unimodal.model.generate import SamplingConfig
from unimodal.sequence import MODALITY_CODES

pytestmark = pytest.mark.usefixtures("one_thread")


def test_swap_exchanges_the_two_colours_and_keeps_everything_else():
    left, right = SceneObject("circle", "red", "small", 6, 8), SceneObject("square", "blue", "large", 22, 20)
    swapped = swap_scene(Scene((right, left)))
    assert swapped is not None and swapped.attributes() == [("blue", "circle"), ("red", "square")]
    def layout(objects):
        return [(o.shape, o.size, o.x, o.y) for o in objects]

    assert layout(swapped.objects) == layout((left, right))
    same = SceneObject("square", "red", "large", 22, 20)
    third = SceneObject("cross", "green", "small", 14, 4)
    assert swap_scene(Scene((left,))) is None                 # one object: nothing to swap with
    assert swap_scene(Scene((left, same))) is None            # one colour: the swap changes nothing
    assert swap_scene(Scene((left, right, third))) is None    # three: no single natural permutation
    assert swap_scene(Scene((left, right)), frozenset({("blue", "circle")})) is None   # never a held-out combo


def test_swaps_are_rendered_from_the_swapped_scene():
    class Tokenizer:  # the mean colour per channel stands in for image codes
        def eval(self):
            return self

        def encode(self, images):
            return images.mean(dim=(2, 3)).reshape(len(images), 1, 3)

    world = World()
    scenes = world.dataset(40, seed=3)
    swaps = make_swaps(world, scenes, Tokenizer(), held_out=world.held_out)
    assert swaps and all(swap_scene(scenes[i], world.held_out) is not None for i in swaps)
    for index, twin in swaps.items():
        assert twin.instruction == SWAP_QUESTION
        assert twin.objects == swap_scene(scenes[index]).attributes()


def test_swap_chat_answers_text_then_image_and_masks_exactly_that():
    tokens = _fake_tokens()
    words: dict[str, int] = {}

    def encode_text(value: str) -> list[int]:
        return [words.setdefault(w, len(words) % 40) for w in value.split()]

    swaps = {i: Edit(SWAP_QUESTION, _image(9), [("blue", "circle")]) for i in (2, 5)}
    data = ChatDataset(tokens, CODEC, encode_text, {"swap": 1.0}, max_turns=1, context_length=256, swaps=swaps,
                       seed=0, length=8)
    assert data.kinds == ["swap"]
    s, image_low = VOCAB.special, VOCAB.range_of("image")[0]
    for index in range(len(data)):
        turns, kinds = data.conversation(index)
        assert kinds == ["swap"] and [t.role for t in turns] == ["user", "assistant"]
        sample = next(i for i in swaps if np.array_equal(turns[0].segments[0].payload, tokens.payloads(i)["image"]))
        assert [seg.modality for seg in turns[1].segments] == ["text", "image"]
        item = data[index]
        ids, mask = item["ids"].tolist(), item["loss_mask"].tolist()
        answer = [*encode_text(tokens.captions[sample]), s("<boi>"), *[image_low + 9] * int(np.prod(GRID)),
                  s("<eoi>"), s("<eos>")]
        start = ids.index(s("<assistant>")) + 1
        assert ids[start:] == answer                                  # the answer closes the conversation
        assert mask == [False] * start + [True] * len(answer)         # and is exactly what the loss sees
        assert item["modality"].tolist()[start] == MODALITY_CODES["text"]


def test_untrained_chat_answers_text_then_a_whole_image():
    pipe = tiny_pipeline()
    picture = np.zeros((16, 16, 3), np.uint8)
    picture[4:10, 2:8] = (230, 30, 30)
    sampling = SamplingConfig(temperature={"default": 1.0, "text": 0.0}, cfg_scale={"image": 2.0},
                              max_new_tokens=40)
    reply = pipe.chat([{"role": "user", "content": [picture, SWAP_QUESTION]}], output=["text", "image"],
                      sampling=sampling, seed=3)
    assert [part.modality for part in reply.parts] == ["text", "image"]
    assert not reply.truncated and reply.images[0].shape == (16, 16, 3)
    rows, cols = pipe.codec.image_grid
    assert reply.parts[1].codes.shape == (rows, cols) and reply.ids[-1] == pipe.vocab.eos_id


def test_benchmark_scores_swaps_and_draws_them(tmp_path):
    from unimodal.data.synthetic.world import WorldConfig
    from unimodal.eval.world.figures import swap_figure
    from unimodal.eval.world.instruct import SWAP_SCORES, score_instruct

    pipe = tiny_pipeline()
    del pipe.tokenizers["audio"]   # its untrained codec makes far more frames than the tiny context holds
    world = World(WorldConfig(image_size=16))
    scenes = [s for s in world.dataset(30, seed=4) if swap_scene(s, world.held_out) is not None][:3]
    samples: list[dict] = []
    scores = score_instruct(pipe, world, scenes, progress=False, swap_samples=samples)
    assert set(SWAP_SCORES) <= set(scores) and "swap" not in scores
    assert scores["interleaved"].total == len(scenes) and scores["interleaved"].accuracy == 1.0   # by construction
    assert scores["swap-image"].hits <= scores["swap-colours"].hits
    assert len(samples) == len(scenes) and all(s["generated"].shape == (16, 16, 3) for s in samples)
    assert swap_figure(samples, tmp_path / "swap.png").stat().st_size > 0
