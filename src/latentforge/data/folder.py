"""User data: a folder of images (recursive, optional class subfolders) or a .npy/.npz array file."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from latentforge.data.transforms import composite_alpha
from latentforge.data.types import RawImages
from latentforge.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"}


def list_images(root: Path) -> list[Path]:
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"not a folder or array file: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images (png/jpg/webp/bmp) found under {root}")
    return files


def folder_fingerprint(root: Path, files: list[Path]) -> str:
    """Changes when any file is added, removed, resized or touched: keys the decoded-tensor cache."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _decode(path: Path, background: tuple[int, int, int]) -> np.ndarray:
    """One image -> (H, W, 1|3) uint8, alpha composited onto the background."""
    with Image.open(path) as im:
        im.load()
        gray = im.mode in _GRAY_MODES
        if im.mode == "P":
            im = im.convert("RGBA")
        if gray:
            if "A" in im.getbands():
                arr = np.asarray(im.convert("LA"))
                level = int(round(float(np.mean(background))))
                rgb = composite_alpha(np.stack([arr[..., 0]] * 3 + [arr[..., 1]], -1), (level,) * 3)
                return rgb[..., :1]
            return np.asarray(im.convert("L"))[..., None]
        if "A" in im.getbands():
            return composite_alpha(np.asarray(im.convert("RGBA")), background)
        return np.asarray(im.convert("RGB"))


def load_folder(
    root: Path,
    on_corrupt: str = "skip",
    background: tuple[int, int, int] = (255, 255, 255),
    channels: int | None = None,
    resize=None,
    files: list[Path] | None = None,
) -> RawImages:
    """Decode every image; `resize` (a callable on one HWC array) runs per image since sizes differ.

    Class labels come from first-level subfolders when every image sits in one; otherwise labels are -1.
    """
    files = files if files is not None else list_images(root)
    images, kept, bad = [], [], []
    for p in files:
        try:
            images.append(_decode(p, background))
            kept.append(p)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            if on_corrupt == "error":
                raise DataError(f"cannot read image {p}: {e} (set data.on_corrupt=skip to skip such files)") from None
            bad.append(p)
    if bad:
        shown = ", ".join(str(p.relative_to(root)) for p in bad[:3])
        warnings.warn(f"skipped {len(bad)} unreadable image(s) under {root}: {shown}{' ...' if len(bad) > 3 else ''}")
    if not images:
        raise DataError(f"none of the {len(files)} image files under {root} could be read")

    counts = {c: [p for p, im in zip(kept, images) if im.shape[-1] == c] for c in (1, 3)}
    if channels is None and counts[1] and counts[3]:
        raise DataError(
            f"mixed channel counts under {root}: {len(counts[1])} grayscale (e.g. {counts[1][0].name}) and "
            f"{len(counts[3])} colour (e.g. {counts[3][0].name}); set data.channels=1 or data.channels=3 to convert"
        )
    if channels is not None:
        images = [im if im.shape[-1] == channels else _convert(im, channels) for im in images]
    if resize is not None:
        images = [resize(im) for im in images]
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise DataError(f"images under {root} have different sizes {sorted(sizes)[:3]}: give a resize function")

    rel = [p.relative_to(root) for p in kept]
    top = [r.parts[0] if len(r.parts) > 1 else None for r in rel]
    if all(t is not None for t in top):
        class_names = sorted(set(top))
        labels = np.array([class_names.index(t) for t in top], dtype=np.int64)
    else:
        class_names, labels = [], np.full(len(rel), -1, dtype=np.int64)
    return RawImages(np.stack(images), labels, np.array([str(r) for r in rel]), class_names, source=str(root))


def _convert(im: np.ndarray, channels: int) -> np.ndarray:
    if channels == 3:
        return np.repeat(im, 3, axis=-1)
    return np.round(im.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None].astype(np.uint8)


def load_array_file(path: Path) -> RawImages:
    """.npy holds images; .npz holds `images` (or `x`, or its only array) and optionally `labels` (or `y`)."""
    if not path.is_file():
        raise DataError(f"array file not found: {path}")
    try:
        if path.suffix == ".npy":
            arr, labels = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = next((k for k in ("images", "x", "X") if k in keys), keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise DataError(f"{path}: no 'images' (or 'x') array among keys {keys}")
                arr = z[key]
                lk = next((k for k in ("labels", "y") if k in keys), None)
                labels = z[lk] if lk else None
    except DataError:
        raise
    except (ValueError, OSError) as e:
        raise DataError(f"cannot read array file {path}: {e}") from None
    arr = _to_nhwc(arr, path)
    if labels is None or len(labels) != len(arr):
        labels = np.full(len(arr), -1, dtype=np.int64)
    return RawImages(arr, labels.astype(np.int64), np.arange(len(arr)), [], source=str(path))


def _to_nhwc(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(f"{path}: expected images shaped (N,H,W), (N,H,W,C) or (N,C,H,W), got {arr.shape}")
    if arr.shape[-1] not in (1, 3) and arr.shape[1] in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] not in (1, 3):
        raise DataError(f"{path}: images must have 1 or 3 channels, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise DataError(f"{path}: float images must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]")
        return np.round(arr * 255).astype(np.uint8)
    raise DataError(f"{path}: unsupported dtype {arr.dtype} (use uint8 or float in [0, 1])")
