"""Toy experiments for "Complexity Matters" (Hu et al. 2023): a data-dependent latent reaches a given Wasserstein distance with a smaller MLP
generator than N(0, I).

The recipe, kept deterministic and CPU-cheap so that tests can run it:

* **data**: a ring of 8 Gaussians or two moons in 2-D; a fixed training sample and a held-out evaluation sample.
* **latents**: ``gaussian`` N(0, I_d), and two data-dependent ones fitted on the training sample: ``gmm`` (a Gaussian
  mixture, sampled) and ``empirical`` (training points plus small Gaussian noise). A data-dependent latent already
  looks like the data, so the generator only has to learn a near-identity map, which a tiny ReLU MLP can represent
  (width 4 suffices for the identity in 2-D: x = relu(x) - relu(-x) per coordinate). From N(0, I) the generator
  must itself tear the Gaussian into 8 separated modes, which takes more units. The ``empirical`` latent copies the
  training set, so a low distance from it says nothing about generating *new* points (it memorises).
* **generator**: the same MLP for every latent, widths scaled; the parameter count is exact (``n_params``).
* **training**: minimise the exact minibatch optimal-transport loss W2^2 between a batch of G(z) and a data batch:
  the plan comes from ``ot.emd`` on the detached squared-distance cost, and the gradient flows through the cost with
  the plan fixed (envelope theorem: this is the gradient of the minibatch W2^2). This is the idealised
  "best critic" version of the GAN-induced distance: a GAN's critic only approximates this transport cost, here it
  is computed exactly. Minibatch OT is biased (two batches from the same distribution are at a positive distance),
  so the minimiser is close to, not exactly, the data distribution.
* **evaluation**: exact W2 (``ot.emd2`` on the squared Euclidean cost, then sqrt) between ``n_eval`` generated and
  ``n_eval`` held-out data points, with fixed seeds, averaged over a few generated draws. It has a floor above 0
  (``w2_floor``): pick eps above it. The minibatch loss cannot resolve structure finer than its own floor at the
  batch size either: on two moons the best generators reach W2 of about 0.09, against an evaluation floor of 0.036.

A 1-D case with a closed-form answer checks the estimators: in 1-D the monotone (quantile) map is optimal and
W2^2 = integral_0^1 (F^-1(u) - G^-1(u))^2 du, closed form for Gaussians.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import ot
import torch
from scipy import stats
from sklearn.datasets import make_moons
from sklearn.mixture import GaussianMixture
from torch import nn

from latentforge.complexity.ceps import CurvePoint

# Data sample seeds: the training and held-out samples are the same for every run seed and every latent.
TRAIN_SEED, EVAL_SEED = 0, 1


# ---------------------------------------------------------------------------------------------------------- data

def ring_of_gaussians(n: int, k: int = 8, radius: float = 2.0, std: float = 0.05, seed: int = 0) -> np.ndarray:
    """n points from k equal-weight isotropic Gaussians (std ``std``) centred evenly on a circle of ``radius``."""
    rng = np.random.default_rng(seed)
    angle = 2 * np.pi * rng.integers(0, k, size=n) / k
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + std * rng.standard_normal((n, 2))


def two_moons(n: int, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """n points of scikit-learn's two interleaving half circles, with Gaussian noise of std ``noise``."""
    return make_moons(n_samples=n, noise=noise, random_state=seed)[0]


DATASETS: dict[str, Callable[..., np.ndarray]] = {"ring": ring_of_gaussians, "moons": two_moons}


# ------------------------------------------------------------------------------------------------------- latents

@dataclass(frozen=True)
class Latent:
    """A latent distribution: ``sample(n, rng)`` returns an (n, dim) float array drawn with the numpy Generator rng."""

    name: str
    dim: int
    sample: Callable[[int, np.random.Generator], np.ndarray]


def gaussian_latent(dim: int = 2) -> Latent:
    """N(0, I_dim), the data-independent baseline."""
    return Latent("gaussian", dim, lambda n, rng: rng.standard_normal((n, dim)))


def gmm_latent(train: np.ndarray, k: int = 8, seed: int = 0) -> Latent:
    """A k-component full-covariance Gaussian mixture fitted on the training sample (a fitted prior, new points).

    Sampling is done here with the caller's rng (component by weight, then mean + L eps), because
    ``GaussianMixture.sample`` reuses its fixed random_state and would return the same points on every call.
    """
    gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed).fit(train)
    chol = np.linalg.cholesky(gm.covariances_)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(k, size=n, p=gm.weights_)
        eps = rng.standard_normal((n, train.shape[1]))
        return gm.means_[comp] + np.einsum("nij,nj->ni", chol[comp], eps)

    return Latent("gmm", train.shape[1], sample)


