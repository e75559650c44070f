"""What a model contributes to training: its modules, optimizers and one step. The Trainer does the rest.

Every model (DeAE now; GANs, decoupled autoencoders and priors later) is a TrainTask, so all of them share one loop,
one run-folder layout, checkpointing, resume, logging and sample grids.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latentforge.config import RunConfig
from latentforge.train.ema import EMA
from latentforge.utils.rng import step_generator  # noqa: F401  (tasks import it from here)


@dataclass
class Batch:
    images: torch.Tensor  # float in [-1, 1], on the task's device
    index: torch.Tensor  # dataset indices (int64, CPU): per-example identities such as DeAE patterns
    epoch: int
    step: int  # 0-based index of the optimizer step this batch feeds


class TrainTask(ABC):
    name: str = "task"
    non_structural_keys: frozenset[str] = frozenset()  # model config keys that may change on resume

    def __init__(self, cfg: RunConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.emas: dict[str, EMA] = {}

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Trained networks by name; their EMA copies live in self.emas under the same names."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    @abstractmethod
    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step; returns scalars to log (the first, 'loss', drives the progress bar)."""

    @abstractmethod
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n new images in [-1, 1], reproducible from seed."""

    def describe(self) -> dict[str, Any]:
        """Facts about this task worth recording in run.json (parameter counts, loss networks)."""
        return {"parameters": {k: sum(p.numel() for p in m.parameters()) for k, m in self.modules().items()}}

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "ema": {k: e.model.state_dict() for k, e in self.emas.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
        }

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, e in self.emas.items():
            e.model.load_state_dict(state["ema"][k])
        if not weights_only:
            for k, o in self.optimizers().items():
                o.load_state_dict(state["optimizers"][k])
