"""Resize/crop and channel conversion in torch (no torchvision): uint8 HWC arrays in, uint8 CHW tensors out."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_square(img: torch.Tensor) -> torch.Tensor:
    """Centre-crop a (..., H, W) tensor to its shorter side."""
    h, w = img.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[..., top:top + s, left:left + s]


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> centre-cropped (N, C, size, size) uint8; antialiased when shrinking."""
    images = to_square(images)
    if images.shape[-1] == size:
        return images.contiguous()
    x = images.float()
    shrinking = images.shape[-1] > size
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)
    return x.round().clamp(0, 255).to(torch.uint8)


def hwc_to_chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).contiguous()


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} -> `channels` (ITU-R 601 luma for RGB -> gray)."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def composite_alpha(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Alpha-composite uint8 RGBA over a solid colour; exact at alpha 0 (background) and 255 (foreground)."""
    if len(background) != 3 or not all(0 <= int(c) <= 255 for c in background):
        raise ValueError(f"background must be three ints in 0..255, got {background!r}")
    bg = np.asarray([int(c) for c in background], dtype=np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    a = rgba[..., 3:4].astype(np.uint16)
    return ((rgb * a + bg * (255 - a) + 127) // 255).astype(np.uint8)


def fit_to_network(images: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Float images in [-1, 1] matched to a network's input: grey <-> colour, then bilinear resize to size x size
    (antialiased when shrinking). Shared by every small network latentforge trains on the data."""
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=images.shape[-1] > size)
    return images
