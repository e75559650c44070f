"""Differentiable augmentation for GAN discriminators (DiffAugment: Zhao, Liu, Lin, Zhu and Han, NeurIPS 2020).

On a small training set the discriminator memorises the real images and its gradients stop teaching the generator.
DiffAugment applies the same family of random transforms to real and generated images every time the
discriminator sees them, in its own step and in the generator's, so D cannot memorise, and because every transform
is differentiable, G still gets gradients through it. Images are in [-1, 1], NCHW:

    color:        x + (b - 0.5);  then (x - mean_c x) * 2s + mean_c x;  then (x - mean x) * (c + 0.5) + mean x
                  (brightness, saturation over channels, contrast over the image; b, s, c ~ U[0, 1) per image)
    translation:  shift by up to 1/8 of the size in each direction, zero (mid-grey) filling what moves in
    cutout:       zero a square of half the size at a random centre (clipped at the borders)

The randomness comes from `rand(*shape)`, which returns U[0, 1) of shape (batch, *shape): the caller derives it from
(seed, step), so resumed runs repeat their augmentations.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Rand = Callable[..., torch.Tensor]


def diff_augment(x: torch.Tensor, policy: str, rand: Rand) -> torch.Tensor:
    """x transformed by each comma-separated op of `policy` in turn ('' leaves it as it is)."""
    for name in filter(None, policy.split(",")):
        x = _OPS[name](x, rand)
    return x


def color(x: torch.Tensor, rand: Rand) -> torch.Tensor:
    x = x + (rand(1, 1, 1).to(x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand(1, 1, 1).to(x) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (rand(1, 1, 1).to(x) + 0.5) + mean


def translation(x: torch.Tensor, rand: Rand, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (rand().to(x.device) * (2 * sy + 1)).long().clamp(max=2 * sy) - sy  # integers in [-sy, sy]
    tx = (rand().to(x.device) * (2 * sx + 1)).long().clamp(max=2 * sx) - sx
    padded = F.pad(x, (sx, sx, sy, sy))
    iy = torch.arange(h, device=x.device)[None, :, None] - ty[:, None, None] + sy  # out[y] = x[y - ty]
    ix = torch.arange(w, device=x.device)[None, None, :] - tx[:, None, None] + sx
    rows = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[rows, iy, ix].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, rand: Rand, ratio: float = 0.5) -> torch.Tensor:
    _, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (rand().to(x.device) * h).long().clamp(max=h - 1)  # the square's centre
    cx = (rand().to(x.device) * w).long().clamp(max=w - 1)
    y = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - ch // 2)  # position inside the square
    xx = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - cw // 2)
    inside = ((y >= 0) & (y < ch))[:, :, None] & ((xx >= 0) & (xx < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}
