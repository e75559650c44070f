"""Metric math in latentforge.metrics.scores, checked against closed forms, independent computations and reference
implementations (torchmetrics and prdc come with the dev extra; pytorch-fid, which needs torchvision, is used only
when importable)."""
import importlib
import importlib.util
import types

import numpy as np
import pytest
import torch
from scipy import linalg

from latentforge.metrics import scores
from latentforge.metrics.scores import (fid_from_features, frechet_distance, gaussian_stats, inception_score, kid,
                                        poly_mmd2, prdc)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Metric `.*` will save all extracted features:UserWarning"),
    pytest.mark.filterwarnings("ignore:std\\(\\)\\W+degrees of freedom:UserWarning"),  # torchmetrics IS, one split
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # pytorch-fid passes sqrtm(disp=False)
]


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _feats(seed, n=400, d=16, shift=0.0):
    mix = np.random.default_rng(12345).normal(size=(d, d)) / np.sqrt(d) + np.eye(d)  # one shared distribution
    return np.random.default_rng(seed).normal(size=(n, d)) @ mix + shift


# ---------------------------------------------------------------- FID

def test_gaussian_stats_matches_numpy():
    f = _feats(0)
    mu, sigma = gaussian_stats(f)
    np.testing.assert_allclose(mu, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, (f - f.mean(0)).T @ (f - f.mean(0)) / (len(f) - 1), rtol=1e-10)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_closed_form_diagonal_and_commuting(method):
    rng = np.random.default_rng(1)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
    expected = ((mu1 - mu2) ** 2).sum() + (a + b - 2 * np.sqrt(a * b)).sum()
    assert _rel(frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method), expected) < 1e-6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # same eigenvectors -> commuting covariances, same closed form
    assert _rel(frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T, method=method),
                expected) < 1e-6


def _sym_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_vs_symmetric_form_on_random_features():
    a, b = _feats(2, n=600, d=24), _feats(3, n=500, d=24, shift=0.3) * 1.2
    (m1, s1), (m2, s2) = gaussian_stats(a), gaussian_stats(b)
    h = _sym_sqrt(s1)  # Tr sqrtm(s1 s2) = Tr sqrtm(s1^1/2 s2 s1^1/2), the latter symmetric PSD
    expected = ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(_sym_sqrt(h @ s2 @ h))
    assert _rel(fid_from_features(a, b), expected) < 1e-6
    rng = np.random.default_rng(4)
    c1, c2 = _random_cov(rng, 20), _random_cov(rng, 20)
    h = _sym_sqrt(c1)
    expected = np.trace(c1) + np.trace(c2) - 2 * np.trace(_sym_sqrt(h @ c2 @ h))
    assert _rel(frechet_distance(np.zeros(20), c1, np.zeros(20), c2), expected) < 1e-6
    assert _rel(frechet_distance(np.zeros(20), c1, np.zeros(20), c2, method="sqrtm"), expected) < 1e-6


def test_eigh_and_pytorch_fid_style_sqrtm_agree():
    a, b = _feats(11, n=800, d=64), _feats(12, n=700, d=64, shift=0.2) * 1.1
    (m1, s1), (m2, s2) = gaussian_stats(a), gaussian_stats(b)
    assert _rel(frechet_distance(m1, s1, m2, s2), frechet_distance(m1, s1, m2, s2, method="sqrtm")) < 1e-9
    with pytest.raises(ValueError, match="unknown method"):
        frechet_distance(m1, s1, m2, s2, method="svd")


def test_frechet_identical_symmetric_and_mean_shift():
    a, b = _feats(5), _feats(6, shift=0.5)
    assert abs(fid_from_features(a, a)) < 1e-8
    assert _rel(fid_from_features(a, b), fid_from_features(b, a)) < 1e-9
    shift = np.linspace(-1, 2, a.shape[1])
    mu, sigma = gaussian_stats(a)
    assert _rel(frechet_distance(mu, sigma, mu + shift, sigma), (shift ** 2).sum()) < 1e-8
    assert _rel(fid_from_features(a, a + shift), (shift ** 2).sum()) < 1e-8


