"""Atomic writes (a crash mid-write leaves the old file, or none, never a truncated one), file modes that follow the
user's umask, and the writability check every command runs before it starts work."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from latentforge.errors import LatentforgeError


def umask_mode() -> int:
    """The mode a plain `open(..., 'w')` would give a new file (0o666 minus the umask). mkstemp makes 0600 files;
    renamed into place they would lock other users out of a shared run folder or cache."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def ensure_writable(folder: Path, what: str, create: bool = False) -> Path:
    """Prove a file can be written in `folder`, before any work starts, so an unwritable destination costs one
    `error:` line instead of a traceback after minutes of training or sampling. Without `create` nothing is made:
    the test file goes to the nearest folder that exists, so a command that fails its later checks leaves no empty
    output folder behind."""
    folder = Path(folder)
    probe = folder.absolute()
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir():
                raise NotADirectoryError(20, f"{probe} is a file, not a folder")
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".latentforge-write-test-"):
            pass
    except OSError as e:
        raise LatentforgeError(f"cannot write {what} in {folder}: {e.strerror or e}") from None
    return folder


def _write_atomic(path: Path, write: Any) -> None:
    """`write(binary file)` into a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, umask_mode())  # mkstemp makes it 0600; caches and run folders may be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz_atomic(path: Path, compressed: bool = False, **arrays: np.ndarray) -> None:
    _write_atomic(path, lambda f: (np.savez_compressed if compressed else np.savez)(f, **arrays))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _write_atomic(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda f: f.write(text.encode("utf-8")))
