"""Offline tests of the LPIPS-alex re-implementation using random weights in the real file formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from latentforge.errors import CheckpointError, LatentforgeError, WeightsUnavailableError
from latentforge.losses import lpips as L

CONVS = [(0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3)]


def _backbone_sd(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision alexnet key format, including a classifier entry that must be ignored."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for idx, cin, cout, k in CONVS:
        sd[f"features.{idx}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
        sd[f"features.{idx}.bias"] = torch.randn(cout, generator=g) * 0.1
    sd["classifier.1.weight"] = torch.randn(4, 8, generator=g)
    return sd


def _heads_sd(seed: int = 1) -> dict[str, torch.Tensor]:
    """lpips v0.1 key format; weights non-negative as in the trained lpips heads."""
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(L.CHANNELS)}


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real weights can leak in: env vars cleared, caches and lpips package pointed at tmp."""
    monkeypatch.delenv(L.BACKBONE_ENV, raising=False)
    monkeypatch.delenv(L.HEADS_ENV, raising=False)
    monkeypatch.setenv(L.CACHE_ENV, str(tmp_path / "lfcache"))
    monkeypatch.setattr(L.torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(L, "_lpips_package_heads", lambda: tmp_path / "pkg" / "weights" / "v0.1" / "alex.pth")
    return tmp_path


@pytest.fixture()
def files(isolated: Path) -> tuple[Path, Path]:
    bb, hd = isolated / "alexnet.pth", isolated / "heads.pth"
    torch.save(_backbone_sd(), bb)
    torch.save(_heads_sd(), hd)
    return bb, hd


@pytest.fixture()
def model(files: tuple[Path, Path]) -> L.LPIPS:
    return L.load_lpips(backbone_path=files[0], heads_path=files[1])


def _imgs(seed: int, n: int = 2, size: int = 48) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_identity_positive_symmetric_shape(model: L.LPIPS) -> None:
    x, y = _imgs(0), _imgs(1)
    assert model(x, x).shape == (2,)
    assert torch.allclose(model(x, x), torch.zeros(2))
    d = model(x, y)
    assert (d > 0).all()
    assert torch.allclose(d, model(y, x), atol=1e-7)


def test_frozen_but_differentiable(model: L.LPIPS) -> None:
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training and not model.net.training
    x = _imgs(0).requires_grad_(True)
    model(x, _imgs(1)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def _reference(x: torch.Tensor, y: torch.Tensor, bsd: dict, hsd: dict) -> torch.Tensor:
    """Independent re-implementation of lpips.LPIPS(net='alex', version='0.1').forward, per layer."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def feats(z: torch.Tensor) -> list[torch.Tensor]:
        z = (z - shift) / scale
        out = []
        for n, (idx, _cin, _cout, k) in enumerate(CONVS):
            if n in (1, 2):
                z = F.max_pool2d(z, 3, 2)
            stride, pad = (4, 2) if n == 0 else (1, k // 2)
            z = F.relu(F.conv2d(z, bsd[f"features.{idx}.weight"], bsd[f"features.{idx}.bias"], stride, pad))
            out.append(z)
        return out

    total = torch.zeros(x.shape[0])
    for i, (a, b) in enumerate(zip(feats(x), feats(y))):
        a = a / (torch.sqrt((a**2).sum(1, keepdim=True)) + 1e-10)
        b = b / (torch.sqrt((b**2).sum(1, keepdim=True)) + 1e-10)
        w = hsd[f"lin{i}.model.1.weight"].view(-1)
        layer = torch.zeros(x.shape[0])
        for c in range(a.shape[1]):
            layer = layer + w[c] * ((a[:, c] - b[:, c]) ** 2).mean(dim=(1, 2))
        total = total + layer
    return total


def test_matches_independent_formula(model: L.LPIPS) -> None:
    x, y = _imgs(2, size=64).double(), _imgs(3, size=64).double()
    bsd = {k: v.double() for k, v in _backbone_sd().items()}
    hsd = {k: v.double() for k, v in _heads_sd().items()}
    expected = _reference(x, y, bsd, hsd)
    got = model.double()(x, y)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got, expected)
    got32 = model.float()(x.float(), y.float())
    assert torch.allclose(got32.double(), expected, rtol=1e-4, atol=1e-5)


def test_resize_to(files: tuple[Path, Path]) -> None:
    m = L.load_lpips(backbone_path=files[0], heads_path=files[1], resize_to=128)
    x, y = _imgs(0, size=32), _imgs(1, size=32)
    d = m(x, y)
    up = lambda z: F.interpolate(z, size=(128, 128), mode="bilinear", align_corners=False)  # noqa: E731
    plain = L.load_lpips(backbone_path=files[0], heads_path=files[1])
    assert torch.allclose(d, plain(up(x), up(y)))
    with pytest.raises(ValueError, match="resize_to"):
        plain(x[..., :16, :16], y[..., :16, :16])


def test_env_vars_and_alt_key_formats(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bb, hd = isolated / "bb.pth", isolated / "hd.pth"
    torch.save({k[len("features."):]: v for k, v in _backbone_sd().items() if k.startswith("features.")}, bb)
    torch.save({k.replace(".model.1", ""): v for k, v in _heads_sd().items()}, hd)
    monkeypatch.setenv(L.BACKBONE_ENV, str(bb))
    monkeypatch.setenv(L.HEADS_ENV, str(hd))
    assert L.lpips_available()
    m = L.load_lpips()
    x, y = _imgs(0), _imgs(1)
    assert (m(x, y) > 0).all()
    assert len(m.weights_fingerprint) == 12


def test_fingerprint_tracks_files(files: tuple[Path, Path], isolated: Path) -> None:
    a = L.load_lpips(backbone_path=files[0], heads_path=files[1]).weights_fingerprint
    other = isolated / "heads2.pth"
    torch.save(_heads_sd(seed=7), other)
    b = L.load_lpips(backbone_path=files[0], heads_path=other).weights_fingerprint
    assert a != b and len(a) == 12


def test_cache_discovery(isolated: Path) -> None:
    assert not L.lpips_available()
    hub = isolated / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(_backbone_sd(), hub / L.BACKBONE_FILE)
    assert not L.lpips_available()
    cache = isolated / "lfcache" / "lpips"
    cache.mkdir(parents=True)
    torch.save(_heads_sd(), cache / L.HEADS_FILE)
    assert L.lpips_available()
    assert L.load_lpips().weights_fingerprint


def test_missing_raises_one_line(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not L.lpips_available()
    with pytest.raises(WeightsUnavailableError) as e:
        L.load_lpips()
    msg = str(e.value)
    assert L.BACKBONE_ENV in msg and "\n" not in msg and L.BACKBONE_FILE in msg
    torch.save(_backbone_sd(), isolated / "bb.pth")
    monkeypatch.setenv(L.BACKBONE_ENV, str(isolated / "bb.pth"))
    monkeypatch.setenv(L.HEADS_ENV, str(isolated / "nope.pth"))
    assert not L.lpips_available()
    with pytest.raises(WeightsUnavailableError, match=L.HEADS_ENV):
        L.load_lpips(allow_download=True)  # a named path is never replaced by a download


def test_download_failure_is_wrapped(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(kind: str) -> Path:
        raise OSError("network\nunreachable")

    monkeypatch.setattr(L, "_download", boom)
    with pytest.raises(WeightsUnavailableError, match="download failed") as e:
        L.load_lpips(allow_download=True)
    assert "\n" not in str(e.value)


def test_wrong_shape_or_garbage_checkpoint(files: tuple[Path, Path], isolated: Path) -> None:
    bad = _heads_sd()
    bad["lin2.model.1.weight"] = torch.rand(1, 100, 1, 1)
    torch.save(bad, isolated / "bad_heads.pth")
    with pytest.raises(CheckpointError, match="lin2.weight"):
        L.load_lpips(backbone_path=files[0], heads_path=isolated / "bad_heads.pth")
    sd = _backbone_sd()
    sd["features.3.weight"] = torch.rand(192, 64, 3, 3)
    torch.save(sd, isolated / "bad_bb.pth")
    with pytest.raises(CheckpointError, match="features.3.weight"):
        L.load_lpips(backbone_path=isolated / "bad_bb.pth", heads_path=files[1])
    (isolated / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(LatentforgeError):
        L.load_lpips(backbone_path=isolated / "junk.pth", heads_path=files[1])


def test_auto_perceptual_picks_lpips_when_weights_exist(files: tuple[Path, Path], isolated: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from latentforge.config import LossConfig
    from latentforge.losses.reconstruction import build_reconstruction_loss

    with pytest.warns(UserWarning, match="Laplacian"):
        fallback = build_reconstruction_loss(LossConfig(perceptual="auto"), channels=3)
    assert fallback.describe()["perceptual"] == "laplacian"
    monkeypatch.setenv(L.BACKBONE_ENV, str(files[0]))
    monkeypatch.setenv(L.HEADS_ENV, str(files[1]))
    loss = build_reconstruction_loss(LossConfig(perceptual="auto", lpips_resize=64), channels=1)
    d = loss.describe()
    assert d["perceptual"] == "lpips-alex" and d["pixel"] == "none" and len(d["perceptual_weights_fingerprint"]) == 12
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    total, terms = loss(x, x.flip(-1))
    assert total.shape == (2,) and (total > 0).all() and set(terms) == {"lpips-alex"}
    assert torch.allclose(loss(x, x)[0], torch.zeros(2), atol=1e-6)
