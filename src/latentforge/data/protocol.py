"""What the training loop needs from its data, whatever the data is: images from a folder, or latents that an
encoder made from them (a prior trains on those). Two implementations: `ImageDataset` and `LatentDataset`."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class TrainingData(Protocol):
    name: str
    split: str
    fingerprint: str  # keys every cache of anything computed from this data

    @property
    def kind(self) -> str:
        """'images' or 'latents': what one example is, in words for the start line and run.json."""

    @property
    def channels(self) -> int: ...

    @property
    def resolution(self) -> int: ...

    def __len__(self) -> int: ...

    def get(self, index: torch.Tensor | np.ndarray | list[int], device: torch.device | None = None) -> torch.Tensor:
        """A float batch (N, C, H, W): images in [-1, 1], or latents as the encoder gave them; on `device` (default:
        where the data lives)."""

    def describe(self) -> dict[str, Any]: ...


def images_fingerprint(described: dict[str, Any]) -> str | None:
    """The fingerprint of the images behind a dataset's `describe()` record: its own, or for latents the one of the
    images they were encoded from (so two runs can be checked to have learned the same images)."""
    if described.get("kind") == "latents":
        return described.get("source", {}).get("images", {}).get("fingerprint")
    return described.get("fingerprint")


def send(batch: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    """`batch` on `device`: from host to GPU through pinned memory and without blocking the host, so the copy
    overlaps the previous step's kernels."""
    if device is None or batch.device == device:
        return batch
    if device.type == "cuda" and batch.device.type == "cpu":
        batch = batch.pin_memory()
    return batch.to(device, non_blocking=True)
