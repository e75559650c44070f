"""A small image autoencoder with a continuous spatial latent, in the style of the latent-diffusion (LDM/VQGAN)
autoencoders, scaled to 16-64 px: GroupNorm + SiLU residual blocks, stride-2 convs down, nearest-neighbour
upsampling + conv up, and a KL-regularised latent of `latent_channels` x `latent_resolution`^2 (the encoder emits a
mean and a log-variance).

The decoder takes the two knobs of the Decoupled Autoencoder's weaker stage-1 decoder: `width` scales every
channel count, and `dropout` puts a `Dropout2d(p)` after every residual block (p = 0.4 in the one public
implementation of the idea).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, c), c)


class GNResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, 1, 1),
                                  _norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


def _levels(resolution: int, latent_resolution: int) -> int:
    n = int(round(math.log2(resolution / latent_resolution)))
    if latent_resolution < 1 or n < 1 or latent_resolution * 2 ** n != resolution:
        raise ValueError(f"latent_resolution {latent_resolution} must be the image resolution {resolution} divided "
                         f"by a power of two (at least 2)")
    return n


def _widths(base: int, levels: int, width: float = 1.0) -> list[int]:
    """Channels per level, from full resolution down: base, 2*base, 4*base, ... capped at 4*base."""
    return [max(8, int(round(base * min(2 ** i, 4) * width))) for i in range(levels + 1)]


class AEEncoder(nn.Module):
    def __init__(self, channels: int, resolution: int, latent_channels: int, latent_resolution: int, base: int = 64):
        super().__init__()
        levels = _levels(resolution, latent_resolution)
        w = _widths(base, levels)
        layers: list[nn.Module] = [nn.Conv2d(channels, w[0], 3, 1, 1)]
        for i in range(levels):
            layers += [GNResBlock(w[i], w[i]), nn.Conv2d(w[i], w[i + 1], 3, 2, 1)]
        layers += [GNResBlock(w[-1], w[-1]), _norm(w[-1]), nn.SiLU(), nn.Conv2d(w[-1], 2 * latent_channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the latent posterior, each (B, latent_channels, r, r)."""
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)


class AEDecoder(nn.Module):
    def __init__(self, channels: int, resolution: int, latent_channels: int, latent_resolution: int, base: int = 64,
                 width: float = 1.0, dropout: float = 0.0):
        super().__init__()
        levels = _levels(resolution, latent_resolution)
        w = _widths(base, levels, width)

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [GNResBlock(c_in, c_out)] + ([nn.Dropout2d(dropout)] if dropout > 0 else [])

        layers: list[nn.Module] = [nn.Conv2d(latent_channels, w[-1], 3, 1, 1), *block(w[-1], w[-1])]
        for i in reversed(range(levels)):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w[i + 1], w[i], 3, 1, 1),
                       *block(w[i], w[i])]
        layers += [_norm(w[0]), nn.SiLU(), nn.Conv2d(w[0], channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # no tanh (as the DeAE decoder); clamped to [-1, 1] when sampling


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over latent elements."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)
