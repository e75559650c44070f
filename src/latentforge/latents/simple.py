"""Fixed latent distributions: the usual N(0, I), and a uniform of the same per-dimension variance."""
from __future__ import annotations

import math

import torch

from latentforge.latents.base import LatentSource


class GaussianLatent(LatentSource):
    kind = "gaussian"

    def __init__(self, dim: int):
        self.dim = dim

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.dim, generator=generator)


class UniformLatent(LatentSource):
    """U[-sqrt(3), sqrt(3)]^dim: unit variance, like the Gaussian, but bounded."""

    kind = "uniform"

    def __init__(self, dim: int):
        self.dim = dim

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return (torch.rand(n, self.dim, generator=generator) * 2 - 1) * math.sqrt(3.0)
