"""Training checkpoints as a folder of safetensors and JSON: nothing in it is a pickle, nothing runs code on load.

Lightning hands a checkpoint over as one nested dict (step counters, model ``state_dict``, optimizer and
scheduler states, callback and data-loader states). ``SafetensorsCheckpointIO`` writes it as

    <name>/model.safetensors      checkpoint["state_dict"]: the model weights, by parameter name
    <name>/optimizer.safetensors  every tensor of checkpoint["optimizer_states"] (step counts, Adam moments)
    <name>/state.safetensors      every other tensor (RNG states, callback scores)
    <name>/checkpoint.json        everything else; each tensor replaced by {"__tensor__": [file, name]}

JSON has no tuples, no non-string keys and no bytes, so those are tagged (``__tuple__``, ``__items__``,
``__bytes__`` in base64) and come back as they went in: an optimizer's ``betas`` stay a tuple, its
``state`` keeps integer keys. A value of any other type is refused at save time, naming where it is.

The folder is written as ``<name>.partial`` and renamed into place when complete (the previous checkpoint
is first moved to ``<name>.previous``, since a folder cannot be renamed over a non-empty one):
``recover_checkpoint`` puts the previous one back when a kill fell between the two renames.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from safetensors.torch import load_file, save_file

from unimodal.errors import UnimodalError

FORMAT = "unimodal-checkpoint/1"
JSON_FILE = "checkpoint.json"
PARTIAL_SUFFIX = ".partial"
PREVIOUS_SUFFIX = ".previous"
# Top-level checkpoint key -> the tensor file its tensors go to; every other key's tensors go to STATE.
TENSOR_FILES = {"state_dict": "model", "optimizer_states": "optimizer"}
STATE = "state"
MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__items__", "__bytes__")


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning ``CheckpointIO`` writing folders of safetensors + JSON (module docstring), atomically.

    Why a CheckpointIO plugin: it is the one place every Lightning save and load goes through (ModelCheckpoint,
    ``trainer.save_checkpoint``, ``fit(ckpt_path=...)``), so no ``torch.save``/``torch.load`` is left on the path.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafetensorsCheckpointIO.save_checkpoint takes no storage_options")
        save_folder(checkpoint, Path(path))

    def load_checkpoint(self, path: Any, map_location: Any | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        # weights_only is moot: nothing here is unpickled. Tensors load on the CPU; Lightning moves them.
        return load_folder(Path(path))

    def remove_checkpoint(self, path: Any) -> None:
        _remove(Path(path))


def save_folder(checkpoint: dict[str, Any], target: Path) -> None:
    """``checkpoint`` as the folder ``target`` (module docstring); the old folder stays until the new is whole."""
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    tree = {key: _encode(value, key, TENSOR_FILES.get(key, STATE), tensors) for key, value in checkpoint.items()}
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    _remove(partial)
    partial.mkdir(parents=True)
    for group, named in tensors.items():
        file = partial / f"{group}.safetensors"
        save_file(_unshared(named), str(file))
        _fsync(file)
    # Written last: a folder with checkpoint.json has every tensor file it names.
    _write_synced(partial / JSON_FILE, json.dumps({"format": FORMAT, "checkpoint": tree}))
    previous = target.with_name(target.name + PREVIOUS_SUFFIX)
    if target.exists():
        _remove(previous)
        os.replace(target, previous)
    os.replace(partial, target)
    _remove(previous)
    _fsync_dir(target.parent)


def load_folder(folder: Path) -> dict[str, Any]:
    """The checkpoint dict saved by ``save_folder``, read with JSON and safetensors only."""
    meta = read_meta(folder)
    groups = {path.stem: load_file(str(path), device="cpu") for path in folder.glob("*.safetensors")}
    return {key: _decode(value, groups, f"{folder}:{key}") for key, value in meta["checkpoint"].items()}


def read_meta(folder: Path) -> dict[str, Any]:
    """``checkpoint.json`` of a checkpoint folder; a pickle file of an older version or a broken folder is refused."""
    if folder.is_file():
        raise UnimodalError(f"{folder} is a single-file (pickle) checkpoint of an older unimodal, which is no longer "
                            f"loaded: delete it to start over, or run with resume=false")
    try:
        meta = json.loads((folder / JSON_FILE).read_text())
    except (OSError, ValueError) as err:
        raise UnimodalError(f"{folder} is not a readable checkpoint ({type(err).__name__}: {err}); delete it to "
                            f"start over, or run with resume=false") from None
    if meta.get("format") != FORMAT:
        raise UnimodalError(f"{folder / JSON_FILE} has format {meta.get('format')!r}, not {FORMAT!r}; delete it "
                            f"to start over, or run with resume=false")
    return meta


def recover_checkpoint(target: Path) -> None:
    """Clean up after a kill during ``save_folder``: drop a partial folder, restore a moved-away previous one."""
    _remove(target.with_name(target.name + PARTIAL_SUFFIX))
    previous = target.with_name(target.name + PREVIOUS_SUFFIX)
    if previous.exists() and not target.exists():
        os.replace(previous, target)
    _remove(previous)


def _encode(value: Any, where: str, group: str, tensors: dict[str, dict[str, torch.Tensor]]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.Tensor, np.ndarray)):
        named = tensors.setdefault(group, {})
        if where in named:  # e.g. a key "a.b" beside a key "a" holding "b"
            raise UnimodalError(f"checkpoint entry {where} is named twice; rename one of the two keys")
        if isinstance(value, torch.Tensor):
            named[where] = value
            return {"__tensor__": [group, where]}
        named[where] = torch.from_numpy(np.ascontiguousarray(value))
        return {"__ndarray__": [group, where]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{where}.{i}", group, tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in MARKERS for k in value):
            return {k: _encode(v, f"{where}.{k}", group, tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, f"{where}.<key {k}>", group, tensors),
                               _encode(v, f"{where}.{k}", group, tensors)] for k, v in value.items()]}
    raise UnimodalError(f"checkpoint entry {where} is a {type(value).__name__}, which a safetensors + JSON "
                        f"checkpoint cannot hold; store tensors, numbers, strings, lists or dicts there")


def _decode(value: Any, groups: dict[str, dict[str, torch.Tensor]], where: str) -> Any:
    if isinstance(value, list):
        return [_decode(v, groups, where) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in MARKERS:
        tag, payload = next(iter(value.items()))
        if tag in ("__tensor__", "__ndarray__"):
            group, name = payload
            try:
                tensor = groups[group][name]
            except KeyError:
                raise UnimodalError(f"{where}: tensor {name!r} is missing from {group}.safetensors; delete the "
                                    f"checkpoint to start over, or run with resume=false") from None
            return tensor.numpy() if tag == "__ndarray__" else tensor
        if tag == "__bytes__":
            return base64.b64decode(payload)
        if tag == "__tuple__":
            return tuple(_decode(v, groups, where) for v in payload)
        return {_decode(k, groups, where): _decode(v, groups, where) for k, v in payload}
    return {k: _decode(v, groups, where) for k, v in value.items()}


def _unshared(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, and no two tensors on one storage (tied weights): safetensors refuses shared memory."""
    out, seen = {}, set()
    for name, tensor in named.items():
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        out[name] = tensor
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _write_synced(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_dir(path: Path) -> None:
    # The renames are durable once the folder holding them is synced (POSIX; skipped where unsupported).
    try:
        _fsync(path)
    except OSError:
        pass
