"""The FID Inception-v3 feature network (pytorch-fid's ``fid_inception_v3``), without torchvision.

This is the network FID, KID and the Inception Score are conventionally computed with: Google's
2015-12-05 TensorFlow Inception graph, ported to PyTorch by pytorch-fid as
``pt_inception-2015-12-05-6726825d.pth``. The layout is torchvision's ``Inception3`` (no auxiliary
head, 1008 classes) with pytorch-fid's ``FIDInceptionA/C/E_1/E_2`` patches that reproduce the TF
graph: the branch average pools in the A, C and first E blocks ignore padded zeros
(``count_include_pad=False``) and the last E block's pool branch uses a *max* pool. Parameter names
equal torchvision's, so the pytorch-fid file loads as-is.

Preprocessing is pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)``: bilinear
resize to 299x299 (``align_corners=False``) and a map from [0, 1] to [-1, 1]. latentforge images are
already in [-1, 1], so that map is the identity here; since bilinear weights sum to one, resizing a
[-1, 1] image equals resizing the [0, 1] image and then mapping it (up to float rounding).
Grayscale images are repeated to three channels, as pytorch-fid's ``convert('RGB')`` does.

Values match pytorch-fid. torch-fidelity loads the same weights but resizes with its own
TF1-compatible bilinear interpolation, so its FID/KID/IS can differ from ours (and pytorch-fid's)
in about the third significant digit; never compare numbers across the two in one table.

Weights are never downloaded unless ``allow_download=True``, so offline runs fail early with a
one-line :class:`~latentforge.errors.WeightsUnavailableError` instead of hanging on the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentforge.errors import CheckpointError, WeightsUnavailableError
from latentforge.losses.lpips import CACHE_ENV, _checked, _fingerprint, _load_file
from latentforge.metrics.features.base import FeatureExtractor

WEIGHTS_ENV = "LATENTFORGE_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
INPUT_SIZE = 299
NUM_CLASSES = 1008  # 1000 ImageNet classes + background + 7 unused, as in the TF graph
POOL_DIM = 2048
_WHAT = "FID Inception-v3"


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU; names ``conv.*`` / ``bn.*`` as in torchvision."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _tf_avg_pool(x: Tensor) -> Tensor:
    """3x3/1 average pool that, like TensorFlow's, averages only over real (non-padded) pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """torchvision ``InceptionA`` with the TF average pool (Mixed_5b/5c/5d)."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """torchvision ``InceptionB`` (Mixed_6a), unchanged in the FID variant."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """torchvision ``InceptionC`` with the TF average pool (Mixed_6b..6e)."""

    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """torchvision ``InceptionD`` (Mixed_7a), unchanged in the FID variant."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """torchvision ``InceptionE``; ``max_pool=False`` is pytorch-fid's ``FIDInceptionE_1`` (Mixed_7b,
    TF average pool), ``max_pool=True`` its ``FIDInceptionE_2`` (Mixed_7c, max pool in the pool branch,
    a quirk of the TF graph that FID numbers depend on)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's ``fid_inception_v3()`` network; ``forward`` returns ``(pool (B,2048), logits (B,1008))``.

    Expects 3-channel inputs in [-1, 1], normally 299x299 (see :func:`preprocess`). ``pool`` is the
    output of the final global average pool (pytorch-fid's block 3, the FID embedding), ``logits``
    the raw ``fc`` output (with bias) over the 1008 TF classes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(POOL_DIM, NUM_CLASSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        pool = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)  # torchvision's dropout is the identity in eval
        return pool, self.fc(pool)


def preprocess(images: Tensor) -> Tensor:
    """pytorch-fid's input pipeline for [-1, 1] images: (B,1|3,H,W) -> (B,3,299,299).

    Grayscale is repeated to RGB; anything not already 299x299 is resized bilinearly with
    ``align_corners=False`` (a 299x299 input is returned unchanged, which is also what
    pytorch-fid's same-size interpolation yields). pytorch-fid's ``2x - 1`` step is the identity
    here because latentforge images are already in [-1, 1].
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Inception expects (B,3,H,W) or (B,1,H,W) images, got shape {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if tuple(images.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return images


class InceptionFeatures(FeatureExtractor):
    """The frozen FID Inception as a :class:`FeatureExtractor`: 2048-d pool features and 1008 logits.

    ``fingerprint`` is the first 12 hex of the weights file's sha256; for the genuine pytorch-fid file
    it starts with ``6726825d`` (the hash prefix in its name).
    """

    name = "inception-v3-fid"

    def __init__(self, net: FIDInceptionV3, fingerprint: str = "unknown") -> None:
        self.net = net.eval().requires_grad_(False)
        self.fingerprint = fingerprint

    @property
    def device(self) -> torch.device:
        return self.net.fc.weight.device

    @torch.no_grad()
    def _forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        self.net.eval()  # never let a parent's .train() turn on batch statistics
        x = preprocess(images.to(self.device, torch.float32))
        return self.net(x)


# ---------------------------------------------------------------------------------------------------
# Weight discovery and loading (same rules as latentforge.losses.lpips)


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


def _cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "latentforge") / "inception"


def _hub_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def _candidates(explicit: str | os.PathLike[str] | None) -> tuple[list[Path], bool]:
    """Search order; the bool says the single entry was named by the user and is final."""
    if explicit is not None:
        return [Path(explicit).expanduser()], True
    if os.environ.get(WEIGHTS_ENV):
        return [Path(os.environ[WEIGHTS_ENV]).expanduser()], True
    return [_hub_file(), _cache_dir() / WEIGHTS_FILE], False


def _find(explicit: str | os.PathLike[str] | None) -> Path | None:
    paths, _ = _candidates(explicit)
    return next((p for p in paths if p.is_file()), None)


def _unavailable(explicit: str | os.PathLike[str] | None, why: str = "") -> WeightsUnavailableError:
    paths, named = _candidates(explicit)
    where = "named path" if named else "searched"
    tail = f" ({_one_line(why)})" if why else ""
    return WeightsUnavailableError(
        f"Inception weights missing: pytorch-fid {_WHAT} {WEIGHTS_FILE} not found "
        f"({where}: {', '.join(map(str, paths))}){tail}; set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}, "
        f"pass its path, or allow downloading from {WEIGHTS_URL}"
    )


def _resolve(explicit: str | os.PathLike[str] | None, allow_download: bool) -> Path:
    found = _find(explicit)
    if found is not None:
        return found
    _, named = _candidates(explicit)
    if not allow_download or named:  # a path the user named is never silently replaced by a download
        raise _unavailable(explicit)
    try:
        torch.hub.load_state_dict_from_url(WEIGHTS_URL, progress=False, check_hash=True, map_location="cpu")
    except Exception as e:
        raise _unavailable(explicit, f"download failed: {type(e).__name__}: {e}") from e
    return _hub_file()


def _state_from(raw: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """Check names/shapes against the architecture; ``num_batches_tracked`` is optional (unused in eval)."""
    with torch.device("meta"):
        reference = FIDInceptionV3().state_dict()
    raw = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in raw.items()}
    bad = sorted(str(k) for k, v in raw.items() if not isinstance(v, Tensor))
    if bad:
        raise CheckpointError(f"{_WHAT} file {path}: entries {bad[:4]} are not tensors; expected a flat state dict")
    expected = {k: v for k, v in reference.items() if not k.endswith("num_batches_tracked")}
    state = _checked(raw, expected, path, _WHAT)
    for k in reference:
        if k.endswith("num_batches_tracked"):
            state[k] = torch.zeros((), dtype=torch.long)
    return state


def build_inception(state: dict[str, Tensor] | None = None, path: Path | str = "<state dict>") -> FIDInceptionV3:
    """The network in eval mode, with ``state`` (checked like a file) or default random init if None."""
    if state is None:
        return FIDInceptionV3().eval()
    checked = _state_from(state, Path(path))
    with torch.device("meta"):  # skip the random init that the weights would overwrite anyway
        net = FIDInceptionV3()
    tensors = {k: v.detach().to(torch.float32 if v.is_floating_point() else v.dtype, copy=True).contiguous()
               for k, v in checked.items()}
    net.load_state_dict(tensors, assign=True)
    return net.eval()


def inception_available(path: str | os.PathLike[str] | None = None) -> bool:
    """Cheap check (no loading, no network) that the weights file can be found locally."""
    return _find(path) is not None


def load_inception(
    path: str | os.PathLike[str] | None = None,
    allow_download: bool = False,
    device: str | torch.device = "cpu",
) -> InceptionFeatures:
    """The frozen FID Inception-v3 from local weights (or downloaded if allowed).

    Search order: ``path``, ``$LATENTFORGE_INCEPTION_WEIGHTS``, the torch hub cache
    (``torch.hub.get_dir()/checkpoints``, where pytorch-fid keeps it), ``$LATENTFORGE_CACHE/inception``
    or ``~/.cache/latentforge/inception``. A named path or env var is final: if it is missing we raise
    rather than fall back to another file. Downloads go to the torch hub cache, hash-checked.
    """
    found = _resolve(path, allow_download)
    try:
        raw = _load_file(found, _WHAT)
        net = build_inception(raw, found)
    except CheckpointError as e:
        raise CheckpointError(_one_line(str(e))) from e
    except RuntimeError as e:  # load_state_dict complaining about something _checked let through
        raise CheckpointError(_one_line(f"{_WHAT} file {found} does not fit the network: {e}")) from e
    return InceptionFeatures(net.to(device), fingerprint=_fingerprint(found))
