"""A test bench of generators whose quality is known in advance, to check that the evaluator ranks them right.

Each "generator" is a fixed set of images built from the data itself:

=====================  ====================================================  =========================
name                   images                                                 the evaluator must say
=====================  ====================================================  =========================
heldout                real held-out images (never trained on)               best; no flag
noise-<s>              held-out images + Gaussian pixel noise of std s        worse as s grows; no flag
blur-<s>               held-out images blurred with a Gaussian of s pixels   worse as s grows; no flag
replay                 training images, unchanged                            memorisation
one-train-image        one training image, repeated                          collapse and memorisation
mean-image             the training mean, repeated                           collapse
uniform-noise          independent uniform noise per pixel                   worst-class FID; no flag
=====================  ====================================================  =========================

The orderings and flags are asserted by the tests (on a built-in set and on an unlabelled folder) and printed as
a table by ``benchmarks/eval_testbench.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from latentforge.data.dataset import ImageDataset
from latentforge.metrics.evaluate import evaluate
from latentforge.metrics.features.base import FeatureExtractor

NOISE_LEVELS = (0.05, 0.1, 0.2)  # std in [0, 1] pixel units
BLUR_LEVELS = (0.7, 1.5)  # Gaussian std in pixels
EXPECTED_FLAGS = {"replay": {"memorisation"}, "one-train-image": {"collapse", "memorisation"},
                  "mean-image": {"collapse"}}  # every other generator: no flag


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (kernel radius 3 sigma, reflect padding) of (N, C, H, W) images."""
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = images.shape[1]
    out = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def known_generators(train: ImageDataset, heldout: ImageDataset, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The bench's image sets, n images each (n is capped at the held-out size, since repeating held-out images
    would make duplicates of them)."""
    n = min(n, len(heldout))
    g = torch.Generator().manual_seed(seed)
    held = heldout.get(torch.randperm(len(heldout), generator=g)[:n])
    tr = train.get(torch.randperm(len(train), generator=g)[:n])
    out = {"heldout": held}
    for s in NOISE_LEVELS:
        out[f"noise-{s:g}"] = (held + 2 * s * torch.randn(held.shape, generator=g)).clamp(-1, 1)
    for s in BLUR_LEVELS:
        out[f"blur-{s:g}"] = gaussian_blur(held, s)
    out["replay"] = tr
    out["one-train-image"] = tr[:1].expand(n, -1, -1, -1).clone()
    out["mean-image"] = train.get(torch.arange(len(train))).mean(0, keepdim=True).expand(n, -1, -1, -1).clone()
    out["uniform-noise"] = torch.rand(held.shape, generator=g) * 2 - 1
    return out


def run_testbench(train: ImageDataset, heldout: ImageDataset, extractor: FeatureExtractor, n: int = 1000,
                  seed: int = 0, cache_dir=None) -> dict[str, dict]:
    """The evaluation record of every bench generator, by name."""
    return {name: evaluate(images, train, heldout, extractor, seed=seed, cache_dir=cache_dir, kid_subsets=50)
            for name, images in known_generators(train, heldout, n, seed).items()}


def raised_flags(record: dict) -> set[str]:
    return {f for f in ("collapse", "memorisation") if record[f"{f}_flag"]}
