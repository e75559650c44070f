"""What every generator input distribution provides: `fit` on data where it depends on data, `sample(n, generator)`
for new latents, `describe()` for the run record, and its fitted state as tensors (so a GAN run samples from its
folder alone, without the data or the network the latent came from).

Data-dependent latents share one pipeline: raw features -> `Normalizer` (none / standardize / whiten) -> a sampler
that makes *new* points -> `fixed_projection` to the generator's input size.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal

import torch


class LatentSource(ABC):
    kind: str
    dim: int  # the size of what sample() returns: the generator's input

    def fit(self, *args: Any, **kwargs: Any) -> None:
        """Fit whatever depends on data (no-op for fixed distributions)."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, dim) float32 on the CPU, a pure function of the generator's state."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what fit() computed."""


class Normalizer:
    """Standardize (per-dimension zero mean, unit variance) or whiten (PCA: zero mean, identity covariance), so
    that samplers, noise scales and generators see latents of one scale whatever network produced them."""

    def __init__(self, mode: Literal["none", "standardize", "whiten"], eps: float = 1e-5):
        self.mode, self.eps = mode, eps
        self.mean: torch.Tensor | None = None
        self.matrix: torch.Tensor | None = None  # x_norm = (x - mean) @ matrix

    def fit(self, x: torch.Tensor) -> "Normalizer":
        x = x.double()
        d = x.shape[1]
        self.mean = x.mean(0) if self.mode != "none" else torch.zeros(d, dtype=torch.float64)
        if self.mode == "standardize":
            self.matrix = torch.diag(1.0 / (x.std(0) + self.eps))
        elif self.mode == "whiten":
            cov = torch.cov(x.T)
            evals, evecs = torch.linalg.eigh(cov)
            self.matrix = evecs / (evals.clamp_min(0) + self.eps).sqrt()
        else:
            self.matrix = torch.eye(d, dtype=torch.float64)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.mean) @ self.matrix).float()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "matrix": self.matrix}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.mean, self.matrix = state["mean"].double(), state["matrix"].double()


def fixed_projection(d_in: int, d_out: int, seed: int) -> torch.Tensor:
    """A fixed (d_in, d_out) matrix with orthonormal rows (d_in <= d_out: an isometric embedding, nothing is lost)
    or orthonormal columns (d_in > d_out: an orthogonal projection), a pure function of (d_in, d_out, seed)."""
    g = torch.Generator().manual_seed(1_234_567 + seed)
    q, _ = torch.linalg.qr(torch.randn(max(d_in, d_out), max(d_in, d_out), generator=g, dtype=torch.float64))
    return q[:d_in, :d_out].float()