def test_frechet_singular_offset_and_imaginary_guard(monkeypatch):
    a, b = _feats(7, n=10, d=32), _feats(8, n=10, d=32)  # N < D: singular covariances
    assert np.isfinite(fid_from_features(a, b))
    calls = []

    def nan_then_real(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else linalg.sqrtm(m)

    monkeypatch.setattr(scores, "linalg", types.SimpleNamespace(sqrtm=nan_then_real))
    s1, s2 = np.diag([1.0, 0.0]), np.diag([0.0, 4.0])
    out = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-6, method="sqrtm")
    assert len(calls) == 2 and np.allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert abs(out - 5.0) < 1e-2
    monkeypatch.setattr(scores, "linalg", types.SimpleNamespace(sqrtm=lambda m: m + 0.5j))
    with pytest.raises(ValueError, match="Imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="sqrtm")
    monkeypatch.setattr(scores, "linalg", types.SimpleNamespace(sqrtm=lambda m: m + 1e-9j))
    assert abs(frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="sqrtm")) < 1e-12


# ---------------------------------------------------------------- reference implementations

# Import the classes from their submodules: torchmetrics.image only re-exports them when torch-fidelity is installed,
# but with a custom `feature` module they need neither torch-fidelity nor torchvision.
_REASON = "torchmetrics is the reference (pip install -e .[dev])"
tm_fid = pytest.importorskip("torchmetrics.image.fid", reason=_REASON)
tm_kid = pytest.importorskip("torchmetrics.image.kid", reason=_REASON)
tm_is = pytest.importorskip("torchmetrics.image.inception", reason=_REASON)


