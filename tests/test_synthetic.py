"""The synthetic world: sampling rules, renderings, and analyzers that invert the renderings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from unimodal.data.synthetic.analyze import analyze_image, analyze_sound, parse_caption
from unimodal.data.synthetic.world import COLORS, DEFAULT_HELD_OUT, SHAPES, Scene, SceneObject, World, WorldConfig


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def scenes(world: World) -> list[Scene]:
    # split="all" so every colour-shape combination is exercised
    return world.dataset(300, seed=123, split="all")


def _rate(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


def _blur_and_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 0.05) -> np.ndarray:
    blurred = ndimage.uniform_filter(image.astype(np.float64) / 255.0, size=(3, 3, 1), mode="constant")
    return np.clip(blurred + rng.normal(0.0, sigma, blurred.shape), 0.0, 1.0)


def _white_noise(wave: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    signal_rms = np.sqrt(np.mean(wave.astype(np.float64) ** 2))
    return wave + rng.normal(0.0, signal_rms / 10 ** (snr_db / 20), wave.shape)


# ---------------------------------------------------------------------- sampling


def test_train_split_never_uses_held_out_combos(world: World) -> None:
    held_out = set(DEFAULT_HELD_OUT)
    for scene in world.dataset(1000, seed=1, split="train"):
        assert not held_out & set(scene.attributes())


def test_held_out_split_always_uses_a_held_out_combo(world: World) -> None:
    held_out = set(DEFAULT_HELD_OUT)
    for scene in world.dataset(500, seed=2, split="held_out"):
        assert held_out & set(scene.attributes())


def test_held_out_split_needs_held_out_combos() -> None:
    with pytest.raises(ValueError, match="held_out"):
        World(WorldConfig(held_out=())).sample_scene(np.random.default_rng(0), split="held_out")


def test_object_counts_follow_config(world: World) -> None:
    counts = np.array([len(s.objects) for s in world.dataset(2000, seed=3)])
    assert set(counts.tolist()) == {1, 2, 3}
    assert abs(np.mean(counts == 1) - 0.5) < 0.05
    assert abs(np.mean(counts == 2) - np.mean(counts == 3)) < 0.06


def test_dataset_is_deterministic_per_seed(world: World) -> None:
    assert world.dataset(50, seed=7) == world.dataset(50, seed=7)
    assert world.dataset(50, seed=7) != world.dataset(50, seed=8)


def test_objects_are_sorted_left_to_right(world: World) -> None:
    for scene in world.dataset(200, seed=4):
        xs = [o.x for o in scene.objects]
        assert xs == sorted(xs)
    right, left = SceneObject("cross", "red", "small", 20, 5), SceneObject("circle", "blue", "small", 5, 5)
    swapped = Scene((right, left))
    assert swapped.attributes() == [("blue", "circle"), ("red", "cross")]


# ---------------------------------------------------------------------- text


def test_caption_formats() -> None:
    a = SceneObject("circle", "red", "large", 5.0, 5.0)
    b = SceneObject("square", "blue", "small", 15.0, 20.0)
    c = SceneObject("cross", "green", "small", 27.0, 8.0)
    world = World()
    assert world.caption(Scene((a,))) == "a red circle"
    assert world.caption(Scene((b, a))) == "a red circle left of a blue square"
    assert world.caption(Scene((a, b, c))) == "a red circle, a blue square and a green cross"


def test_caption_round_trip(world: World, scenes: list[Scene]) -> None:
    rng = np.random.default_rng(0)
    for scene in scenes:
        text = world.caption(scene)
        assert parse_caption(text) == scene.attributes()
        assert world.scene_from_prompt(text, rng).attributes() == scene.attributes()


def test_parse_caption_is_lenient() -> None:
    text = "  A RED   circle,left of a shiny blue square!!  "
    assert parse_caption(text) == [("red", "circle"), ("blue", "square")]
    assert parse_caption("nothing here") == []


def test_scene_from_prompt(world: World) -> None:
    scene = world.scene_from_prompt("a red circle", np.random.default_rng(0))
    assert [(o.color, o.shape) for o in scene.objects] == [("red", "circle")]
    big = world.scene_from_prompt("a large blue cross left of a small red square", np.random.default_rng(0))
    assert [o.size for o in big.objects] == ["large", "small"]
    with pytest.raises(ValueError, match="purple"):
        world.scene_from_prompt("a purple circle", np.random.default_rng(0))
    with pytest.raises(ValueError):
        world.scene_from_prompt(
            "a red circle, a red cross, a red square and a red circle", np.random.default_rng(0)
        )


def test_dense_layouts_fit(world: World) -> None:
    # three large objects only fit in a zig-zag; sampling finds one, and so does the fallback
    rng = np.random.default_rng(0)
    for _ in range(20):
        scene = world.scene_from_prompt("a large red cross, a large blue cross and a large cyan square", rng)
        _, count = ndimage.label(world.render_image(scene).max(axis=2) > 0, structure=np.ones((3, 3)))
        assert count == 3
    for image_size in (32, 64):
        dense = World(WorldConfig(image_size=image_size))
        dense._fallback_layout(np.full(3, dense.size_px("large")))  # raises if the zig-zag does not fit


# ---------------------------------------------------------------------- rendering


@pytest.mark.parametrize("image_size", [32, 64])
def test_render_image_objects_are_separate_and_inside(image_size: int) -> None:
    world = World(WorldConfig(image_size=image_size))
    for scene in world.dataset(150, seed=5, split="all"):
        image = world.render_image(scene)
        assert image.shape == (image_size, image_size, 3) and image.dtype == np.uint8
        lit = image.max(axis=2) > 0
        # objects never touch, even diagonally, and none is clipped away by the border
        _, count = ndimage.label(lit, structure=np.ones((3, 3)))
        assert count == len(scene.objects)
        assert not (lit[0].any() or lit[-1].any() or lit[:, 0].any() or lit[:, -1].any())


def test_render_sound_format(world: World, scenes: list[Scene]) -> None:
    for scene in scenes[:20]:
        wave = world.render_sound(scene)
        assert wave.dtype == np.float32
        assert wave.shape == (round(16000 * 0.8),)
        assert np.abs(wave).max() <= 1.0


# ---------------------------------------------------------------------- analyzers


def test_image_analyzer_is_exact_on_renders(world: World, scenes: list[Scene]) -> None:
    hits = []
    for scene in scenes:
        found = analyze_image(world.render_image(scene))
        hits.append([(d.color, d.shape) for d in found] == scene.attributes())
        if hits[-1]:  # positions come back too
            assert all(
                abs(d.x - o.x) <= 1.0 and abs(d.y - o.y) <= 1.5
                for d, o in zip(found, scene.objects, strict=True)
            )
    assert _rate(hits) >= 0.99


def test_image_analyzer_at_64_px() -> None:
    world = World(WorldConfig(image_size=64))
    scenes = world.dataset(30, seed=6, split="all")
    assert (
        _rate(
            [
                [(d.color, d.shape) for d in analyze_image(world.render_image(s))] == s.attributes()
                for s in scenes
            ]
        )
        >= 0.99
    )


def test_image_analyzer_accepts_float_images(world: World, scenes: list[Scene]) -> None:
    image = world.render_image(scenes[0])
    assert analyze_image(image.astype(np.float32) / 255.0) == analyze_image(image)
    assert analyze_image(np.zeros((32, 32, 3), dtype=np.uint8)) == []
    with pytest.raises(ValueError):
        analyze_image(np.zeros((32, 32), dtype=np.uint8))


def test_image_analyzer_survives_blur_and_noise(world: World, scenes: list[Scene]) -> None:
    rng = np.random.default_rng(0)
    hits = [
        [(d.color, d.shape) for d in analyze_image(_blur_and_noise(world.render_image(s), rng))]
        == s.attributes()
        for s in scenes[:150]
    ]
    assert _rate(hits) >= 0.9


@pytest.mark.parametrize("given_count", [False, True])
def test_sound_analyzer_is_exact_on_renders(world: World, scenes: list[Scene], given_count: bool) -> None:
    hits = []
    for scene in scenes:
        count = len(scene.objects) if given_count else None
        hits.append(analyze_sound(world.render_sound(scene), 16000, count) == scene.attributes())
    assert _rate(hits) >= 0.99


@pytest.mark.parametrize("given_count", [False, True])
def test_sound_analyzer_survives_noise(world: World, scenes: list[Scene], given_count: bool) -> None:
    rng = np.random.default_rng(0)
    hits = []
    for scene in scenes[:150]:
        noisy = _white_noise(world.render_sound(scene), rng, snr_db=20.0)
        count = len(scene.objects) if given_count else None
        hits.append(analyze_sound(noisy, 16000, count) == scene.attributes())
    assert _rate(hits) >= 0.9


def test_sound_analyzer_on_silence_and_gapless_tone() -> None:
    assert analyze_sound(np.zeros(12800, dtype=np.float32), 16000) == []
    steady = 0.5 * np.sin(2 * np.pi * 240.0 * np.arange(12800) / 16000)  # red's pitch, no gaps or fades
    assert analyze_sound(steady, 16000) == [("red", "circle")]
    assert analyze_sound(steady, 16000, num_objects=1) == [("red", "circle")]


def test_palette_is_complete() -> None:
    assert len(COLORS) == 6 and len(SHAPES) == 4
