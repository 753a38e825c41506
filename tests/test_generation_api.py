"""The generation API on a tiny untrained pipeline: every output decodes, chat answers interleave, audio streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_pipeline import AUDIO_FRAMES, tiny_pipeline
from unimodal.errors import ConfigError, UnimodalError
from unimodal.model.constraints import SpanState
from unimodal.model.sampling import SamplingConfig, guidance_scale
from unimodal.sequence import LAYOUTS, SequenceCodec
from unimodal.tokenizers.anyres import AnyResImage

pytestmark = pytest.mark.usefixtures("one_thread")

OUTPUTS = [["text"], ["image"], ["audio"], ["text", "image"], ["image", "text"], ["text", "audio"],
           ["image", "audio"], ["audio", "image"], ["audio", "text", "image"], ["text", "image", "text", "audio"]]


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def rvq_pipe():
    """The same with a 2-level rvq image tokenizer: two codes per image cell, each level its own id range."""
    return tiny_pipeline(image_levels=2)


def _codec(pipe, layout: str, anyres: bool, frames: int = AUDIO_FRAMES, image_layout: str = "flat") -> SequenceCodec:
    return SequenceCodec(pipe.vocab, image_grid=(4, 4), audio_frames=frames, audio_layout=layout,
                         image_anyres_max_tiles=4 if anyres else None, image_layout=image_layout)


def _random_prompt(pipe, rng: np.random.Generator) -> list:
    """Any mix of text, an image and a sound (or nothing: the unconditional direction)."""
    parts = []
    for kind in rng.permutation(["text", "image", "audio"])[:rng.integers(0, 4)]:
        if kind == "text":
            parts.append(" ".join(rng.choice(["a", "red", "circle", "left", "of", "blue"], rng.integers(1, 5))))
        elif kind == "image":
            parts.append(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        else:
            parts.append(rng.uniform(-0.5, 0.5, 48).astype(np.float32))
    return parts


def _knob(rng: np.random.Generator, draw) -> dict:
    return {"default": draw(), **{m: draw() for m in ("text", "image", "audio") if rng.random() < 0.5}}


def _random_sampling(rng: np.random.Generator, budget: int) -> SamplingConfig:
    return SamplingConfig(temperature=_knob(rng, lambda: float(rng.choice([0.0, 0.5, 1.0, 2.0]))),
                          top_k=_knob(rng, lambda: int(rng.choice([0, 1, 5, 50]))),
                          top_p=_knob(rng, lambda: float(rng.choice([1.0, 0.9, 0.3]))),
                          cfg_scale=_knob(rng, lambda: float(rng.choice([1.0, 1.0, 3.0, 7.5]))),
                          cfg_schedule=_knob(rng, lambda: str(rng.choice(["constant", "linear", "cosine"]))),
                          repetition_penalty=float(rng.choice([1.0, 1.3])), max_new_tokens=budget,
                          min_text_tokens=int(rng.integers(0, 3)))


def test_200_random_generations_all_decode_with_exact_shapes(pipe, rvq_pipe):
    """25 batches of 8: random direction (prompt media), outputs, audio layout, image tokenizer (one code per cell,
    or two rvq levels in a random layout), AnyRes on or off (and sometimes a requested size: a fixed tile grid),
    sampling settings, budget, seed, chat or plain prompt. Every answer decodes; every media span is whole and
    exact."""
    rng = np.random.default_rng(0)
    count, anyres_tiles, rvq_images, rvq_tiles, sized = 0, 0, 0, 0, 0
    for trial in range(25):
        run = rvq_pipe if trial % 2 else pipe
        levels = run.vocab.ranges["image"].num_codebooks
        hop = run.tokenizers["audio"].hop_length
        run.codec = _codec(run, LAYOUTS[trial % 3], anyres=trial % 4 >= 2, image_layout=LAYOUTS[trial // 2 % 3])
        size = [(16, 32), (32, 16), (20, 20)][trial % 3] if trial % 8 >= 6 else None   # AnyRes: fsq and rvq
        view = run.at_image_size(size)
        outputs = OUTPUTS[trial % len(OUTPUTS)]
        media = [m for m in outputs if m != "text"]
        shortest = 1 + sum(len(view.codec.span_plan(m)) + 2 for m in media)
        room = 100 if view.codec.anyres and not size else 40   # free AnyRes grids: room for some tiles
        budget = int(rng.integers(max(1, shortest - 8), shortest + room))
        sampling = _random_sampling(rng, budget)
        prompts = [_random_prompt(run, rng) for _ in range(4)]
        results = run.generate_batch(prompts, outputs, num_samples=2, seed=trial, sampling=sampling,
                                     chat=bool(trial % 2), image_size=size)
        assert len(results) == 8
        for result in results:
            count += 1
            assert 0 < len(result.ids) <= budget and not result.truncated
            got_media = [p.modality for p in result.parts if p.modality != "text"]
            # spans open in the requested order; all of them whenever the budget holds their shortest forms
            assert got_media == media[:len(got_media)]
            assert got_media == media or budget < shortest
            for part in result.parts:
                if part.modality == "image":
                    tiled = isinstance(part.codes, AnyResImage)  # a bare thumbnail decodes as a square image
                    rows, cols = part.codes.grid if tiled else (1, 1)
                    wanted = (*size, 3) if size else (16 * rows, 16 * cols, 3)
                    assert part.value.shape == wanted and part.value.dtype == np.uint8
                    cell = (4, 4) if levels == 1 else (4, 4, levels)
                    assert np.asarray(part.codes.thumbnail if tiled else part.codes).shape == cell
                    if size:   # the grid the requested size asks for, held by the decoder
                        assert part.codes.grid == run.codec.anyres_settings.grid_for(*size, 16)
                    anyres_tiles += rows * cols if tiled else 0
                    rvq_images += levels > 1
                    rvq_tiles += rows * cols if tiled and levels > 1 and not size else 0
                    sized += size is not None
                elif part.modality == "audio":
                    assert np.asarray(part.codes).shape == (2, AUDIO_FRAMES)
                    assert part.value.shape == (AUDIO_FRAMES * hop,) and np.isfinite(part.value).all()
                else:
                    assert isinstance(part.value, str) and (part.ids < run.vocab.text_size).all()
    assert count == 200 and anyres_tiles > 0 and rvq_images > 0 and rvq_tiles > 0 and sized > 0
    for run in (pipe, rvq_pipe):
        run.codec = _codec(run, "flat", anyres=False)


def test_interleaved_chat_answer_is_text_then_a_whole_image(pipe):
    """'Describe this image, then draw it with the colours swapped': text, then one whole image, then <eos>."""
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ask = {"role": "user", "content": [image, "describe this image, then draw it with the colours swapped"]}
    sampling = SamplingConfig(cfg_scale={"image": 3.0}, max_new_tokens=60)
    reply = pipe.chat([ask], output=["text", "image"], sampling=sampling, seed=2)
    assert [p.modality for p in reply.parts] == ["text", "image"]
    assert reply.text and reply.images[0].shape == (16, 16, 3)
    assert reply.ids[-1] == pipe.vocab.eos_id and len(reply.parts[1].ids) == 16 + 2
    # the next turn sees the whole conversation: the earlier answer comes back as the assistant's turn
    follow = pipe.chat([ask, {"role": "assistant", "content": reply}, {"role": "user", "content": "again"}],
                       output="text", sampling=SamplingConfig(max_new_tokens=8))
    assert follow.parts and follow.parts[0].modality == "text" and not follow.images
    with pytest.raises(UnimodalError, match="end with a user turn"):
        pipe.chat([ask, {"role": "assistant", "content": reply}])
    with pytest.raises(UnimodalError, match="not a modality"):
        pipe.generate("a", output="video")
    with pytest.raises(ConfigError, match="cfg_schedule.image"):
        SamplingConfig(cfg_schedule={"image": "exponential"})


def test_seed_reproduces_and_batched_prompts_keep_their_order(pipe):
    sampling = SamplingConfig(max_new_tokens=30, temperature={"default": 1.0})
    prompts = ["a red circle", "blue", np.zeros((16, 16, 3), np.uint8)]
    first = pipe.generate_batch(prompts, ["text", "image"], seed=7, sampling=sampling)
    again = pipe.generate_batch(prompts, ["text", "image"], seed=7, sampling=sampling)
    other = pipe.generate_batch(prompts, ["text", "image"], seed=8, sampling=sampling)
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a.ids, b.ids) for a, b in zip(first, other, strict=True))
    assert sampling.max_new_tokens == 30  # the pipeline fits the budget to the context on a copy


def test_repetition_penalty_keeps_greedy_text_from_repeating(pipe):
    sampling = SamplingConfig(temperature={"default": 0.0}, repetition_penalty=1e6, max_new_tokens=40)
    ids = pipe.generate("a red circle", output="text", sampling=sampling)[0].ids
    text = [int(i) for i in ids if i < pipe.vocab.text_size]
    assert len(text) == len(set(text)) > 0


def test_guidance_schedules_ramp_over_the_span(pipe):
    codec = _codec(pipe, "flat", anyres=False)
    state = SpanState(codec, ["image"], 40)
    scales = {name: [] for name in ("constant", "linear", "cosine")}
    state.advance(pipe.vocab.special("<boi>"))
    for _ in range(16):
        for name in scales:
            scales[name].append(guidance_scale(SamplingConfig(cfg_scale={"image": 5.0},
                                                              cfg_schedule={"image": name}), state))
        state.advance(int(codec.span_plan("image").low[0]))
    assert scales["constant"] == [5.0] * 16
    assert scales["linear"][0] == 1.0 and scales["linear"][-1] == 5.0 and np.all(np.diff(scales["linear"]) > 0)
    assert scales["cosine"][0] == 1.0 and scales["cosine"][-1] == pytest.approx(5.0)


def _forward_calls(model) -> list[int]:
    calls = [0]
    model.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("layout", LAYOUTS)
def test_streamed_audio_joins_into_the_one_shot_decode(layout):
    """32 frames in chunks of 4, each decoded with 8 frames of context either side: the tiny decoder sees
    fewer than 8 frames each way, so the joined chunks equal the one-shot decode up to float rounding
    (1e-5 of the peak); with no context the seams differ by the size of the signal itself."""
    pipe = tiny_pipeline(seed=1)
    pipe.codec = _codec(pipe, layout, anyres=False, frames=32)
    prompt = ["a red circle", np.zeros(48, np.float32)]
    calls = _forward_calls(pipe.model)
    stream = pipe.stream(prompt, output="audio", seed=3)
    first = next(stream)
    calls_at_first_chunk = calls[0]
    chunks = [first, *stream]
    whole = pipe.generate(prompt, output="audio", seed=3)[0].audio[0]
    joined = np.concatenate(chunks)
    assert len(chunks) > 3 and joined.shape == whole.shape == (32 * 8,)
    assert np.abs(joined - whole).max() <= 1e-5 * np.abs(whole).max()
    span = pipe.codec.audio_span_length()
    assert calls_at_first_chunk < span  # the first chunk came while the span was still being generated
    seams = np.concatenate(list(pipe.stream(prompt, output="audio", seed=3, context_frames=0)))
    assert np.abs(seams - whole).max() > 0.01 * np.abs(whole).max()


def test_load_and_the_generate_script_over_a_saved_run(pipe, tmp_path, capsys):
    import unimodal
    from tests.tiny_pipeline import save_tiny_run
    from unimodal.commands.generate import generate

    run = save_tiny_run(pipe, tmp_path / "run")
    loaded = unimodal.load(run, device="cpu")
    sampling = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=24)
    for a, b in zip(loaded.generate("a red circle", ["text", "image"], sampling=sampling)[0].parts,
                    pipe.generate("a red circle", ["text", "image"], sampling=sampling)[0].parts, strict=True):
        assert np.array_equal(a.ids, b.ids)
    written = generate([f"run={run}", "prompt=a red circle, left of", "output=[text,image]",
                                    "cfg_schedule.image=linear", "num_samples=2", "max_new_tokens=30",
                                    f"out_dir={tmp_path}"])
    assert sorted(p.suffix for p in written) == [".png", ".png"]
    assert "[1]" in capsys.readouterr().out


@pytest.mark.gpu
def test_on_cuda_every_output_decodes_and_audio_streams():
    """The same engine with the model, the tokenizers and the sampler on a GPU."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    pipe = tiny_pipeline(seed=2)
    pipe.model.to("cuda")
    for modality in ("image", "audio"):
        pipe.tokenizers[modality].to("cuda")
    rng = np.random.default_rng(1)
    for trial, outputs in enumerate(OUTPUTS):
        pipe.codec = _codec(pipe, LAYOUTS[trial % 3], anyres=False)
        results = pipe.generate_batch([_random_prompt(pipe, rng) for _ in range(4)], outputs, seed=trial,
                                      sampling=_random_sampling(rng, 80))
        for result in results:
            assert [p.modality for p in result.parts if p.modality != "text"] == [m for m in outputs if m != "text"]
            shapes = {p.value.shape for p in result.parts if p.modality != "text"}
            assert shapes <= {(16, 16, 3), (AUDIO_FRAMES * 8,)}
    pipe.codec = _codec(pipe, "delay", anyres=False, frames=32)
    whole = pipe.generate("a red circle", output="audio", seed=3)[0].audio[0]
    joined = np.concatenate(list(pipe.stream("a red circle", output="audio", seed=3)))
    assert np.abs(joined - whole).max() <= 1e-4 * np.abs(whole).max()
