"""Counter-based randomness: a generator is a pure function of (seed, step, stream), so resuming a run or
re-training a cached network needs no saved RNG state."""
from __future__ import annotations

import torch


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, step, stream): resuming needs no saved RNG state."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step * 7919 + stream * 104_729) % (2**63 - 1))
    return g
