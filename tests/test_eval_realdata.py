"""Real-data judges: the Fréchet distance, the small contrastive model, and run= on a Fashion-MNIST run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import smoke_overrides
from unimodal.eval.metrics.fid import frechet_distance
from unimodal.eval.realdata.judges import clip_score, retrieval_accuracy, train_contrastive


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    features = np.random.default_rng(0).normal(size=(400, 8))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(features, features + 1.0) == pytest.approx(8.0, rel=1e-3)  # ||mu||^2, same spread


def _bars(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Grey images with a bright bar, captioned with where it is: a task a tiny judge learns at once."""
    rng = np.random.default_rng(seed)
    images = rng.random((count, 16, 16, 1)) * 40
    captions = []
    for i, side in enumerate(rng.integers(2, size=count)):
        images[i, :, 8 * side:8 * side + 8] += 200
        captions.append("a bar on the " + ("left" if side == 0 else "right"))
    return images.astype(np.uint8), captions


def test_contrastive_judge_tells_captions_apart(one_thread):
    images, captions = _bars(128, 0)
    judge = train_contrastive(images, captions, steps=40, batch_size=32, progress=False)
    test_images, test_captions = _bars(64, 1)
    accuracy, distinct = retrieval_accuracy(judge, test_images, test_captions)
    assert distinct == 2 and accuracy >= 0.9
    wrong = ["a bar on the right" if c.endswith("left") else "a bar on the left" for c in test_captions]
    assert clip_score(judge, test_images, test_captions) > clip_score(judge, test_images, wrong)


@pytest.mark.slow
def test_evaluate_run_on_fashion_mnist(tmp_path, one_thread):

    from unimodal.commands.evaluate import evaluate
    from unimodal.config import compose
    from unimodal.data.images import FASHION_MNIST_ROOT
    from unimodal.training.run import train
    if not Path(FASHION_MNIST_ROOT).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    run_dir = train(compose(smoke_overrides(tmp_path, "modality=image", "data=fashion_mnist", "data.num_test=32",
                                            f"run_dir={tmp_path}/run")))
    metrics = evaluate([f"run={run_dir}", "samples=8", "judge_steps=5", "progress=false"])
    assert set(metrics["clip_style"]) >= {"generated", "real", "retrieval_accuracy"}
    assert metrics["fd_fashion_mnist_classifier"]["generated_vs_real"] >= 0
    assert (run_dir / "eval" / "report.md").is_file() and (run_dir / "eval" / "grid.png").is_file()


def test_a_video_run_on_real_data_is_refused_with_its_reason(tmp_path):
    from types import SimpleNamespace

    from unimodal.errors import DataError
    from unimodal.eval.realdata.run import evaluate_real_run

    cfg = SimpleNamespace(data=SimpleNamespace(name="moving_fashion_mnist"),
                          modality=SimpleNamespace(name="video", media=["video"]))
    with pytest.raises(DataError, match="modality=video run on data=moving_fashion_mnist.*motion analyzer"):
        evaluate_real_run({}, "runs/v", None, cfg, tmp_path)
