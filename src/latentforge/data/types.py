"""Plain containers shared by every loader: decoded images as uint8 arrays plus their labels and groups."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawImages:
    """Decoded images before resizing.

    images: uint8, shape (N, H, W, C) with C in {1, 3}.
    labels: int64 class ids, shape (N,), -1 where unknown.
    groups: one key per image; images that share a key are near-duplicates (e.g. skin-tone variants of one emoji)
        and always land in the same train/test split.
    """

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] not in (1, 3) or self.images.dtype != np.uint8:
            raise ValueError(f"RawImages.images must be uint8 (N,H,W,1|3), got {self.images.dtype} {self.images.shape}")
        n = len(self.images)
        if len(self.labels) != n or len(self.groups) != n:
            raise ValueError("RawImages: images, labels and groups must have the same length")
