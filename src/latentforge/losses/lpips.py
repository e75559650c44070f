"""LPIPS perceptual distance (Zhang et al. 2018), ``lpips`` package "alex" variant, version 0.1.

Re-implemented here because the ``lpips`` package (and torchvision, which it imports) is not a
dependency of latentforge. The weights are the same files those packages use:

* backbone: torchvision's ``alexnet-owt-7be5be79.pth`` (only ``features.*`` is used);
* heads: lpips's ``weights/v0.1/alex.pth`` (five non-negative 1x1 convolutions).

Weights are never downloaded unless ``allow_download=True``, so offline runs fail early with a
one-line :class:`~latentforge.errors.WeightsUnavailableError` instead of hanging on the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentforge.errors import CheckpointError, WeightsUnavailableError

BACKBONE_ENV = "LATENTFORGE_LPIPS_BACKBONE"
HEADS_ENV = "LATENTFORGE_LPIPS_HEADS"
CACHE_ENV = "LATENTFORGE_CACHE"
BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
HEADS_FILE = "alex.pth"
BACKBONE_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
HEADS_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth"

CHANNELS: tuple[int, ...] = (64, 192, 384, 256, 256)
_TAPS = (1, 4, 7, 9, 11)  # indices in ``features`` of relu1..relu5, the layers LPIPS compares
_CONV_IDX = (0, 3, 6, 8, 10)
MIN_SIZE = 31  # smallest H/W for which AlexNet's third max-pool still has an output pixel


class AlexNetFeatures(nn.Module):
    """torchvision's ``alexnet().features`` with identical parameter names (``features.N.*``).

    Same names so the torchvision checkpoint loads as-is; ReLUs are not in-place so the tapped
    activations are never overwritten when gradients flow back to the inputs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the activations after relu1..relu5 (the final max-pool is never needed)."""
        outs: list[Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                outs.append(x)
                if i == _TAPS[-1]:
                    break
        return outs


def _backbone_state(raw: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """Keep ``features.*`` (prefix optional), drop ``classifier.*``, check names and shapes."""
    state = {}
    for k, v in raw.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.startswith("classifier."):
            continue
        state[k if k.startswith("features.") else f"features.{k}"] = v
    return _checked(state, AlexNetFeatures().state_dict(), path, "AlexNet backbone")


def _heads_state(raw: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """Map ``linN.model.1.weight`` (lpips file) / ``lins.N...`` / ``linN.weight`` to ``linN.weight``."""
    state = {}
    for k, v in raw.items():
        m = re.fullmatch(r"lins?\.?(\d)\.(?:model\.1\.)?weight", k)
        if m:
            state[f"lin{m.group(1)}.weight"] = v
    expected = {f"lin{i}.weight": torch.empty(1, c, 1, 1) for i, c in enumerate(CHANNELS)}
    return _checked(state, expected, path, "LPIPS heads")


def _checked(state: dict[str, Tensor], expected: dict[str, Tensor], path: Path, what: str) -> dict[str, Tensor]:
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{what} file {path} lacks keys {missing[:4]}{'...' if len(missing) > 4 else ''}; found {sorted(state)[:4]}")
    for k, ref in expected.items():
        if tuple(state[k].shape) != tuple(ref.shape):
            raise CheckpointError(f"{what} file {path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(ref.shape)}")
    return {k: state[k] for k in expected}


def _load_file(path: Path, what: str) -> dict[str, Tensor]:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or not a torch file
        raise CheckpointError(f"{what} file {path} could not be read: {type(e).__name__}: {e}") from e
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise CheckpointError(f"{what} file {path} is not a state dict (got {type(raw).__name__})")
    return raw


def _cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "latentforge") / "lpips"


def _hub_backbone() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILE


def _lpips_package_heads() -> Path | None:
    """The installed lpips package's head file, found without importing lpips (it imports torchvision)."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / HEADS_FILE


def _candidates(kind: str, explicit: str | os.PathLike[str] | None) -> tuple[list[Path], bool]:
    """Search order for one file; the bool says the first entry was named by the user and is final."""
    env = BACKBONE_ENV if kind == "backbone" else HEADS_ENV
    if explicit is not None:
        return [Path(explicit).expanduser()], True
    if os.environ.get(env):
        return [Path(os.environ[env]).expanduser()], True
    if kind == "backbone":
        return [_hub_backbone(), _cache_dir() / BACKBONE_FILE], False
    pkg = _lpips_package_heads()
    return ([pkg] if pkg else []) + [_cache_dir() / HEADS_FILE], False


def _find(kind: str, explicit: str | os.PathLike[str] | None) -> Path | None:
    paths, _ = _candidates(kind, explicit)
    return next((p for p in paths if p.is_file()), None)


def _unavailable(kind: str, explicit: str | os.PathLike[str] | None, why: str = "") -> WeightsUnavailableError:
    paths, named = _candidates(kind, explicit)
    env = BACKBONE_ENV if kind == "backbone" else HEADS_ENV
    name = f"torchvision AlexNet backbone {BACKBONE_FILE}" if kind == "backbone" else f"lpips v0.1 heads {HEADS_FILE}"
    url = BACKBONE_URL if kind == "backbone" else HEADS_URL
    where = "named path" if named else "searched"
    tail = f" ({' '.join(why.split())})" if why else ""  # keep the message on one line
    return WeightsUnavailableError(
        f"LPIPS weights missing: {name} not found ({where}: {', '.join(map(str, paths))}){tail}; "
        f"set {env}=/path/to/{BACKBONE_FILE if kind == 'backbone' else HEADS_FILE}, pass its path, "
        f"or allow downloading from {url}"
    )


