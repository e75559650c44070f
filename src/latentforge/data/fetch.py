"""Checksum-verified downloads into a user cache, so datasets are fetched once and never trusted unverified."""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

from tqdm import tqdm

from latentforge.errors import DataError

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """Where downloads and decoded arrays live: $LATENTFORGE_CACHE, else the XDG cache dir."""
    env = os.environ.get("LATENTFORGE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "latentforge"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large tarballs do not sit in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch_verified(url: str, sha256: str, dest: Path, *, allow_download: bool = True, desc: str = "") -> Path:
    """Return `dest` once its sha256 matches, downloading it from `url` if needed.

    The download goes to a `.part` file that is only moved into place (atomically) after it verifies,
    so an interrupted or corrupted transfer never leaves a file that looks valid.
    """
    dest = Path(dest)
    sha256 = sha256.lower()

    def fail(reason: str) -> DataError:
        return DataError(f"cannot get {url}: {reason}; download it by hand and place it at {dest}")

    if dest.is_file():
        got = sha256_of(dest)
        if got == sha256:
            return dest
        if not allow_download:
            raise fail(f"existing file has sha256 {got[:12]}..., expected {sha256[:12]}...")
    elif not allow_download:
        raise fail("file is not in the cache and downloading is disabled")

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name, disable=None) as bar:
                for block in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise fail(f"download failed ({type(exc).__name__}: {' '.join(str(exc).split())})") from exc
    got = h.hexdigest()
    if got != sha256:
        part.unlink(missing_ok=True)
        raise fail(f"downloaded file has sha256 {got[:12]}..., expected {sha256[:12]}...")
    os.replace(part, dest)
    return dest
