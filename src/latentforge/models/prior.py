"""The latent prior's network and noise schedules, from diffusers (imported lazily: the import takes seconds).

A UNet2DModel sized for small latents (4x4 to 16x16): one resolution level per entry of `widths`, self-attention on
the lowest level when asked, GroupNorm groups chosen to divide every width.
"""
from __future__ import annotations

import math
from typing import Any

from torch import nn


def _norm_groups(widths: tuple[int, ...]) -> int:
    g = math.gcd(*widths)
    return max(d for d in (32, 16, 8, 4, 2, 1) if g % d == 0)


def build_latent_unet(channels: int, resolution: int, widths: tuple[int, ...], layers_per_block: int,
                      attention: bool) -> nn.Module:
    """Raises ValueError when the latent is too small for the number of levels."""
    from diffusers import UNet2DModel

    if resolution % (2 ** (len(widths) - 1)):
        raise ValueError(f"a {resolution}x{resolution} latent cannot be halved {len(widths) - 1} times "
                         f"({len(widths)} UNet levels in widths={tuple(widths)})")
    last = len(widths) - 1
    down = tuple("AttnDownBlock2D" if attention and i == last else "DownBlock2D" for i in range(len(widths)))
    up = tuple("AttnUpBlock2D" if attention and i == 0 else "UpBlock2D" for i in range(len(widths)))
    return UNet2DModel(sample_size=resolution, in_channels=channels, out_channels=channels,
                       layers_per_block=layers_per_block, block_out_channels=tuple(widths), down_block_types=down,
                       up_block_types=up, norm_num_groups=_norm_groups(tuple(widths)), attention_head_dim=None,
                       add_attention=attention)


def build_schedulers(train_timesteps: int, beta_schedule: str, prediction: str, sampler: str) -> tuple[Any, Any]:
    """(training scheduler, sampling scheduler). Latents are not images: no clipping of the predicted x0."""
    from diffusers import DDIMScheduler, DDPMScheduler

    train = DDPMScheduler(num_train_timesteps=train_timesteps, beta_schedule=beta_schedule,
                          prediction_type=prediction, clip_sample=False)
    sampling = (DDIMScheduler if sampler == "ddim" else DDPMScheduler).from_config(train.config)
    return train, sampling
