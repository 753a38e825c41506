"""Per-modality mixture weights: they multiply the task weights, the sampled mixture follows them, and bad
values are refused naming the key."""

from __future__ import annotations

import numpy as np
import pytest

from unimodal.config import compose
from unimodal.data.mixture import task_weights
from unimodal.errors import ConfigError
from unimodal.training.lm_data import TaskBatches, length_groups


def test_sampled_tasks_follow_task_times_modality_weights():
    cfg = compose(["modality=image+audio", "modality.modality_weights={image:1.0,audio:0.5}"])
    tasks = list(cfg.modality.tasks)
    weights = task_weights(cfg.modality)
    # modality.weights [3, 2, 1, 1, 1, 2]; every task with audio in it at half its weight.
    assert dict(zip(tasks, weights, strict=True)) == {"text->image": 3.0, "image->text": 2.0, "text->audio": 0.5,
                                                      "audio->text": 0.5, "image->audio": 0.5, "audio->image": 1.0}
    # Batches of one: every draw independent. 4,800 draws: a proportion's standard error is below 0.008.
    sampler = TaskBatches(800, len(tasks), 1, weights, seed=0, groups=length_groups(tasks))
    drawn = np.array([task for batch in sampler for _, task, _ in batch])
    assert len(drawn) == 4800
    share = np.bincount(drawn, minlength=len(tasks)) / len(drawn)
    expected = np.array(weights) / sum(weights)
    assert np.abs(share - expected).max() < 0.03, (share.round(3), expected.round(3))


def test_a_zero_weight_removes_the_modality_and_text_can_be_weighted():
    cfg = compose(["modality=image+audio", "modality.modality_weights={audio:0,text:2}"])
    assert task_weights(cfg.modality) == [6.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    assert task_weights(compose(["modality=image"]).modality) == [1.0, 1.0]   # no weights: uniform


@pytest.mark.parametrize(("value", "message"), [
    ("{video:1}", "modality.modality_weights: unknown modality 'video'"),
    ("{audio:1}", "modality.modality_weights: unknown modality 'audio'"),   # modality=image trains no audio
    ("{image:-1}", "modality.modality_weights.image is -1.0"),
    ("{image:0,text:0}", "leave no task to train"),
])
def test_bad_modality_weights_are_refused_by_key(value, message):
    with pytest.raises(ConfigError, match=message):
        compose(["modality=image", f"modality.modality_weights={value}"])
