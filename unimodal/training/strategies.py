"""How the LM stages train across devices: ``trainer.strategy=auto|ddp|fsdp`` -> Lightning Trainer arguments.

- one device: Lightning's single-device loop, as before;
- ``ddp`` (and ``auto`` with several devices or nodes): Lightning's DDPStrategy, one process per device;
- ``fsdp``: Lightning's FSDPStrategy, each decoder layer of the model (``LlamaDecoderLayer`` for our Llama) its own
  FSDP unit, with the mixed precision of ``trainer.precision`` (bf16 parameters and reductions for
  ``bf16-mixed``) and, with ``model.gradient_checkpointing``, activation checkpointing of the same layers.
  Checkpoints are full state dicts gathered on rank 0 and written by our CheckpointIO (``fsdp_io.py``).

``lm.accumulate_grad_batches`` goes to Lightning; ``lm.max_steps``, the checkpoint interval and the LR schedule
all count optimizer steps. Each rank's batch is ``lm.batch_size``: the global batch is that times devices,
nodes and accumulation, printed at the start of training.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
from omegaconf import DictConfig

from unimodal.errors import ConfigError
from unimodal.training.accelerator import trainer_kwargs
from unimodal.training.distributed import uses_cuda
from unimodal.training.launch import devices_per_node, world_size


def lm_precision(trainer_cfg: Any) -> str:
    """``precision: auto`` is bf16-mixed on a GPU and on a CPU with native bf16, fp32 otherwise."""
    return trainer_kwargs(trainer_cfg, lm=True)["precision"]


def decoder_layer_class(model: torch.nn.Module) -> type[torch.nn.Module]:
    """The class of the model's repeated block (LlamaDecoderLayer; another family's under stage=align)."""
    return type(model.get_decoder().layers[0])


def lm_strategy(trainer_cfg: Any, model_cfg: Any, model: torch.nn.Module) -> Any:
    """Lightning's strategy for the LM stages; ``fsdp`` even on one device (its checkpoints and export then take the
    same path as on many), ``ddp`` and ``auto`` only with several."""
    fsdp = trainer_cfg.strategy == "fsdp"
    if world_size(trainer_cfg) == 1 and not fsdp:
        return "auto"
    timeout = timedelta(minutes=float(trainer_cfg.get("timeout_minutes", 60)))
    if fsdp:
        from unimodal.training.fsdp_io import FolderFSDPStrategy

        if not uses_cuda(trainer_cfg):
            raise ConfigError("trainer.strategy=fsdp needs GPUs (torch's FSDP shards onto an accelerator); on a CPU "
                              "use trainer.strategy=ddp")

        layer = {decoder_layer_class(model)}
        checkpointing = layer if model_cfg.get("gradient_checkpointing") else None
        return FolderFSDPStrategy(auto_wrap_policy=layer, activation_checkpointing_policy=checkpointing,
                                  sharding_strategy="FULL_SHARD", state_dict_type="full", timeout=timeout)
    from lightning.pytorch.strategies import DDPStrategy

    # Every parameter gets a gradient each step (the loss touches the head even on a rank with no targets).
    return DDPStrategy(find_unused_parameters=False, gradient_as_bucket_view=True, timeout=timeout)


def lm_trainer_kwargs(cfg: DictConfig, model: torch.nn.Module) -> dict[str, Any]:
    """Accelerator, devices, nodes, strategy, precision and accumulation of an LM stage's Trainer."""
    trainer_cfg = cfg.trainer
    if cfg.model.get("gradient_checkpointing") and trainer_cfg.strategy != "fsdp":
        # FSDP checkpoints its wrapped layers itself; elsewhere the HF model recomputes each layer.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return {"accelerator": trainer_cfg.accelerator, "devices": devices_per_node(trainer_cfg),
            "num_nodes": int(trainer_cfg.num_nodes), "precision": lm_precision(trainer_cfg),
            "strategy": lm_strategy(trainer_cfg, cfg.model, model),
            "accumulate_grad_batches": int(cfg.lm.get("accumulate_grad_batches", 1)),
            # Our batch samplers deal each global batch across ranks themselves (training/lm_data.py).
            "use_distributed_sampler": False}


def global_batch_line(cfg: DictConfig, batch_size: int, what: str = "sequences") -> str:
    devices, nodes = devices_per_node(cfg.trainer), int(cfg.trainer.num_nodes)
    accumulate = int(cfg.lm.get("accumulate_grad_batches", 1))
    total = batch_size * devices * nodes * accumulate
    return (f"global batch {total} {what} per optimizer step = {batch_size} per device x {devices} devices x "
            f"{nodes} nodes x {accumulate} accumulated")


def whole_model(trainer: Any, model: torch.nn.Module, build: Any) -> torch.nn.Module:
    """The trained model, whole, on rank 0 (other ranks: ``model``). Under FSDP ``model`` holds only this rank's
    shards: the full state dict is gathered on rank 0 (a collective: every rank calls this) and loaded into a
    freshly built copy (``build()``)."""
    from lightning.pytorch.strategies import FSDPStrategy

    if not isinstance(trainer.strategy, FSDPStrategy):
        return model
    state = trainer.strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return model
    whole = build()
    whole.load_state_dict({key.removeprefix("model."): value for key, value in state.items()})
    return whole