def empirical_latent(train: np.ndarray, noise: float = 0.05) -> Latent:
    """Training points drawn uniformly with replacement, plus N(0, noise^2 I): memorises the training sample."""
    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return train[rng.integers(0, len(train), size=n)] + noise * rng.standard_normal((n, train.shape[1]))

    return Latent("empirical", train.shape[1], sample)


def make_latent(name: str, train: np.ndarray) -> Latent:
    """Latent by name (``gaussian``, ``gmm``, ``empirical``), with the dimension of the data and default settings."""
    if name == "gaussian":
        return gaussian_latent(train.shape[1])
    if name == "gmm":
        return gmm_latent(train)
    if name == "empirical":
        return empirical_latent(train)
    raise ValueError(f"unknown latent {name!r}; choose from gaussian, gmm, empirical")


# ----------------------------------------------------------------------------------------------------- generator

def mlp_generator(latent_dim: int, width: int, depth: int = 2, out_dim: int = 2) -> nn.Sequential:
    """ReLU MLP with ``depth`` hidden layers of ``width`` units: latent_dim -> width (-> width)* -> out_dim.

    Parameters: latent_dim*w + w + (depth-1)*(w*w + w) + w*out_dim + out_dim (weights and biases).
    """
    if depth < 1 or width < 1:
        raise ValueError(f"mlp_generator: need depth >= 1 and width >= 1, got depth={depth}, width={width}")
    layers: list[nn.Module] = [nn.Linear(latent_dim, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def n_params(module: nn.Module) -> int:
    """Exact number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------- transport, W2

def ot_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact minibatch W2^2 between the rows of x and y (uniform weights), differentiable in x and y.

    The optimal plan is solved on the detached squared-distance cost and held fixed; the gradient of
    sum(plan * cost) with the plan fixed is the gradient of the optimal value (envelope theorem).
    """
    cost = torch.cdist(x, y) ** 2
    a = np.full(len(x), 1 / len(x))
    b = np.full(len(y), 1 / len(y))
    plan = ot.emd(a, b, cost.detach().double().cpu().numpy())
    return (torch.as_tensor(plan, dtype=cost.dtype, device=cost.device) * cost).sum()


def w2(x: np.ndarray, y: np.ndarray) -> float:
    """Exact W2 between two empirical distributions (uniform weights): sqrt of ``ot.emd2`` on the squared cost."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    cost = ot.dist(x, y, metric="sqeuclidean")
    value = ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost, numItermax=10_000_000)
    return float(np.sqrt(max(value, 0.0)))


def w2_floor(data: str = "ring", n_eval: int = 1000, draws: int = 1) -> float:
    """Mean W2 between the held-out sample and ``draws`` fresh samples of the data itself, each of size n_eval.

    This is the metric's floor: a perfect generator scores about this, not 0, and a target eps below it is out of
    reach for every latent. On the ring it is large (0.3-0.36 at n_eval=1000, +-0.05 per draw): the 8 mode counts
    of two samples differ by a few percent, and that mass must travel between modes 1.5 apart.
    """
    make = DATASETS[data]
    held_out = make(n_eval, seed=EVAL_SEED)
    return float(np.mean([w2(make(n_eval, seed=EVAL_SEED + 1000 + i), held_out) for i in range(draws)]))


# ----------------------------------------------------------------------------------------------------- training

def train_generator(gen: nn.Module, latent: Latent, train: np.ndarray, *, steps: int = 500, batch: int = 256,
                    lr: float = 5e-3, seed: int = 0) -> nn.Module:
    """Train ``gen`` in place with Adam on ``ot_loss(G(z), data batch)``; deterministic for a given seed.

    ``seed`` drives the latent draws and the data batches (numpy); the initial weights are the caller's (build the
    generator after ``torch.manual_seed``), and the training sample is fixed by the caller. The learning rate decays
    to 0 by cosine over ``steps``, so the last steps average out the minibatch noise.

    Runs with one torch thread (restored afterwards): the tensors are tiny, so intra-op threads only add
    synchronisation, and with another process busy on the same cores they made each step 20-30x slower.
    """
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(gen.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    data = torch.as_tensor(train, dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            z = torch.as_tensor(latent.sample(batch, rng), dtype=torch.float32)
            y = data[torch.as_tensor(rng.integers(0, len(data), size=batch))]
            loss = ot_loss(gen(z), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    return gen


def evaluate_generator(gen: nn.Module, latent: Latent, held_out: np.ndarray, seed: int = 0, draws: int = 1) -> float:
    """Mean over ``draws`` independent generated samples of the exact W2 between len(held_out) generated points and
    held_out; the latent draws come from a fixed, seed-derived rng, so every width of a seed sees the same z."""
    rng = np.random.default_rng([seed, EVAL_SEED])
    values = []
    with torch.no_grad():
        for _ in range(draws):
            fake = gen(torch.as_tensor(latent.sample(len(held_out), rng), dtype=torch.float32)).numpy()
            values.append(w2(fake, held_out))
    return float(np.mean(values))


def run_toy_sweep(data: str = "ring", latents: Sequence[str] = ("gaussian", "gmm"),
                  widths: Sequence[int] = (4, 8, 16, 32, 64), seeds: Sequence[int] = (0,), *, steps: int = 500,
                  batch: int = 256, depth: int = 2, lr: float = 5e-3, n_train: int = 4096,
                  n_eval: int = 1000, eval_draws: int = 4) -> dict[str, list[CurvePoint]]:
    """Train and score one MLP generator per (latent, width, seed); returns {latent: [CurvePoint]} for ``ceps``.

    Every latent gets the same data samples, architecture family, step budget and evaluation; only the latent differs.
    Each value is the W2 averaged over ``eval_draws`` generated samples of n_eval: on the ring one draw of 1000 varies
    by about +-0.05-0.08 (mode-count noise), as much as the gap between neighbouring widths.
    """
    if data not in DATASETS:
        raise ValueError(f"unknown data {data!r}; choose from {sorted(DATASETS)}")
    train = DATASETS[data](n_train, seed=TRAIN_SEED)
    held_out = DATASETS[data](n_eval, seed=EVAL_SEED)
    curves: dict[str, list[CurvePoint]] = {}
    for name in latents:
        latent = make_latent(name, train)
        curves[name] = []
        for width in widths:
            for seed in seeds:
                torch.manual_seed(seed)  # the initial weights depend on the seed only
                gen = mlp_generator(latent.dim, width, depth=depth, out_dim=train.shape[1])
                train_generator(gen, latent, train, steps=steps, batch=batch, lr=lr, seed=seed)
                value = evaluate_generator(gen, latent, held_out, seed, eval_draws)
                curves[name].append(CurvePoint(n_params(gen), value, seed))
    return curves


# ------------------------------------------------------------------------------------------ 1-D, closed form

def w2_gaussians_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    """Closed form: W2(N(m1, s1^2), N(m2, s2^2)) = sqrt((m1 - m2)^2 + (s1 - s2)^2)."""
    return float(np.hypot(m1 - m2, s1 - s2))


def w2_quantiles_1d(ppf1: Callable[[np.ndarray], np.ndarray], ppf2: Callable[[np.ndarray], np.ndarray],
                    n_grid: int = 200_000) -> float:
    """W2 between two 1-D laws from their quantile functions: sqrt(integral_0^1 (ppf1(u) - ppf2(u))^2 du).

    Midpoint rule on n_grid cells, which never evaluates the (possibly infinite) quantiles at 0 or 1. The tails cost
    accuracy: 3e-7 relative for N(0, 1) vs N(1.5, 0.5^2) at the default grid.
    """
    u = (np.arange(n_grid) + 0.5) / n_grid
    return float(np.sqrt(np.mean((ppf1(u) - ppf2(u)) ** 2)))


def w2_sorted_1d(x: np.ndarray, y: np.ndarray) -> float:
    """Empirical 1-D W2 for equal sample sizes: match sorted samples (the monotone map is optimal in 1-D)."""
    x, y = np.sort(np.ravel(x)), np.sort(np.ravel(y))
    if len(x) != len(y):
        raise ValueError("w2_sorted_1d: equal sample sizes needed (use ot.emd2_1d otherwise)")
    return float(np.sqrt(np.mean((x - y) ** 2)))


def monotone_map(ppf: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The optimal 1-D transport map from N(0, 1) to the law with quantile function ppf: T(z) = ppf(Phi(z))."""
    return lambda z: ppf(stats.norm.cdf(z))


def fit_affine_1d(m: float, s: float, *, steps: int = 200, batch: int = 128, lr: float = 5e-2, n_train: int = 4096,
                  seed: int = 0) -> tuple[float, float]:
    """Train the 2-parameter generator G(z) = a z + b from N(0, 1) to N(m, s^2) data with the toy loop; return (a, b).

    The optimal (monotone) map is a = s, b = m. The W2 loss only sees the law of G(z), which is N(b, a^2), so its
    population value is sqrt((b - m)^2 + (|a| - s)^2): z -> m - s z is an equally good minimiser. Starting from the
    identity (a = 1, b = 0), a never needs to cross 0, and training lands on the monotone map.
    """
    train = m + s * np.random.default_rng(TRAIN_SEED).standard_normal((n_train, 1))
    gen = nn.Linear(1, 1)
    with torch.no_grad():
        gen.weight.fill_(1.0)
        gen.bias.zero_()
    train_generator(gen, gaussian_latent(1), train, steps=steps, batch=batch, lr=lr, seed=seed)
    return float(gen.weight.item()), float(gen.bias.item())
