"""The composed config checked against the schema (:mod:`unimodal.config.schema`) and its ranges: one
:class:`ConfigError` naming the key, before anything runs."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from unimodal.config.schema import KNOWN_MEDIA, STRATEGIES, Config
from unimodal.errors import ConfigError

# Counts and sizes whose zero or negative value would fail later, deep in a run: refused at start, naming the key.
AT_LEAST = {
    1: ("lm.batch_size", "lm.max_steps", "lm.accumulate_grad_batches", "lm.val_every_steps",
        "lm.checkpoint_every_steps", "lm.log_every_steps",
        "instruct.batch_size", "instruct.max_steps", "instruct.max_turns", "instruct.val_every_steps",
        "instruct.checkpoint_every_steps", "data.num_train", "data.num_val", "data.image_size", "data.sample_rate",
        "model.context_length",
        *(f"tokenizer.{m}.train.{k}" for m in ("image", "audio", "video") for k in ("steps", "batch_size"))),
    0: ("lm.warmup_steps", "instruct.warmup_steps", "instruct.num_edits", "data.num_test", "seed"),
}


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    head = text[0] if text else type(err).__name__
    cause = getattr(err, "__cause__", None)
    if cause is not None and str(cause).strip():
        head = f"{head.rstrip('.')}: {str(cause).strip().splitlines()[0]}"
    full_key = next((line.split(":", 1)[1].strip() for line in text if line.strip().startswith("full_key")), "")
    return f"{head} (config key: {full_key})" if full_key and full_key not in head else head


def validate(cfg: DictConfig) -> DictConfig:
    """Merge ``cfg`` onto the schema; raise ConfigError naming the offending key."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
        OmegaConf.resolve(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid config: {_one_line(err)}") from None
    unknown = [m for m in merged.modality.media if m not in KNOWN_MEDIA]
    if unknown:
        raise ConfigError(f"modality.media: unknown media {unknown}; known: {list(KNOWN_MEDIA)}")
    for task in merged.modality.tasks:
        parts = task.split("->")
        if task != "text" and (len(parts) != 2 or any(p not in ("text", *merged.modality.media) for p in parts)):
            raise ConfigError(f"modality.tasks: bad task {task!r}; write 'source->target' over "
                              f"text and {list(merged.modality.media)}")
    if merged.modality.weights and len(merged.modality.weights) != len(merged.modality.tasks):
        raise ConfigError(f"modality.weights has {len(merged.modality.weights)} entries for "
                          f"{len(merged.modality.tasks)} tasks {list(merged.modality.tasks)}")
    from unimodal.data.mixture import check_modality_weights
    check_modality_weights(merged.modality)
    from unimodal.spans import LAYOUTS
    for key in ("image", "audio"):
        if merged.tokenizer[key].layout not in LAYOUTS:
            raise ConfigError(f"tokenizer.{key}.layout={merged.tokenizer[key].layout!r}; choose one of {list(LAYOUTS)}")
    from unimodal.tokenizers.anyres_settings import AnyResSettings
    AnyResSettings.from_config(merged.tokenizer.image.anyres)   # max_tiles and grids checked, naming the key
    if merged.data.anyres != merged.tokenizer.image.anyres:
        raise ConfigError("data.anyres follows tokenizer.image.anyres: set tokenizer.image.anyres.* instead")
    for minimum, keys in AT_LEAST.items():
        for key in keys:
            value = OmegaConf.select(merged, key)
            if value is not None and value < minimum:
                raise ConfigError(f"{key}={value}: must be at least {minimum}")
    trainer = merged.trainer
    if trainer.strategy not in STRATEGIES:
        raise ConfigError(f"trainer.strategy={trainer.strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if trainer.num_nodes < 1 or trainer.devices == 0 or trainer.devices < -1 or trainer.timeout_minutes <= 0:
        raise ConfigError(f"trainer.devices={trainer.devices}, trainer.num_nodes={trainer.num_nodes}, "
                          f"trainer.timeout_minutes={trainer.timeout_minutes}: devices is a count per node (or -1 for "
                          f"every GPU), num_nodes at least 1, the timeout positive")
    from unimodal.model.vision import check_vision_config
    check_vision_config(merged)
    if merged.model.vision_input == "features" and trainer.strategy == "fsdp":
        raise ConfigError("model.vision_input=features with trainer.strategy=fsdp: the projector is not sharded; "
                          "use trainer.strategy=ddp (or auto)")
    from unimodal.sequence import MODALITY_CODES
    unknown = sorted(set(merged.lm.loss_weights or {}) - set(MODALITY_CODES))
    if unknown or any(w < 0 for w in (merged.lm.loss_weights or {}).values()):
        raise ConfigError(f"lm.loss_weights: {dict(merged.lm.loss_weights)} needs weights >= 0 for target "
                          f"modalities among {list(MODALITY_CODES)} (unknown: {unknown})")
    return merged
