"""Cheap pixel-space diagnostics that need no feature network: reconstruction error, nearest-neighbour distance to
the training set (memorisation), and diversity. Feature-space metrics (FID, KID, precision/recall) live beside
these and always name their network; these are labelled 'pixel'."""
from __future__ import annotations

import torch

from latentforge.metrics.memorisation import knn, pixel_rms


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image RMS distance in [0, 1] pixel units between matched (N, C, H, W) tensors in [-1, 1]."""
    return ((a - b) / 2).flatten(1).pow(2).mean(1).sqrt()


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image, the RMS distance ([0, 1] pixel units) to its nearest reference image, and its index."""
    d, i = knn(queries, reference, 1)
    return pixel_rms(d[:, 0], queries[0].numel()).float(), i[:, 0]


def mean_pairwise_distance(images: torch.Tensor, max_pairs: int = 4096) -> float:
    """Average RMS distance between distinct images: a collapse detector (0 = all identical)."""
    n = len(images)
    if n < 2:
        return 0.0
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, n, (max_pairs,), generator=g)
    b = (a + torch.randint(1, n, (max_pairs,), generator=g)) % n
    return float(rms_distance(images[a], images[b]).mean())