class _Given(torch.nn.Module):
    """Feature 'network' that returns its input, so torchmetrics sees exactly our feature arrays."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def test_fid_matches_torchmetrics():
    a, b = _feats(10, n=500, d=32), _feats(11, n=450, d=32, shift=0.2) * 0.9
    m = tm_fid.FrechetInceptionDistance(feature=_Given(32))
    m.update(torch.from_numpy(a), real=True)
    m.update(torch.from_numpy(b), real=False)
    ref = float(m.compute())
    assert _rel(fid_from_features(a, b), ref) < 1e-6


def test_kid_matches_torchmetrics_full_set_and_reproduced_subsets():
    a, b = _feats(12, n=120, d=16), _feats(13, n=120, d=16, shift=0.3)
    m = tm_kid.KernelInceptionDistance(feature=_Given(16), subsets=1, subset_size=120)
    m.update(torch.from_numpy(a), real=True)
    m.update(torch.from_numpy(b), real=False)
    ref_mean, _ = m.compute()
    ours, std = kid(a, b, n_subsets=1, subset_size=1000)  # clipped to the full set: subset order is irrelevant
    assert _rel(ours, float(ref_mean)) < 1e-6 and std == 0.0
    # Several subsets: replay torchmetrics' torch.randperm draws and score the same subsets with poly_mmd2.
    m = tm_kid.KernelInceptionDistance(feature=_Given(16), subsets=6, subset_size=40)
    m.update(torch.from_numpy(a), real=True)
    m.update(torch.from_numpy(b), real=False)
    torch.manual_seed(123)
    ref_mean, ref_std = m.compute()
    torch.manual_seed(123)
    mine = []
    for _ in range(6):
        pr, pf = torch.randperm(len(a))[:40].numpy(), torch.randperm(len(b))[:40].numpy()
        mine.append(poly_mmd2(a[pr], b[pf]))
    assert _rel(np.mean(mine), float(ref_mean)) < 1e-6
    assert _rel(np.std(mine), float(ref_std)) < 1e-6  # both ddof=0


def test_inception_score_matches_torchmetrics():
    rng = np.random.default_rng(14)
    logits = rng.normal(size=(200, 10)) * 3
    m = tm_is.InceptionScore(feature=_Given(10), splits=1)
    m.update(torch.from_numpy(logits))
    ref_mean, _ = m.compute()  # one split: torchmetrics' std is nan (ddof=1), ours 0.0
    mean, std = inception_score(logits, splits=1)
    assert _rel(mean, float(ref_mean)) < 1e-9 and std == 0.0
    m = tm_is.InceptionScore(feature=_Given(10), splits=5)
    m.update(torch.from_numpy(logits))
    torch.manual_seed(7)
    ref_mean, ref_std = m.compute()
    torch.manual_seed(7)
    order = torch.randperm(len(logits)).numpy()  # torchmetrics shuffles before its torch.chunk split
    mean, std = inception_score(logits[order], splits=5)
    assert _rel(mean, float(ref_mean)) < 1e-9 and _rel(std, float(ref_std)) < 1e-9


def _import_or_skip(module, reason):
    if importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"{module} not installed ({reason})")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # pytorch-fid imports torchvision at import time, which is absent/broken here
        pytest.skip(f"{module} not importable: {exc!r}")


def test_frechet_matches_pytorch_fid_if_importable():
    ref = _import_or_skip("pytorch_fid.fid_score", "optional reference")
    a, b = _feats(15, n=500, d=32), _feats(16, n=500, d=32, shift=0.1)
    (m1, s1), (m2, s2) = gaussian_stats(a), gaussian_stats(b)
    expected = ref.calculate_frechet_distance(m1, s1, m2, s2)
    assert _rel(frechet_distance(m1, s1, m2, s2, method="sqrtm"), float(expected)) < 1e-9
    assert _rel(frechet_distance(m1, s1, m2, s2), float(expected)) < 1e-6


def test_prdc_matches_reference_package_if_importable():
    ref = _import_or_skip("prdc", "in the dev extra: pip install -e .[dev]")
    real, fake = _feats(17, n=300, d=8), _feats(18, n=250, d=8, shift=0.4)
    expected = ref.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    ours = prdc(real, fake, k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert abs(ours[key] - expected[key]) < 1e-12, key


# ---------------------------------------------------------------- PRDC

def test_prdc_identical_and_disjoint():
    real = _feats(19, n=200, d=8)
    same = prdc(real, real.copy(), k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(real, _feats(20, n=150, d=8, shift=100.0), k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_hand_computed_1d_and_2d():
    # 1-D, k=1: real radii are all 1; fake 0.5 lies in the balls of reals 0 and 1, fake 10 in none;
    # fake radii are 9.5 (to each other), so every real is recalled; only reals 0 and 1 have a fake within 1.
    out = prdc(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[0.5], [10.0]]), k=1)
    assert out == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5}
    # 2-D, k=1: unit-square corners (radii 1); the centre is within 0.707 of all four, (3, 3) of none.
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = prdc(square, np.array([[0.5, 0.5], [3.0, 3.0]]), k=1)
    assert out == {"precision": 0.5, "recall": 1.0, "density": 2.0, "coverage": 1.0}


def test_prdc_chunking_does_not_change_result():
    real, fake = _feats(21, n=130, d=6), _feats(22, n=110, d=6, shift=0.3)
    assert prdc(real, fake, k=3, chunk=7) == prdc(real, fake, k=3)


# ---------------------------------------------------------------- KID

def test_kid_same_distribution_near_zero_shifted_positive():
    a, b = _feats(23, n=600, d=16), _feats(24, n=600, d=16)
    shifted = _feats(24, n=600, d=16, shift=0.5)
    same_mean, _ = kid(a, b, n_subsets=20, subset_size=300)
    shift_mean, shift_std = kid(a, shifted, n_subsets=20, subset_size=300)
    assert shift_mean > 0 and shift_mean > 3 * shift_std
    assert abs(same_mean) < 0.05 * shift_mean
    assert kid(a, b, n_subsets=5, subset_size=100, seed=3) == kid(a, b, n_subsets=5, subset_size=100, seed=3)


# ---------------------------------------------------------------- IS

def test_inception_score_uniform_and_confident():
    mean, std = inception_score(np.zeros((50, 7)), splits=5)
    assert abs(mean - 1.0) < 1e-12 and std < 1e-12
    k = 8
    logits = np.tile(60.0 * np.eye(k), (6, 1))  # 48 confident predictions, every class equally often per split
    mean, std = inception_score(logits, splits=3)
    assert abs(mean - k) < 1e-9 and std < 1e-9
