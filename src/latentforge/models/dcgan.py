"""DCGAN networks (Radford, Metz & Chintala 2016) with a width-scaled generator.

Generator: the latent, seen as a 1x1 map, goes through a 4x4 transposed conv to a 4x4 map, then stride-2 transposed
convs (4x4 kernels) double the size up to the image, with batch norm and ReLU between them and tanh at the end.
Channel counts halve at each stage and end at `base * width` before the RGB layer, so `width` scales every layer at
once: one recipe, a family of generator sizes (about 76k to 5.5M parameters at 32x32 for widths 1/8 to 2.5).

Discriminator: the mirror image with stride-2 convs, LeakyReLU(0.2), batch norm after all but the first conv, and a
final 4x4 conv to one logit. It does not depend on `width`: "Complexity Matters" varies the generator only.
With `norm="spectral"` every conv is spectrally normalised instead (SN-GAN) and batch norm is dropped.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def upsampling_stages(resolution: int) -> int:
    """Doublings from a 4x4 map to the image."""
    n = int(round(math.log2(resolution))) - 2
    if resolution < 8 or 2 ** (n + 2) != resolution:
        raise ValueError(f"resolution {resolution} is not supported: DCGAN needs a power of two >= 8 (8, 16, 32, 64...)")
    return n


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def generator_channels(resolution: int, width: float, base: int = 64) -> list[int]:
    """Channels of the generator's hidden stages, from 4x4 upwards: e.g. [256, 128, 64] at 32 px, width 1."""
    n = upsampling_stages(resolution)
    return [max(1, int(round(base * width * 2 ** (n - 1 - i)))) for i in range(n)]


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, resolution: int, width: float = 1.0, base: int = 64):
        super().__init__()
        if width <= 0:
            raise ValueError(f"generator width must be positive, got {width}")
        hidden = generator_channels(resolution, width, base)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, hidden[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(hidden[0]), nn.ReLU(True)]
        for c_in, c_out in zip(hidden[:-1], hidden[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(hidden[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, base: int = 64, norm: str = "batch"):
        super().__init__()
        n = upsampling_stages(resolution)
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        widths = [base * 2 ** i for i in range(n)]
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers.append(sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "spectral")))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(sn(nn.Conv2d(widths[-1], 1, 4, 1, 0)))
        self.net = nn.Sequential(*layers)
        if norm != "spectral":
            dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
