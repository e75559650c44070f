"""Image grids and PNG writing with Pillow (no torchvision)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float (N, C, H, W) -> uint8 (N, H, W, C)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, pad_value: int = 255,
              min_tile: int = 64) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> one uint8 (H', W', C) mosaic, `nrow` images per row (default: square).

    Images smaller than `min_tile` pixels are enlarged by a whole factor (nearest neighbour: every pixel becomes a
    square block, nothing is smoothed), so a 16-px sample is visible in a viewer or on a page."""
    arr = to_uint8(images)
    scale = max(1, math.ceil(min_tile / max(arr.shape[1:3])))
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = arr.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    return grid


def to_pil(array: np.ndarray) -> Image.Image:
    """A uint8 (H, W, 1|3) array as a grey or RGB Pillow image."""
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def save_png(array: np.ndarray, path: Path) -> None:
    """Atomic PNG write of a uint8 (H, W, 1|3) array."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = to_pil(array)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    save_png(make_grid(images, nrow), path)


def save_each(images: torch.Tensor, folder: Path, prefix: str = "") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, a in enumerate(to_uint8(images)):
        p = folder / f"{prefix}{i:05d}.png"
        save_png(a, p)
        paths.append(p)
    return paths
