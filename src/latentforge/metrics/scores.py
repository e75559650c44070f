"""Feature-space metric math on float64 arrays of shape (N, D): FID, KID, Inception Score, precision/recall/density/
coverage. Pure numpy/scipy and small enough to audit line by line; the feature network that produced the arrays is
the caller's business (and must be named wherever a number is reported). Each function cites the implementation it
reproduces; tests/test_scores.py checks them against closed forms and against torchmetrics (and pytorch-fid / prdc
when those happen to be importable)."""
from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.special import log_softmax


def _as2d(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) array, got shape {x.shape}")
    return x


def gaussian_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (ddof=1) covariance of (N, D) features, as pytorch-fid's calculate_activation_statistics."""
    f = _as2d(feats)
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, method: str = "eigh") -> float:
    """||mu1-mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) (Heusel et al. 2017).

    method="eigh" (default): Tr sqrtm(S1 S2) = sum of sqrt(eigenvalues of S1^1/2 S2 S1^1/2), a symmetric PSD matrix,
    by two symmetric eigendecompositions: faster than a general sqrtm at D=2048 (benchmarks/eval_cost.py) and exact
    for singular covariances (N < D). method="sqrtm": pytorch-fid's calculate_frechet_distance step for step (scipy sqrtm of the
    non-symmetric product, eps retry, imaginary-part check); both agree to ~1e-9 on well-conditioned inputs."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("mean vectors / covariance matrices have different shapes")
    diff = mu1 - mu2
    if method == "eigh":
        w, v = linalg.eigh(sigma1)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = root1 @ sigma2 @ root1
        tr_covmean = np.sqrt(np.clip(linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
        return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
    if method != "sqrtm":
        raise ValueError(f"unknown method {method!r}: use 'eigh' or 'sqrtm'")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # product (nearly) singular: regularise both covariances and retry
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):  # numerical error can leave a small imaginary part; a large one is a real problem
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(feats_a, feats_b) -> float:
    """FID between two (N, D) feature sets (Heusel et al. 2017), via gaussian_stats + frechet_distance."""
    return frechet_distance(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


def poly_mmd2(x, y) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b/D + 1)^3 (Binkowski et al. 2018; torch-fidelity/torchmetrics poly_mmd)."""
    x, y = _as2d(x), _as2d(y)
    d, m, n = x.shape[1], len(x), len(y)
    def cube(a: np.ndarray) -> np.ndarray:  # a*a*a: numpy's generic ** 3 is much slower on large matrices
        return a * a * a

    kxx, kyy, kxy = cube((x @ x.T) / d + 1), cube((y @ y.T) / d + 1), cube((x @ y.T) / d + 1)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.sum() / (m * n))


def kid(feats_real, feats_fake, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID mean and std (ddof=0) of poly_mmd2 over random equal-size subsets, as torch-fidelity / torchmetrics."""
    real, fake = _as2d(feats_real), _as2d(feats_fake)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    scores = [poly_mmd2(real[rng.choice(len(real), m, replace=False)], fake[rng.choice(len(fake), m, replace=False)])
              for _ in range(n_subsets)]
    return float(np.mean(scores)), float(np.std(scores))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))) per split (Salimans et al. 2016); mean and std (ddof=1) as torchmetrics.

    Splits are contiguous, in the given order (no shuffle), at i*N//splits as in the original code and torch-fidelity;
    this equals torchmetrics' torch.chunk split when N is divisible by `splits` (pre-shuffle if order is meaningful).
    The std uses ddof=1 as torchmetrics does (torch-fidelity and the original use ddof=0); one split gives std 0.0
    (torchmetrics gives nan)."""
    logp = log_softmax(_as2d(logits), axis=1)
    n = len(logp)
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, {n}]")
    scores = []
    for i in range(splits):
        part = logp[i * n // splits:(i + 1) * n // splits]
        log_py = np.log(np.exp(part).mean(axis=0))
        scores.append(np.exp((np.exp(part) * (part - log_py)).sum(axis=1).mean()))
    std = float(np.std(scores, ddof=1)) if splits > 1 else 0.0
    return float(np.mean(scores)), std


def _dists(a, b, a_sq, b_sq) -> np.ndarray:
    return np.sqrt(np.maximum(a_sq[:, None] + b_sq[None, :] - 2 * (a @ b.T), 0.0))


def _knn_radii(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    sq = (x * x).sum(1)
    radii = np.empty(len(x))
    for s in range(0, len(x), chunk):
        d = _dists(x[s:s + chunk], x, sq[s:s + chunk], sq)
        d[np.arange(len(d)), np.arange(s, s + len(d))] = 0.0  # self at distance 0, so index k is the k-th other
        radii[s:s + chunk] = np.partition(d, k, axis=1)[:, k]
    return radii


def prdc(real, fake, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020), as clovaai's prdc."""
    real, fake = _as2d(real), _as2d(fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"prdc needs more than k={k} samples in each set")
    r_real, r_fake = _knn_radii(real, k, chunk), _knn_radii(fake, k, chunk)
    real_sq, fake_sq = (real * real).sum(1), (fake * fake).sum(1)
    in_real_ball = np.zeros(len(fake), dtype=bool)   # precision: fake inside some real k-NN ball
    n_real_balls = np.zeros(len(fake))                # density: how many real k-NN balls contain the fake
    recalled = np.empty(len(real), dtype=bool)        # recall: real inside some fake k-NN ball
    covered = np.empty(len(real), dtype=bool)         # coverage: nearest fake inside the real's own ball
    for s in range(0, len(real), chunk):
        d = _dists(real[s:s + chunk], fake, real_sq[s:s + chunk], fake_sq)
        inside = d < r_real[s:s + chunk, None]
        in_real_ball |= inside.any(0)
        n_real_balls += inside.sum(0)
        recalled[s:s + chunk] = (d < r_fake[None, :]).any(1)
        covered[s:s + chunk] = d.min(1) < r_real[s:s + chunk]
    return {"precision": float(in_real_ball.mean()), "recall": float(recalled.mean()),
            "density": float(n_real_balls.mean() / k), "coverage": float(covered.mean())}
