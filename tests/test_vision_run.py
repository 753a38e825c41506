"""Round trips of a run that reads images as features (debug=smoke, the trained encoder): it generates images, captions
a PNG through scripts/generate.py, exports, loads from the export with the same logits, and resumes exactly after
SIGKILL."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
import torch

from tests.conftest import smoke_overrides
from tests.test_resume import KILL_AFTER, OVERRIDES, STEPS, _finish, _start, _steps_logged, _train_losses

FEATURES = ["modality=image", "model.vision_input=features", "projector=qformer"]


@pytest.fixture(scope="module")
def features_run(tmp_path_factory):
    """stage=instruct (tokenizers, the contrastive encoder, pretraining, chat tuning with the encoder tuned too),
    reading images as features."""
    from unimodal.config import compose
    from unimodal.training.run import train

    root = tmp_path_factory.mktemp("features")
    return train(compose(smoke_overrides(root, *FEATURES, "stage=instruct", f"run_dir={root}/run",
                                         "encoder.trainable=true", "trainer.num_threads=1")))


def test_a_features_run_writes_images_and_captions_a_png_through_generate_py(features_run, tmp_path, capsys):
    import unimodal
    from unimodal.commands.generate import main
    from unimodal.media import write_png

    info = json.loads((features_run / "run.json").read_text())
    assert info["vision"]["input"] == "features" and info["vision"]["slots_per_crop"] == 4   # smoke: 4 queries
    assert (features_run / "encoder" / "model.safetensors").is_file()
    pretrained = json.loads((features_run / "lm-pretrain" / "vision.json").read_text())
    assert pretrained["encoder"]["path"] == "../encoder"   # pretraining keeps the encoder frozen: a reference
    tuned = json.loads((features_run / "lm" / "vision.json").read_text())
    assert tuned["encoder"]["path"] == "encoder" and tuned["encoder"]["fingerprint"] != pretrained["encoder"][
        "fingerprint"]   # encoder.trainable=true: chat tuning moved it, and lm/ holds that encoder
    card = next((features_run.parent / "tokenizers").glob("encoder-clip-*/card.md")).read_text()
    assert "val_retrieval_top1" in card and "Fingerprint" in card
    pipe = unimodal.load(features_run, device="cpu")
    image = pipe.generate("a red circle", output="image")[0].images[0]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    png = write_png(image, tmp_path / "picture.png")
    capsys.readouterr()
    assert main([f"run={features_run}", f"image={png}", "output=text", f"out_dir={tmp_path}"]) == 0
    assert capsys.readouterr().out.startswith("[0] ")
    assert main([f"run={features_run}", f"image={png}", "question=how many circles are there?", "output=text",
                 f"out_dir={tmp_path}"]) == 0
    assert main([f"run={features_run}", f"image={png}", "output=image", f"out_dir={tmp_path}"]) == 0
    assert list(tmp_path.glob("picture-0-0.png"))


def test_the_export_of_a_features_run_loads_with_the_same_logits(features_run, tmp_path):
    import unimodal
    from unimodal.commands.export import EXPORT_FILE, export
    from unimodal.model.lm import embed_ids

    out = export([f"run={features_run}", f"out={tmp_path / 'export'}"])
    assert {"vision.json", "projector.safetensors", "encoder", "README.md"} <= {p.name for p in out.iterdir()}
    manifest = json.loads((out / EXPORT_FILE).read_text())
    assert manifest["vision"]["encoder"] == "encoder"
    assert "Images are read as features" in (out / "README.md").read_text()
    run, exported = unimodal.load(features_run, device="cpu"), unimodal.load(out, device="cpu")
    picture = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    prompt = run.prompt([picture, "how many circles are there?"], chat=True)
    ids = torch.as_tensor(prompt.ids)[None]
    with torch.no_grad():
        want, got = (pipe.model(inputs_embeds=embed_ids(pipe.model, ids, images=pipe.pixel_values([prompt]))).logits
                     for pipe in (run, exported))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert exported.generate(picture, output="text")[0].text == run.generate(picture, output="text")[0].text


def test_evaluate_scores_a_features_run_and_a_mismatched_resume_is_refused(features_run):
    from unimodal.commands.evaluate import parse_run_options
    from unimodal.config import compose
    from unimodal.errors import UnimodalError
    from unimodal.eval.world.run import evaluate_run
    from unimodal.training.run import train

    options = parse_run_options([f"run={features_run}", "samples=2", "lm_samples=2", "vqa_scenes=2", "batch_size=8",
                                 "seeds=1", "controls=false", "progress=false", "device=cpu"])
    metrics = evaluate_run(options)
    assert set(metrics["directions"]) == {"text->image", "image->text"}
    assert "image" in metrics["lm_bits_per_token"]["seen"] and "visual" in metrics["vqa"]["seen"]
    root = features_run.parent
    for other in (["model.vision_input=tokens"], ["projector=mlp"]):   # tokens, or another projector, in that folder
        with pytest.raises(UnimodalError, match="reads images as features .* choose another run_dir"):
            train(compose(smoke_overrides(root, *FEATURES, *other, "stage=instruct", f"run_dir={features_run}")))


def test_a_features_run_resumes_exactly_after_sigkill(tmp_path):
    overrides = [*OVERRIDES, *FEATURES[1:]]
    _finish(_start(tmp_path, "reference", 0.0, overrides))
    killed = _start(tmp_path, "killed", 0.3, overrides)
    log = tmp_path / "killed" / "logs" / "metrics.csv"
    deadline = time.monotonic() + 120
    while _steps_logged(log) < KILL_AFTER:
        assert killed.poll() is None, "the run ended before it was killed"
        assert time.monotonic() < deadline, "no training step logged in time"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "lm").exists()
    out = _finish(_start(tmp_path, "killed", 0.0, overrides))
    resumed_at = int(out.split("resuming from")[1].split("at step")[1].split()[0])
    assert KILL_AFTER <= resumed_at < STEPS
    want = _train_losses(tmp_path / "reference" / "metrics.csv")
    got = _train_losses(tmp_path / "killed" / "metrics.csv")
    assert sorted(got) == sorted(want) == list(range(STEPS))
    assert all(abs(got[s] - want[s]) <= 1e-5 for s in want), (got, want)
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["vision"]["projector"] == "qformer"
