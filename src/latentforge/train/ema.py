"""Exponential moving average of weights, with the warm-up the DeAE reference gets from ema-pytorch:
decay(step) = min(max_decay, 1 - (1 + step - start) ** -power). Short runs average over a short horizon, long runs
approach max_decay. Buffers (batch-norm statistics) are copied, not averaged. Stateless apart from the weights, so
resuming is exact."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, max_decay: float, power: float, start: int, every: int):
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.max_decay, self.power, self.start, self.every = max_decay, power, start, max(1, every)

    def decay(self, step: int) -> float:
        return min(self.max_decay, 1.0 - (1.0 + max(0, step - self.start - 1)) ** -self.power)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Call after optimizer step number `step` (1-based)."""
        if step <= self.start:
            self.model.load_state_dict(model.state_dict())
            return
        if step % self.every:
            return
        d = self.decay(step)
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
