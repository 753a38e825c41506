"""The standard FID from a user-supplied Inception weights file, on a file the test saves itself (torch-fidelity's
Inception-v3 architecture with random weights): nothing is downloaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unimodal.errors import UnimodalError
from unimodal.eval.metrics.fid import fid, inception_features, load_inception, standard_fid
from unimodal.eval.realdata.run import report_lines


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random-weight state dict in the layout torch-fidelity loads (its own module, built without its
    download: the loader is stubbed to return nothing and loading is skipped just for this construction)."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        model = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in model.modules():   # He init keeps the activations' scale through ~20 convs (torch's default
        if isinstance(module, torch.nn.Conv2d):   # init shrinks them to ~1e-8, where every FID is ~0)
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(model.state_dict(), path)
    return path


def _images(seed: int, count: int = 4, brightness: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 120, size=(count, 32, 32, 1)) + brightness, 0, 255).astype(np.uint8)


def test_fid_of_a_set_with_itself_is_zero_and_of_another_set_positive(weights, one_thread):
    real, other = _images(0), _images(1, brightness=120)
    different = standard_fid(other, real, weights, progress=False)
    features = inception_features(load_inception(weights), real, progress=False)
    assert features.abs().mean() > 1e-3   # the random network still tells images apart
    assert different["generated_vs_real"] > 1e-3 * features.pow(2).sum(1).mean()
    assert abs(fid(features, features)) < 1e-6 * different["generated_vs_real"]
    text = "\n".join(report_lines(different))
    assert "FID (Inception-v3" in text and f"{different['generated_vs_real']:.2f}" in text
    json.dumps(different)   # what metrics.json records


@pytest.mark.parametrize("samples", [6, 40])   # fewer samples than features (the shortcut), and more
def test_fid_matches_torch_fidelitys_formula(samples):
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    rng = np.random.default_rng(samples)
    a, b = (torch.from_numpy(rng.normal(size=(samples, 16)) + shift) for shift in (0.0, 0.3))
    reference = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    assert fid(a, b) == pytest.approx(reference[KEY_METRIC_FID], rel=1e-6)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)   # rounding of a sum of ~16


def test_missing_or_corrupt_weights_are_one_line_errors_naming_the_path(tmp_path):
    images = _images(0, count=2)
    with pytest.raises(UnimodalError, match="no such file") as missing:
        standard_fid(images, images, tmp_path / "absent.pth", progress=False)
    assert "absent.pth" in str(missing.value) and "\n" not in str(missing.value)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(UnimodalError, match="not Inception-v3 FID weights") as bad:
        standard_fid(images, images, corrupt, progress=False)
    assert "corrupt.pth" in str(bad.value) and "\n" not in str(bad.value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(UnimodalError, match="wrong.pth"):
        standard_fid(images, images, wrong, progress=False)


def test_without_weights_the_report_says_the_standard_fid_was_skipped():
    assert "Standard FID skipped" in "\n".join(report_lines({"skipped": "no inception="}))


def test_real_run_report_and_metrics_include_the_standard_fid(weights, tmp_path, monkeypatch, one_thread):
    """evaluate.py run=<dir> inception=<file> on a Fashion-MNIST run, with the LM's generation and the
    classifier FD stubbed (their own tests cover them): the FID lands in metrics.json and report.md."""
    from pathlib import Path

    from unimodal.commands.evaluate import parse_run_options as parse_options
    from unimodal.config import compose
    from unimodal.eval.realdata import run as realrun

    cfg = compose(["data=fashion_mnist", "data.num_train=64", "data.num_test=8"])
    if not Path(cfg.data.root).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    monkeypatch.setattr(realrun, "generate_images", lambda pipe, captions, *a, **k: _images(2, len(captions))
                        .repeat(8, axis=1).repeat(8, axis=2)[:, :32, :32])
    monkeypatch.setattr(realrun, "_fd_features", lambda options, steps: None)
    options = parse_options(["run=fake", "samples=4", "judge_steps=1", "progress=false", "device=cpu",
                             f"inception={weights}"])
    realrun.evaluate_real_run(options, "fake", None, cfg, tmp_path)
    recorded = json.loads((tmp_path / "metrics.json").read_text())["fid_inception"]
    assert recorded["generated_vs_real"] > 0 and recorded["samples"] == 4 and recorded["weights"] == str(weights)
    assert "## FID (Inception-v3 pool features, torch-fidelity)" in (tmp_path / "report.md").read_text()
    options = parse_options(["run=fake", "samples=4", "judge_steps=1", "progress=false", "device=cpu"])
    realrun.evaluate_real_run(options, "fake", None, cfg, tmp_path)
    assert "skipped" in json.loads((tmp_path / "metrics.json").read_text())["fid_inception"]
    assert "Standard FID skipped" in (tmp_path / "report.md").read_text()
    with pytest.raises(UnimodalError, match="absent.pth"):   # before anything is generated
        realrun.evaluate_real_run(parse_options(["run=fake", f"inception={tmp_path}/absent.pth"]), "fake", None,
                                  cfg, tmp_path)
