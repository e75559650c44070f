"""Peak memory of this process, the figure a user needs to size a machine: GPU allocations on CUDA, resident set
size on the CPU (which includes the interpreter, torch and the dataset, not only the model)."""
from __future__ import annotations

import sys

import torch


def peak_memory_mib(device: torch.device) -> tuple[float | None, str]:
    """(MiB, what was measured). None where the platform offers no reading."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    try:
        import resource
    except ImportError:  # Windows
        return None, "unavailable"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "peak RSS of the process"  # bytes on macOS, KiB else
