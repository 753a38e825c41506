"""FSDP checkpoints as our safetensors folders: full state dicts, gathered on rank 0 and written by CheckpointIO.

Lightning's FSDPStrategy writes a ``full`` checkpoint through the CheckpointIO plugin, but refuses a checkpoint
path that is a folder and loads ``full`` checkpoints with ``torch.load`` (a pickle). Our checkpoints are folders of
safetensors + JSON (``checkpoint_io.py``), so this subclass saves them through the plugin as any strategy does and
loads them back through it: the full model state into the sharded model, then the optimizer state re-sharded by
``FSDP.optim_state_dict_to_load``. (Sharded checkpoints would be torch.distributed.checkpoint's own files, pickle
metadata included, so they are not offered.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.trainer.states import TrainerFn


class FolderFSDPStrategy(FSDPStrategy):
    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any | None = None) -> None:
        # The state dicts in ``checkpoint`` were gathered on rank 0 already (state_dict_type="full").
        if self.is_global_zero:
            self.checkpoint_io.save_checkpoint(checkpoint, Path(filepath), storage_options=storage_options)

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> dict[str, Any]:
        from torch.distributed.fsdp import (
            FullOptimStateDictConfig,
            FullStateDictConfig,
            OptimStateKeyType,
            StateDictType,
        )
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        path = Path(self.broadcast(checkpoint_path))
        checkpoint = self.checkpoint_io.load_checkpoint(path)   # every rank reads the same folder
        model = self.model
        full = (StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=True, rank0_only=False),
                FullOptimStateDictConfig(offload_to_cpu=True, rank0_only=False))
        with FSDP.state_dict_type(model, *full):
            model.load_state_dict(checkpoint.pop("state_dict"), strict=self.lightning_module.strict_loading)
            states = checkpoint.get("optimizer_states")
            if states is None or self.lightning_module.trainer.state.fn != TrainerFn.FITTING:
                return checkpoint
            for optimizer, state in zip(self.optimizers, states, strict=True):
                if state["state"] and isinstance(next(iter(state["state"])), int):  # saved keyed by parameter id
                    state = FSDP.rekey_optim_state_dict(state, OptimStateKeyType.PARAM_NAME, model)
                optimizer.load_state_dict(FSDP.optim_state_dict_to_load(model, optimizer, state))
        return checkpoint
