"""model.vision_input=features, in memory: projectors, the feature span (AnyRes included), the slots filled in order,
generation from pixels, and one-line errors for a wrong encoder folder, a mismatched hidden size or channel count."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from tests.tiny_llm import save_tiny_llm
from tests.tiny_pipeline import save_tiny_clip, tiny_features_pipeline
from unimodal.errors import ConfigError, UnimodalError, VocabularyMismatch
from unimodal.feature_spans import FEATURE_SLOT, feature_image
from unimodal.sequence import Segment

QFORMER = {"kind": "qformer", "input_size": None, "num_queries": 3, "hidden_size": 16, "num_layers": 1,
           "num_heads": 2, "intermediate_size": 32, "dropout": 0.0}


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


@pytest.mark.parametrize("kind", ["mlp", "linear", "qformer"])
def test_projectors_give_one_lm_vector_per_slot(kind):
    from transformers import Blip2QFormerModel

    from unimodal.model.projector import build_projector, projector_config

    projector = build_projector(projector_config(OmegaConf.create({**QFORMER, "kind": kind}), 16, 32))
    out = projector(torch.randn(5, 4, 16))
    slots = 3 if kind == "qformer" else 4
    assert out.shape == (5, slots, 32) and projector.slots(4) == slots
    if kind == "qformer":  # BLIP-2's Q-Former from transformers, not one written here
        assert isinstance(projector.qformer, Blip2QFormerModel)
    if kind == "mlp":  # LLaVA-1.5: Linear, GELU, Linear
        assert [type(m).__name__ for m in projector] == ["Linear", "GELU", "Linear"]


def test_anyres_64x128_is_a_thumbnail_and_two_tiles_of_features_in_the_documented_layout(clip_dir):
    """Must show: a 64x128 image -> thumbnail + 2 tiles; ``<boi> thumb <tile> tile <tile> tile <eoi>``, each crop's
    slots filled with that crop's features, in that order."""
    from unimodal.model.lm import embed_ids

    pipe = tiny_features_pipeline(clip_dir, anyres_max_tiles=4)
    vision, vocab = pipe.model.vision_input, pipe.vocab
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, :64, 0], image[:, 64:, 2] = 255, 200  # left half red, right half blue
    payload = feature_image(image, vision.crop_size, 4)
    assert payload.grid == (1, 2) and payload.num_crops == 3
    assert all(c.shape == (16, 16, 3) for c in payload.crops)
    left, right = payload.crops[1].mean((0, 1)), payload.crops[2].mean((0, 1))   # tiles in order
    assert left[0] > 240 > 10 > left[2] and right[2] > 190 > 10 > right[0]
    encoded = pipe.prompt(image)
    slots = [FEATURE_SLOT] * vision.slots
    tile, boi, eoi = vocab.special("<tile>"), vocab.special("<boi>"), vocab.special("<eoi>")
    assert list(encoded.ids) == [vocab.bos_id, boi, *slots, tile, *slots, tile, *slots, eoi]
    assert len(encoded.images) == 1 and encoded.images[0] == payload
    pixels = pipe.pixel_values([encoded])
    assert pixels.shape == (3, 3, 16, 16)
    with torch.no_grad():
        embeds = embed_ids(pipe.model, torch.as_tensor(encoded.ids)[None], images=pixels)[0]
        features = vision(pixels)   # [crops, slots, d]: thumbnail, tile (0,0), tile (0,1)
    starts = [2, 3 + vision.slots, 4 + 2 * vision.slots]
    for crop, start in enumerate(starts):
        torch.testing.assert_close(embeds[start:start + vision.slots], features[crop])
    assert not torch.allclose(features[1], features[2])
    answer = pipe.generate(image, output=["text", "image"], sampling=None)[0]   # reads features, writes tokens
    assert answer.images and answer.images[0].shape == (16, 16, 3)


