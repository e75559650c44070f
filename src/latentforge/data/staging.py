"""Where the training set lives while a GPU trains on it (`train.data_on_device`).

A 32x32 colour set of 50k images is 150 MiB as uint8: on a GPU with tens of GiB it costs nothing to keep there, and
then a batch is one gather on the device instead of a gather, a host-to-device copy and a conversion per step. When
it does not fit (or the policy says no), batches travel as uint8 through pinned memory (`protocol.send`).
"""
from __future__ import annotations

import torch

from latentforge.data.protocol import TrainingData

DEVICE_SHARE = 0.25  # at most this share of the free GPU memory goes to the data, the rest to the model


def fits_on_device(nbytes: int, free_bytes: int, share: float = DEVICE_SHARE) -> bool:
    return nbytes <= share * free_bytes


def stage(data: TrainingData, device: torch.device, policy: str = "auto",
          free_bytes: int | None = None) -> tuple[TrainingData, str]:
    """(the data the loader should draw from, where it lives, in words for run.json). `free_bytes` overrides the
    query of the device's free memory (tests)."""
    if device.type != "cuda":
        return data, "host"
    movable = hasattr(data, "to_device") and hasattr(data, "nbytes")
    if policy == "no" or not movable:
        return data, "host (pinned batches)"
    if policy == "auto":
        free = torch.cuda.mem_get_info(device)[0] if free_bytes is None else free_bytes
        if not fits_on_device(data.nbytes, free):
            mib = data.nbytes / 2**20
            return data, f"host (pinned batches; {mib:.0f} MiB is over a quarter of the free GPU memory)"
    return data.to_device(device), "device"
