"""Data-parallel training under `torchrun`, without changing any TrainTask (the nanoGPT/EDM recipe, adapted).

- Rank, world size and local rank come from the environment torchrun sets; gloo on CPU, nccl on CUDA, one device
  per local rank.
- Every rank walks the same (seed, epoch) permutation and takes its share of each global batch, so data order,
  DeAE patterns (tied to the global example index) and checkpoints do not depend on the world size: a run resumes
  under another one. Tasks draw per-example randomness for the global batch and keep their rows
  (`Batch.draw`), so N processes compute what one process would with the same global batch.
- Gradients are averaged across ranks after backward and before clipping (`train/optimizer_step.py`, the one
  place every model's step goes through), so clipping and the logged gradient norm see the global batch's
  gradient. No overlap of communication with backward: plain DDP would overlap, but it needs the task to call
  the wrapped module, and these tasks own their modules.
- Rank 0 alone writes (logs, grids, checkpoints, run.json); a barrier follows every checkpoint. Logged scalars
  are averaged over ranks.
- Batch norm normalises over each rank's shard, unless `train.sync_bn` converts it to SyncBatchNorm (CUDA only).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from latentforge.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_world = World()


def world() -> World:
    return _world


def setup(device_type: str | None = None) -> World:
    """Join the process group torchrun describes in the environment (once); a plain launch is a world of one."""
    global _world
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or _world.enabled:
        return _world
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = (device_type or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    _world = World(rank, size, local)
    return _world


def barrier() -> None:
    if _world.enabled:
        dist.barrier()


def shard(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(this rank's dataset indices, their rows in the global batch): every world-size-th example."""
    rows = torch.arange(_world.rank, len(index), _world.size)
    return index[rows], rows


def check_batch(batch_size: int) -> None:
    if _world.enabled and batch_size % _world.size:
        raise ConfigError(f"train.batch_size {batch_size} does not split evenly over {_world.size} processes")


def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace each parameter's gradient by its mean over the ranks (one all-reduce of the flattened gradients).
    Called by `optimizer_step` between backward and clipping."""
    if not _world.enabled or not params:
        return
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= _world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_modules(modules: dict[str, nn.Module]) -> None:
    """Every rank starts from rank 0's weights and buffers (they agree already when seeds do; this makes sure)."""
    if not _world.enabled:
        return
    for m in modules.values():
        for t in list(m.parameters()) + list(m.buffers()):
            dist.broadcast(t.data, src=0)


def average_logs(logs: dict[str, float], device: torch.device) -> dict[str, float]:
    """The mean of each logged scalar over ranks (every rank logs the same keys on a step)."""
    if not _world.enabled or not logs:
        return logs
    keys = sorted(logs)
    t = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / _world.size for k, v in zip(keys, t.tolist())}


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on one (e.g. rank 0's clock says the time budget is spent)."""
    if not _world.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def convert_sync_batchnorm(modules: dict[str, nn.Module], device: torch.device) -> None:
    """SyncBatchNorm in place of BatchNorm (parameters are kept, so optimizers need no rebuild). CUDA only."""
    if not _world.enabled:
        return
    if device.type != "cuda":
        raise ConfigError("train.sync_bn needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel)")
    for name, m in modules.items():
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(m)
        if converted is not m:
            raise ConfigError(f"module {name} is itself a batch norm: cannot convert it in place")
