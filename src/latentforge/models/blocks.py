"""Small building blocks shared by decoders and generators."""
from __future__ import annotations

import math

import torch
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """batch | group (32 groups or fewer, per-example statistics) | none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}: use 'batch', 'group' or 'none'")


def conv_norm_act(c_in: int, c_out: int, k: int, s: int, p: int, norm: str = "batch") -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, s, p), norm_layer(norm, c_out), nn.LeakyReLU(0.01)]


def conv_bn_act(c_in: int, c_out: int, k: int, s: int, p: int) -> list[nn.Module]:
    return conv_norm_act(c_in, c_out, k, s, p, "batch")


class ResBlock(nn.Module):
    """Two 3x3 convs with a skip; no activation after the sum (as in the DeAE reference)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_act(channels, channels, 3, 1, 1),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class BottleneckBlock(nn.Module):
    """1x1 reduce by r, 3x3, 1x1 expand: residual capacity at wide layers without the 3x3 cost."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        mid = max(1, channels // reduction)
        self.body = nn.Sequential(
            *conv_bn_act(channels, mid, 1, 1, 0),
            *conv_bn_act(mid, mid, 3, 1, 1),
            nn.Conv2d(mid, channels, 1, 1, 0),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SinusoidalEmbedding(nn.Module):
    """Transformer-style embedding of a scalar (e.g. the shift amount) so an MLP can condition on it smoothly."""

    def __init__(self, dim: int):
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError("sinusoidal embedding dim must be even and >= 4")
        half = dim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = x.float()[:, None] * self.freqs[None, :]
        return torch.cat([args.sin(), args.cos()], dim=-1)
