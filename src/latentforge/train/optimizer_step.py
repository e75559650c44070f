"""The optimizer step, done in one place for every model: a task computes a loss, `optimizer_step` does the rest.

Order, and why:
1. the learning rate and weight decay of this step, from the config (a resumed run follows the config in its
   folder, not the values pickled with the optimizer);
2. zero_grad, backward;
3. under torchrun, the gradient averaged over the processes (one all-reduce of the flattened gradients);
4. clipping of that averaged gradient to `train.grad_clip`, so N processes clip what one process would clip,
   and the logged `grad_norm` is the norm of the global batch's gradient;
5. the optimizer step, then the EMA copies that follow these weights.
A model with several optimizers (a GAN's G and D, a DAE's two stages) calls it once per optimizer it steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from latentforge.config import OptimConfig, TrainConfig
from latentforge.train import distributed
from latentforge.train.ema import EMA


@dataclass
class Update:
    """One optimizer and what its step needs: the config its schedule follows, a learning-rate scale per param
    group (None: 1 for every group), and the EMA copies refreshed after it, each with the module it follows."""

    optimizer: torch.optim.Optimizer
    config: OptimConfig
    lr_scales: tuple[float, ...] | None = None
    emas: list[tuple[EMA, nn.Module]] = field(default_factory=list)


def apply_schedule(opt: torch.optim.Optimizer, oc: OptimConfig, step: int, total_steps: int,
                   lr_scales: tuple[float, ...] | None = None) -> tuple[float, float]:
    """Set every param group's learning rate (config lr x the group's scale x warm-up) and weight decay (ramp)
    for this step. Returns (lr factor, weight decay)."""
    factor, wd = oc.lr_factor_at(step), oc.weight_decay_at(step, total_steps)
    scales = lr_scales or (1.0,) * len(opt.param_groups)
    for group, scale in zip(opt.param_groups, scales, strict=True):
        group["lr"], group["weight_decay"] = oc.lr * scale * factor, wd
    return factor, wd


def optimizer_step(update: Update, loss: torch.Tensor, step: int, train: TrainConfig) -> dict[str, float]:
    """Steps 1-5 above for 0-based optimizer step `step`. Returns `grad_norm` (the averaged gradient's norm
    before clipping) when `train.grad_clip` is set, else nothing."""
    opt = update.optimizer
    apply_schedule(opt, update.config, step, train.steps, update.lr_scales)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
    distributed.average_gradients(params)
    logs = {}
    if train.grad_clip:
        logs["grad_norm"] = float(nn.utils.clip_grad_norm_(params, train.grad_clip))
    opt.step()
    for ema, module in update.emas:
        ema.update(module, step + 1)
    return logs
