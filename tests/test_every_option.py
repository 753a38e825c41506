"""Every option of every config group composes; with ``-m slow`` a debug=smoke run of each one finishes.

Some options need something beside them to be a valid run: a pretrained LLM for ``stage=align``, a folder for
``data=folder``, the modality a data source holds. ``companions`` says what, for each such option; the only options
not run here are those this machine cannot run (``trainer=gpu`` without a CUDA device).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import smoke_overrides
from tests.test_config_list import groups
from unimodal.config import compose

OPTIONS = [(group, option) for group, options in groups().items() for option in sorted(options)]
GPU_ONLY = {("trainer", "gpu"): "trainer=gpu needs a CUDA device",
            ("trainer", "ddp"): "trainer=ddp spreads over every GPU of a node (tests/test_ddp.py runs DDP on CPU)",
            ("trainer", "fsdp"): "trainer=fsdp shards over GPUs (refused on a CPU)",
            ("experiment", "gpu_base"): "experiment=gpu_base is a GPU recipe"}


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg.model.context_length > 0 and cfg.modality.tasks


@dataclass
class Assets:
    """What options need beside them, made once for the module (nothing is downloaded)."""

    root: Path
    llm: Path
    vq: Path
    encodec: Path
    folder: Path
    chat: Path
    source: Path
    clip: Path
    tars: str


def _assets(root: Path) -> Assets:
    from diffusers import VQModel
    from PIL import Image

    from tests.test_chat_data import write_llava_file
    from tests.test_webdataset import write_tars
    from tests.tiny_llm import save_tiny_llm
    from tests.tiny_pipeline import save_tiny_clip
    from unimodal.training.run import train

    llm = save_tiny_llm(root / "llm")
    torch.manual_seed(0)
    VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 8, 16), layers_per_block=1,
            latent_channels=4, num_vq_embeddings=16, vq_embed_dim=3, norm_num_groups=4,
            mid_block_add_attention=False).save_pretrained(root / "vq")
    from encodec.model import EncodecModel
    from encodec.modules import SEANetDecoder, SEANetEncoder
    from encodec.quantization import ResidualVectorQuantizer

    arch = dict(channels=1, dimension=8, n_filters=4, n_residual_layers=1, ratios=[8, 5, 4, 2], lstm=1, causal=True,
                norm="weight_norm")
    codec = EncodecModel(SEANetEncoder(**arch), SEANetDecoder(**arch), ResidualVectorQuantizer(dimension=8, n_q=4,
                                                                                                 bins=16),
                         target_bandwidths=[1.0], sample_rate=16000, channels=1)
    torch.save(codec.state_dict(), root / "encodec.th")
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "text": f"picture number {i % 5}"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    chat, _, _ = write_llava_file(root / "chat")
    source = train(compose(smoke_overrides(root, f"run_dir={root}/source")))   # also the default tokenizers
    (root / "tars").mkdir()
    return Assets(root, llm, root / "vq", root / "encodec.th", folder, chat, source,
                  save_tiny_clip(root / "clip", image_size=32), write_tars(root / "tars"))


def companions(group: str, option: str, a: Assets) -> list[str]:
    align = ["model=from_pretrained", f"model.pretrained={a.llm}", "tokenizer/text=pretrained", "modality=image"]
    features = ["modality=image", "model.vision_input=features"]   # encoder and projector serve this path only
    table = {
        ("model", "from_pretrained"): ["stage=align", *align],
        ("model", "base"): ["lm.max_steps=2", "lm.batch_size=4"],
        ("model", "large"): ["lm.max_steps=1", "lm.batch_size=2", "lm.val_every_steps=1",
                             "lm.checkpoint_every_steps=1"],
        ("stage", "align"): align,
        ("tokenizer/text", "pretrained"): [f"tokenizer.text.path={a.llm}", "modality=image"],
        ("tokenizer/image", "pretrained"): [f"tokenizer.image.path={a.vq}", "modality=image"],
        ("tokenizer/audio", "encodec_speech"): ["modality=audio", "model.context_length=512"],
        ("tokenizer/audio", "encodec_pretrained"): [f"tokenizer.audio.path={a.encodec}", "modality=audio",
                                                    "tokenizer.audio.filters=4", "tokenizer.audio.lstm=1"],
        ("tokenizer/video", "causal3d"): ["modality=video"],
        ("tokenizer/video", "framewise"): ["modality=video"],
        ("data", "fashion_mnist"): ["modality=image"],
        ("data", "clipart"): ["modality=image", "data.limit=40", "data.image_size=32"],
        ("data", "folder"): ["modality=image", f"data.path={a.folder}"],
        ("data", "speech"): ["modality=audio"],
        ("data", "moving_fashion_mnist"): ["modality=video", "data.num_test=8", "model.context_length=512"],
        ("data", "chat"): ["stage=instruct", f"init_from={a.source}", f"data.path={a.chat}"],
        ("data", "webdataset"): ["modality=image", f"data.urls={a.tars}"],
        ("encoder", "pretrained"): [*features, f"encoder.path={a.clip}"],
        ("encoder", "trained"): features,
        ("projector", "linear"): features,
        ("projector", "mlp"): features,
        ("projector", "qformer"): features,
    }
    return table.get((group, option), [])


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return _assets(tmp_path_factory.mktemp("every-option"))


@pytest.mark.slow
@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_trains_with_debug_smoke(group, option, assets, one_thread):
    """Tokenizers (shared between runs where their config and data agree), token shards and the stages of each
    option, a few steps each."""
    from unimodal.training.run import train

    if (group, option) in GPU_ONLY and not torch.cuda.is_available():
        pytest.skip(GPU_ONLY[(group, option)])
    name = f"{group.replace('/', '-')}-{option}"
    overrides = smoke_overrides(assets.root, f"{group}={option}", *companions(group, option, assets),
                                f"run_dir={assets.root}/runs/{name}")
    cfg = compose(overrides)
    run = train(cfg)
    if cfg.stage.train_lm:
        assert (run / "lm" / "config.json").is_file(), name
