"""Which batch-norm statistics a generator uses when sampling: an explicit, documented choice for every model
with batch norm in its generator (the DeAE reference samples with batch statistics)."""
from __future__ import annotations

import contextlib
from typing import Iterator, Literal

from torch import nn

BNMode = Literal["batch", "running"]


@contextlib.contextmanager
def bn_mode(net: nn.Module, mode: BNMode) -> Iterator[None]:
    """'batch': normalise with each batch's statistics, leaving running stats untouched; 'running': eval mode
    with the running statistics."""
    was_training = net.training
    saved = [b.clone() for b in net.buffers()] if mode == "batch" else None
    net.train(mode == "batch")
    try:
        yield
    finally:
        if saved is not None:
            for b, s in zip(net.buffers(), saved):
                b.copy_(s)
        net.train(was_training)