@pytest.mark.parametrize("projector", ["mlp", "qformer"])
def test_a_prompt_image_is_read_as_features_and_not_resized(clip_dir, projector):
    pipe = tiny_features_pipeline(clip_dir, projector)
    assert pipe.reads_features
    wide = np.random.default_rng(0).integers(0, 255, (20, 50, 3), dtype=np.uint8)
    segment = pipe.segments_from(wide)[0]
    assert segment.payload.crops[0].shape == (20, 50, 3)   # the processor crops and resizes it, not we
    processed = pipe.model.vision_input.encoder.processor(images=[wide], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pipe.pixel_values([pipe.prompt(wide)]), processed)
    grey = pipe.generate(wide[..., :1], output="text")[0]   # grey repeated to RGB
    reply = pipe.chat([{"role": "user", "content": [wide, "how many circles are there?"]}])
    again = pipe.generate([grey, "again"], output="text")[0]   # an earlier answer goes back in
    assert isinstance(reply.text, str) and isinstance(again.text, str)
    target = pipe.codec.encode([Segment("text", [1, 2]), Segment("image", feature_image(wide, 16, 0, np.zeros(
        pipe.codec.image_grid, np.int64)), loss=True)])
    assert not target.images and FEATURE_SLOT not in target.ids   # a target image is written as its tokens


def test_bad_input_is_one_line_naming_the_thing_and_the_fix(clip_dir, tmp_path):
    """Must show: a wrong encoder folder, an encoder whose hidden size differs from the projector's, and an image of
    the wrong channel count each give one line that names the thing and the fix."""
    from unimodal.model.lm import load_lm, save_lm
    from unimodal.model.vision import load_encoder
    from unimodal.model.vision_input import make_vision

    def one_line(error: pytest.ExceptionInfo) -> str:
        text = str(error.value)
        assert "\n" not in text
        return text

    llm = save_tiny_llm(tmp_path / "llama")
    for folder, says in ((tmp_path / "missing", "no such folder"), (llm, "'llama' model, not a CLIP or SigLIP"),
                         (tmp_path, "no config.json there")):
        with pytest.raises(ConfigError) as err:
            load_encoder(str(folder))
        assert str(folder) in one_line(err) and says in one_line(err) and "CLIPVisionModel" in one_line(err)
    (tmp_path / "no-processor").mkdir()
    (tmp_path / "no-processor" / "config.json").write_text((clip_dir / "config.json").read_text())
    with pytest.raises(ConfigError, match="preprocessor_config.json") as err:
        load_encoder(str(tmp_path / "no-processor"))
    one_line(err)

    encoder = load_encoder(str(clip_dir))
    with pytest.raises(ConfigError, match=r"input_size=64 .* hidden_size 16; drop projector.input_size") as err:
        make_vision(encoder, OmegaConf.create({"kind": "mlp", "input_size": 64}), 32)
    one_line(err)
    pipe = tiny_features_pipeline(clip_dir)   # a saved model whose encoder is then swapped for a wider one
    save_lm(pipe.model, tmp_path / "lm")
    config = json.loads((tmp_path / "lm" / "vision.json").read_text())
    config["encoder"]["path"] = str(save_tiny_clip(tmp_path / "wide", hidden_size=24))
    (tmp_path / "lm" / "vision.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="reads 16-d features but the encoder .* has hidden_size 24") as err:
        load_lm(tmp_path / "lm", pipe.vocab)
    one_line(err)
    config["encoder"]["path"] = str(save_tiny_clip(tmp_path / "other", seed=1))   # same size, other weights
    (tmp_path / "lm" / "vision.json").write_text(json.dumps(config))
    with pytest.raises(VocabularyMismatch, match="use the encoder it was trained with") as err:
        load_lm(tmp_path / "lm", pipe.vocab)
    one_line(err)

    for shape in ((16, 16, 2), (16, 16, 5)):
        with pytest.raises(UnimodalError, match=r"reads 3-channel .* give an RGB \(3\), grey \(1\) or RGBA") as err:
            pipe.generate(np.zeros(shape, np.uint8), output="text")
        assert str(shape) in one_line(err)


def test_feature_keys_are_checked_at_start(tmp_path):
    from unimodal.config import compose

    with pytest.raises(ConfigError, match="model.vision_input='pixels': choose tokens or features"):
        compose(["model.vision_input=pixels"])
    with pytest.raises(ConfigError, match="modality=audio has none"):
        compose(["modality=audio", "model.vision_input=features"])
    with pytest.raises(ConfigError, match="encoder.path="):
        compose(["modality=image", "model.vision_input=features", "encoder=pretrained"])
    with pytest.raises(ConfigError, match="lm.packing=false"):
        compose(["modality=image", "model.vision_input=features", "lm.packing=true"])
    cfg = compose(["modality=image", "model.vision_input=features", "projector=qformer"])
    assert cfg.projector.kind == "qformer" and cfg.encoder.kind == "trained" and cfg.encoder.feature_layer == -2
