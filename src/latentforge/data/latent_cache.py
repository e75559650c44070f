"""Latents of a dataset under a trained encoder, computed once and cached, so a prior trains on a table of latents
instead of running the encoder on images at every step.

The cache key is the encoder's checkpoint file hash + the module used (and whether its EMA) + the images'
fingerprint: retraining the encoder, or changing the images, gives a new entry, never a stale one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from latentforge.data.dataset import ImageDataset
from latentforge.data.fetch import default_cache_dir
from latentforge.data.protocol import send
from latentforge.utils.io import atomic_write_bytes


@dataclass
class LatentDataset:
    """Latents (N, C, h, w), float32, in memory; index i is image i of the dataset they were encoded from."""

    latents: torch.Tensor
    name: str
    split: str
    fingerprint: str
    source: dict[str, Any] = field(default_factory=dict)  # the encoder (resolved run reference) and the images
    kind: str = "latents"

    def __len__(self) -> int:
        return self.latents.shape[0]

    @property
    def channels(self) -> int:
        return self.latents.shape[1]

    @property
    def resolution(self) -> int:
        return self.latents.shape[-1]

    def get(self, index: torch.Tensor | np.ndarray | list[int], device: torch.device | None = None) -> torch.Tensor:
        return send(self.latents[torch.as_tensor(index, dtype=torch.long, device=self.latents.device)], device)

    @property
    def nbytes(self) -> int:
        return self.latents.numel() * self.latents.element_size()

    def to_device(self, device: torch.device) -> "LatentDataset":
        return dataclasses.replace(self, latents=self.latents.to(device))

    def std(self) -> float:
        """Standard deviation over all latent values: a prior divides by it so its data has unit scale (the
        `scale_factor` of latent diffusion, recomputed for every encoder)."""
        return float(self.latents.float().std())

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "split": self.split, "count": len(self),
                "channels": self.channels, "resolution": self.resolution, "fingerprint": self.fingerprint,
                "std": round(self.std(), 6), "source": self.source}


def latent_cache_key(encoder_sha256: str, module: str, ema: bool, images: ImageDataset) -> str:
    parts = ["latents-v1", encoder_sha256, module, bool(ema), images.fingerprint]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def cached_latents(images: ImageDataset, encode: Callable[[torch.Tensor], torch.Tensor], encoder: dict[str, Any],
                   cache_dir: Path | None = None, batch_size: int = 256) -> LatentDataset:
    """The latents of every image under `encode`, from the cache when this encoder already saw these images.

    `encoder` is a resolved run reference (run, module, step, ema, sha256 of its checkpoint file)."""
    key = latent_cache_key(encoder["sha256"], encoder["module"], encoder.get("ema", False), images)
    path = (Path(cache_dir) if cache_dir else default_cache_dir()) / "latents" / f"{key}.safetensors"
    source = {"encoder": encoder, "images": {"name": images.name, "split": images.split,
                                              "fingerprint": images.fingerprint, "count": len(images)}}
    latents = _read(path, len(images))
    if latents is None:
        latents = torch.cat([encode(images.get(torch.arange(i, min(i + batch_size, len(images)))))
                             for i in range(0, len(images), batch_size)]).float().contiguous()
        _write(path, latents, source)
    return LatentDataset(latents, images.name, images.split, key, source)


def _read(path: Path, count: int) -> torch.Tensor | None:
    """A cache entry, or None when absent or unreadable (a broken entry is recomputed, not trusted)."""
    if not path.is_file():
        return None
    try:
        latents = load_file(str(path))["latents"]
    except (SafetensorError, OSError, KeyError):
        return None
    return latents if latents.shape[0] == count else None


def _write(path: Path, latents: torch.Tensor, source: dict[str, Any]) -> None:
    atomic_write_bytes(path, save({"latents": latents}, metadata={"source": json.dumps(source)}))
