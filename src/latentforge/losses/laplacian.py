"""Laplacian-pyramid L1 loss (Lap1, Bojanowski et al. 2018, "Optimizing the Latent Space of Generative Networks").

The offline perceptual term: it needs no pretrained network, weighs edges and coarse structure alike and so blurs
less than plain MSE. GLO, DeAE's closest relative (a generator fitted to fixed per-example codes), uses it for the
same reason. Each level's mean absolute difference counts equally (GLO's 4^j factor on per-level sums).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


class LaplacianPyramidLoss(nn.Module):
    name = "laplacian"

    def __init__(self, levels: int = 3):
        super().__init__()
        self.levels = levels
        self.register_buffer("kernel", torch.outer(_BINOMIAL, _BINOMIAL)[None, None], persistent=False)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(x.dtype).expand(c, 1, 5, 5)
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        bands = []
        for _ in range(self.levels):
            if min(x.shape[-2:]) < 4:
                break
            low = self._blur(x)
            bands.append(x - low)
            x = F.avg_pool2d(low, 2)
        bands.append(x)
        return bands

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example loss, shape (B,)."""
        return sum((a - b).abs().flatten(1).mean(1) for a, b in zip(self.pyramid(x), self.pyramid(y)))
