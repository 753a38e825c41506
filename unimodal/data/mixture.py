"""Mixture of training tasks: per-task weights (``modality.weights``) times per-modality weights
(``modality.modality_weights``).

A task's weight is its task weight (1 when ``modality.weights`` is empty) times the weight of every distinct
modality it reads or writes (1 for a modality not listed). With ``{image: 1.0, audio: 0.5}`` every task with
audio in it (text->audio, audio->text, image->audio, audio->image) gets half its task weight, the others keep
theirs. A product rather than a mean, so that a modality's weight 0 removes every task that involves it. The
samplers (``TaskBatches``, packing) normalise the weights into probabilities.
"""

from __future__ import annotations

from typing import Any

from unimodal.errors import ConfigError


def task_modalities(task: str) -> list[str]:
    """The distinct modalities a task reads or writes: ``"image->text"`` -> ``["image", "text"]``."""
    return sorted(set(task.split("->")))


def check_modality_weights(modality: Any) -> None:
    """Refuse modality weights for modalities this config does not train, negative ones, or an empty mixture."""
    weights = dict(modality.modality_weights or {})
    known = ["text", *modality.media]
    for name, value in weights.items():
        if name not in known:
            raise ConfigError(f"modality.modality_weights: unknown modality {name!r}; modality={modality.name} "
                              f"trains {known}")
        if not float(value) >= 0:
            raise ConfigError(f"modality.modality_weights.{name} is {value}; a weight must be 0 or more")
    if modality.tasks and not any(w > 0 for w in task_weights(modality)):
        raise ConfigError(f"modality.modality_weights {weights} with modality.weights "
                          f"{list(modality.weights) or 'uniform'} leave no task to train; raise a weight above 0")


def task_weights(modality: Any) -> list[float]:
    """One unnormalised weight per entry of ``modality.tasks`` (module docstring)."""
    tasks = list(modality.tasks)
    base = [float(w) for w in modality.weights] or [1.0] * len(tasks)
    scale = {name: float(value) for name, value in dict(modality.modality_weights or {}).items()}
    weights = []
    for task, weight in zip(tasks, base, strict=True):
        for name in task_modalities(task):
            weight *= scale.get(name, 1.0)
        weights.append(weight)
    return weights
