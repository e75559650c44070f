"""Checkpoints as one safetensors file: every tensor of a nested state tree, plus the tree's JSON skeleton in the
file's metadata. A sidecar JSON repeats step and config for people and tools. Writes are atomic (tmp + rename),
so an interrupted save never leaves a half-written checkpoint behind, and the metadata carries a sha256 of every
tensor's bytes, verified on load, so a file damaged later (a bad disk, a partial copy) is refused, not trained on."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentforge.errors import CheckpointError
from latentforge.utils.io import umask_mode

FORMAT = "latentforge-checkpoint-v1"


class CorruptCheckpointError(CheckpointError):
    """The file is damaged (truncated, bit-flipped): an older checkpoint of the run may still be good."""


def _flatten(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _flatten(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _flatten(v, f"{path}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint value of type {type(obj).__name__} at {path}")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any], info: dict[str, Any]) -> None:
    """`state` may nest dicts/lists of tensors and plain values; `info` (JSON) goes to the sidecar and metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    meta = {"format": FORMAT, "skeleton": json.dumps(skeleton), "info": json.dumps(info),
            "sha256": tensor_digest(tensors)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".safetensors.tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    side = path.with_suffix(".json")
    tmp_side = side.with_suffix(".json.tmp")
    tmp_side.write_text(json.dumps(info, indent=2))
    os.replace(tmp_side, side)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (state tree, info). Raises CheckpointError on a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptCheckpointError(f"checkpoint {path} is unreadable or corrupt: {e}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a latentforge checkpoint (format {meta.get('format')!r})")
    if "sha256" in meta and tensor_digest(tensors) != meta["sha256"]:  # files written before 0.1 carry none
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt: its tensors do not match their checksum")
    return _unflatten(json.loads(meta["skeleton"]), tensors), json.loads(meta["info"])
