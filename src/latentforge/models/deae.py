"""Deciphering Autoencoder network (Maeda 2023): random dropout pattern -> encoder -> latent -> decoder -> image.

Layout follows the reference at 32x32: encoder stages of (2x2 stride-2 conv, BN, LReLU, 3x3 conv, BN, LReLU) down to
2x2, channel masks multiplied in before stages 2..D, a linear map to the latent; the decoder is a DCGAN-like
upsampler (grouped 2x2 transposed convs + bottleneck residual blocks) that also receives an embedding of the
horizontal shift applied to the target. The encoder's input is noise: the masks are the only per-example signal.

Two departures from the reference are options, for the CPU presets (see `DeAEConfig`): a learned constant in place
of the first encoder stage (`encoder_input="constant"`: the encoder becomes a deterministic function of the
pattern), and GroupNorm or no normalisation in the encoder instead of batch norm.

The two halves may have different sizes: the encoder's (`channels`, `resolution`) fix the pattern code (how many
masked levels, of which widths), the decoder's (`out_channels`, `out_resolution`, `dec_widths`) what it draws. A
latent DeAE keeps the pixel DeAE's pattern code and decodes to an autoencoder's small latent (4x8x8) instead.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from latentforge.models.blocks import BottleneckBlock, ResBlock, SinusoidalEmbedding, conv_norm_act

SHIFT_CENTRE = 50.0  # the reference maps shifts in [-R, R] to [0, 100]; 50 means "no shift"


def depth_for_resolution(resolution: int, smallest: int = 8) -> int:
    """Stages needed to go from `resolution` down to 2x2."""
    d = int(round(math.log2(resolution))) - 1 if resolution > 0 else 0
    if resolution < smallest or 2 ** (d + 1) != resolution:
        raise ValueError(f"resolution {resolution} is not supported: DeAE needs a power of two >= {smallest}")
    return d


class DeAENet(nn.Module):
    def __init__(self, channels: int, resolution: int, enc_widths: tuple[int, ...], latent_dim: int,
                 encoder_input: str = "noise", encoder_norm: str = "batch", out_channels: int | None = None,
                 out_resolution: int | None = None, dec_widths: tuple[int, ...] | None = None):
        super().__init__()
        depth = depth_for_resolution(resolution)
        if len(enc_widths) != depth:
            raise ValueError(
                f"enc_widths has {len(enc_widths)} stages but resolution {resolution} needs {depth} "
                f"(one per halving down to 2x2)"
            )
        out_channels, out_resolution = out_channels or channels, out_resolution or resolution
        dec_depth = depth_for_resolution(out_resolution, smallest=4)
        dec = tuple(dec_widths) if dec_widths else tuple(reversed(enc_widths))[:dec_depth]
        if len(dec) != dec_depth:
            raise ValueError(f"dec_widths has {len(dec)} stages but output resolution {out_resolution} needs "
                             f"{dec_depth} (2x2 up to it)")
        self.channels, self.resolution, self.latent_dim = channels, resolution, latent_dim
        self.out_channels, self.out_resolution = out_channels, out_resolution
        self.enc_widths = tuple(enc_widths)
        if encoder_input not in ("noise", "constant"):
            raise ValueError(f"encoder_input {encoder_input!r}: use 'noise' or 'constant'")
        self.encoder_input = encoder_input

        c_in, stages = channels, []
        for w in enc_widths:
            stages.append(nn.Sequential(*conv_norm_act(c_in, w, 2, 2, 0, encoder_norm),
                                        *conv_norm_act(w, w, 3, 1, 1, encoder_norm)))
            c_in = w
        # "constant": a learned feature map replaces the first stage, so the pattern alone decides the latent.
        # (A constant image fed through the first stage would be erased by batch norm: it is the same in every row.)
        self.constant = None
        if encoder_input == "constant":
            self.constant = nn.Parameter(torch.randn(enc_widths[0], resolution // 2, resolution // 2))
            stages[0] = nn.Identity()
        self.encoder = nn.ModuleList(stages)
        self.to_latent = nn.Linear(enc_widths[-1] * 4, latent_dim)

        self.shift_mlp = nn.Sequential(
            SinusoidalEmbedding(latent_dim),
            nn.Linear(latent_dim, latent_dim * 4),
            nn.LeakyReLU(0.01),
            nn.Linear(latent_dim * 4, latent_dim),
        )
        self.from_latent = nn.Linear(latent_dim * 2, dec[0] * 4)
        self.from_latent_post = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.LeakyReLU(0.01))
        ups = []
        for w_in, w_out in zip(dec[:-1], dec[1:]):
            groups = math.gcd(max(1, w_in // 128), w_out)
            reduction = max(1, w_out // 64)
            ups.append(nn.Sequential(
                nn.ConvTranspose2d(w_in, w_out, 2, 2, 0, groups=groups),
                nn.BatchNorm2d(w_out),
                nn.LeakyReLU(0.01),
                BottleneckBlock(w_out, reduction),
                BottleneckBlock(w_out, reduction),
            ))
        self.decoder = nn.ModuleList(ups)
        half = max(1, dec[-1] // 2)
        self.to_image = nn.Sequential(
            nn.ConvTranspose2d(dec[-1], half, 2, 2, 0),
            nn.BatchNorm2d(half),
            nn.LeakyReLU(0.01),
            ResBlock(half),
            ResBlock(half),
            nn.Conv2d(half, out_channels, 3, 1, 1),
        )

    @property
    def mask_channels(self) -> tuple[int, ...]:
        return self.enc_widths[:-1]

    def encode(self, noise: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
        if len(masks) != len(self.encoder) - 1:
            raise ValueError(f"expected {len(self.encoder) - 1} masks, got {len(masks)}")
        x = noise
        for i, stage in enumerate(self.encoder):
            if i > 0:
                x = x * masks[i - 1].to(x.dtype)[:, :, None, None]
            x = self.constant.expand(len(noise), *self.constant.shape) if i == 0 and self.constant is not None else stage(x)
        return self.to_latent(x.flatten(1))

    def decode(self, z: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        if shift is None:
            shift = torch.full((z.shape[0],), SHIFT_CENTRE, device=z.device)
        h = self.from_latent(torch.cat([z, self.shift_mlp(shift).to(z.dtype)], dim=1))
        h = self.from_latent_post(h.view(z.shape[0], -1, 2, 2))
        for stage in self.decoder:
            h = stage(h)
        return self.to_image(h)  # no tanh, as in the reference; clamp to [-1, 1] when sampling

    def forward(self, noise: torch.Tensor, masks: list[torch.Tensor], shift: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(noise, masks), shift)