def _download(kind: str) -> Path:
    """Fetch one weight file into its cache location; used only with ``allow_download=True``."""
    if kind == "backbone":
        torch.hub.load_state_dict_from_url(BACKBONE_URL, progress=False, check_hash=True, map_location="cpu")
        return _hub_backbone()
    dst = _cache_dir() / HEADS_FILE
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(HEADS_URL, str(dst), progress=False)
    return dst


def _resolve(kind: str, explicit: str | os.PathLike[str] | None, allow_download: bool) -> Path:
    found = _find(kind, explicit)
    if found is not None:
        return found
    _, named = _candidates(kind, explicit)
    if not allow_download or named:  # a path the user named is never silently replaced by a download
        raise _unavailable(kind, explicit)
    try:
        return _download(kind)
    except Exception as e:
        raise _unavailable(kind, explicit, f"download failed: {type(e).__name__}: {e}") from e


def _fingerprint(*paths: Path) -> str:
    """First 12 hex of sha256 over both files, so a run records exactly which network scored it."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


class LPIPS(nn.Module):
    """LPIPS distance, ``lpips.LPIPS(net="alex", version="0.1")`` formula; returns shape ``(B,)``.

    ``(B,)`` rather than lpips's ``(B,1,1,1)`` so it can be averaged/logged directly; use
    ``.view(-1, 1, 1, 1)`` for the lpips layout. Inputs are RGB in [-1, 1] (1-channel inputs are
    repeated to RGB). Backbone and heads are frozen and the module stays in eval mode even when a
    parent calls ``.train()``, but gradients flow to the inputs so it can serve as a loss.
    """

    shift: Tensor
    scale: Tensor

    def __init__(
        self,
        backbone_state: dict[str, Tensor],
        heads_state: dict[str, Tensor],
        resize_to: int | None = None,
        weights_fingerprint: str = "unknown",
    ) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        self.net.load_state_dict(_backbone_state(backbone_state, Path("<state dict>")))
        for i, c in enumerate(CHANNELS):
            setattr(self, f"lin{i}", nn.Conv2d(c, 1, kernel_size=1, bias=False))
        heads = _heads_state(heads_state, Path("<state dict>"))
        for i in range(len(CHANNELS)):
            getattr(self, f"lin{i}").weight.data.copy_(heads[f"lin{i}.weight"])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.resize_to = resize_to
        self.weights_fingerprint = weights_fingerprint
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Always eval: the metric must not change with the trainer's mode."""
        return super().train(False)

    def _prep(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"LPIPS expects (B,3,H,W) or (B,1,H,W) images, got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize_to is not None and tuple(x.shape[-2:]) != (self.resize_to, self.resize_to):
            x = F.interpolate(x, size=(self.resize_to, self.resize_to), mode="bilinear", align_corners=False)
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE}px, got {tuple(x.shape[-2:])}; set resize_to")
        return (x - self.shift) / self.scale

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape:
            raise ValueError(f"LPIPS inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        total: Tensor | None = None
        for i, (fx, fy) in enumerate(zip(self.net(self._prep(x)), self.net(self._prep(y)))):
            fx = fx / (fx.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            d = getattr(self, f"lin{i}")((fx - fy) ** 2).mean(dim=(1, 2, 3))
            total = d if total is None else total + d
        assert total is not None
        return total


def lpips_available(backbone_path: str | os.PathLike[str] | None = None, heads_path: str | os.PathLike[str] | None = None) -> bool:
    """Cheap check (no loading, no network) that both weight files can be found locally."""
    return _find("backbone", backbone_path) is not None and _find("heads", heads_path) is not None


def load_lpips(
    allow_download: bool = False,
    resize_to: int | None = None,
    backbone_path: str | os.PathLike[str] | None = None,
    heads_path: str | os.PathLike[str] | None = None,
) -> LPIPS:
    """Build the frozen LPIPS-alex network from local files (or download them if allowed).

    Search order per file: explicit path, env var (``LATENTFORGE_LPIPS_BACKBONE`` /
    ``LATENTFORGE_LPIPS_HEADS``), torch hub cache (backbone), installed lpips package data (heads),
    ``$LATENTFORGE_CACHE/lpips`` or ``~/.cache/latentforge/lpips``. A named path or env var is
    final: if it is missing we raise rather than silently fall back to another file.
    """
    bb = _resolve("backbone", backbone_path, allow_download)
    hd = _resolve("heads", heads_path, allow_download)
    bb_state = _backbone_state(_load_file(bb, "AlexNet backbone"), bb)
    hd_state = _heads_state(_load_file(hd, "LPIPS heads"), hd)
    return LPIPS(bb_state, hd_state, resize_to=resize_to, weights_fingerprint=_fingerprint(bb, hd))
