"""Cheap pixel-space diagnostics that need no feature network: reconstruction error, nearest-neighbour distance to
the training set (memorisation), and diversity. Feature-space metrics (FID, KID, precision/recall) live beside
these and always name their network; these are labelled 'pixel'."""
from __future__ import annotations

import torch


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image RMS distance in [0, 1] pixel units between matched (N, C, H, W) tensors in [-1, 1]."""
    return ((a - b) / 2).flatten(1).pow(2).mean(1).sqrt()


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 512
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image, the RMS distance ([0, 1] pixel units) to its nearest reference image, and its index."""
    q = (queries.flatten(1).float() / 2)
    r = (reference.flatten(1).float() / 2)
    r_sq = r.pow(2).sum(1)
    dists, idx = [], []
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk]
        d2 = (qc.pow(2).sum(1, keepdim=True) - 2 * qc @ r.T + r_sq[None]).clamp_min(0)
        m, i = d2.min(1)
        dists.append((m / q.shape[1]).sqrt())
        idx.append(i)
    return torch.cat(dists), torch.cat(idx)


def mean_pairwise_distance(images: torch.Tensor, max_pairs: int = 4096) -> float:
    """Average RMS distance between distinct images: a collapse detector (0 = all identical)."""
    n = len(images)
    if n < 2:
        return 0.0
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, n, (max_pairs,), generator=g)
    b = (a + torch.randint(1, n, (max_pairs,), generator=g)) % n
    return float(rms_distance(images[a], images[b]).mean())
