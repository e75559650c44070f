"""The reconstruction objective: a pixel term plus a perceptual term, chosen by config and named in the run."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from latentforge.config import LossConfig
from latentforge.errors import ConfigError


class ReconstructionLoss(nn.Module):
    """weight_p * pixel(x, y) + weight_q * perceptual(x, y), per example. `describe()` says what was used."""

    def __init__(self, cfg: LossConfig, perceptual: nn.Module | None, perceptual_name: str):
        super().__init__()
        self.cfg = cfg
        self.perceptual = perceptual
        self.perceptual_name = perceptual_name
        if cfg.pixel == "none" and perceptual is None:
            raise ConfigError("loss.pixel and loss.perceptual are both 'none': nothing to train on")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(pred.shape[0])
        if self.cfg.pixel != "none":
            diff = (pred - target).flatten(1)
            pix = diff.pow(2).mean(1) if self.cfg.pixel == "mse" else diff.abs().mean(1)
            terms[self.cfg.pixel] = pix
            total = total + self.cfg.pixel_weight * pix
        if self.perceptual is not None:
            per = self.perceptual(pred.float(), target.float()).reshape(pred.shape[0])
            terms[self.perceptual_name] = per
            total = total + self.cfg.perceptual_weight * per
        return total, terms

    def describe(self) -> dict[str, object]:
        return {
            "pixel": self.cfg.pixel,
            "pixel_weight": self.cfg.pixel_weight,
            "perceptual": self.perceptual_name,
            "perceptual_weight": self.cfg.perceptual_weight if self.perceptual is not None else 0.0,
            "perceptual_weights_fingerprint": getattr(self.perceptual, "weights_fingerprint", None),
        }


def build_reconstruction_loss(cfg: LossConfig, channels: int) -> ReconstructionLoss:
    """Resolve `auto`: LPIPS (the paper's choice) when its weights are on disk, else the Laplacian pyramid loss."""
    from latentforge.losses.laplacian import LaplacianPyramidLoss

    kind = cfg.perceptual
    if kind == "auto":
        from latentforge.losses.lpips import lpips_available

        kind = "lpips" if lpips_available() else "laplacian"
        if kind == "laplacian":
            warnings.warn(
                "LPIPS weights not found locally: using the offline Laplacian-pyramid perceptual term "
                "(set LATENTFORGE_LPIPS_BACKBONE / LATENTFORGE_LPIPS_HEADS to use LPIPS)", stacklevel=2)
    if kind == "none":
        return ReconstructionLoss(cfg, None, "none")
    if kind == "laplacian":
        return ReconstructionLoss(cfg, LaplacianPyramidLoss(cfg.laplacian_levels), "laplacian")
    from latentforge.losses.lpips import load_lpips

    net = load_lpips(allow_download=cfg.lpips_allow_download, resize_to=cfg.lpips_resize)
    perceptual: nn.Module = net if channels == 3 else _GrayToRGB(net)
    return ReconstructionLoss(cfg, perceptual, "lpips-alex")


class _GrayToRGB(nn.Module):
    """LPIPS expects RGB: repeat a single channel."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.weights_fingerprint = getattr(net, "weights_fingerprint", None)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1))
