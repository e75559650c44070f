"""What every feature network used for evaluation provides: a name and weights hash (so every number says which
network produced it), pooled features for FID/KID/precision-recall, and class logits for the Inception Score."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Features:
    pool: np.ndarray  # (N, D) float64: the embedding FID/KID/PRDC are computed on
    logits: np.ndarray | None  # (N, K) float64 class logits for the Inception Score, None if the net has no head


class FeatureExtractor(ABC):
    name: str  # e.g. "inception-v3-fid" or "lf-digits-classifier"
    fingerprint: str  # first 12 hex of sha256 of the weights

    @property
    def label(self) -> str:
        """How tables name this network: never mix two labels in one table."""
        return f"{self.name}@{self.fingerprint}"

    @abstractmethod
    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images in [-1, 1], (B, C, H, W), any C in {1, 3} -> (pool (B, D), logits (B, K) or None)."""

    @torch.no_grad()
    def extract(self, images: torch.Tensor, batch_size: int = 200, device: str | torch.device = "cpu") -> Features:
        pools, logits = [], []
        for s in range(0, len(images), batch_size):
            p, lg = self._forward(images[s:s + batch_size].to(device).float())
            pools.append(p.double().cpu())
            if lg is not None:
                logits.append(lg.double().cpu())
        return Features(torch.cat(pools).numpy(), torch.cat(logits).numpy() if logits else None)
