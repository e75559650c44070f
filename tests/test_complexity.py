"""C_eps / AUC on hand-made curves, and the toy experiments of SPEC section 2 (ring of Gaussians, 1-D closed forms).

The toy margins were measured first: on the ring, with the cheap recipe below, C_eps at eps=0.5 was 76 params for
``gmm`` and 594 for ``gaussian`` with seed 0 (seeds 1 and 2: 64/441 and 102/765).
"""
import math

import numpy as np
import ot
import pytest
from scipy import stats

from latentforge.complexity import CurvePoint, aggregate, area_under_curve, c_eps, rank_latents, toy


def curve(pairs, seed=None):
    return [CurvePoint(p, v, seed) for p, v in pairs]


# ------------------------------------------------------------------------------------------- hand-made curves

def test_aggregate_means_and_std_over_seeds():
    pts = curve([(100, 1.0), (10, 3.0)], seed=0) + curve([(100, 2.0), (10, 3.0)], seed=1) + [CurvePoint(1000, 0.5)]
    rows = aggregate(pts)
    assert [r["params"] for r in rows] == [10, 100, 1000]
    assert rows[1] == {"params": 100, "mean": 1.5, "std": pytest.approx(math.sqrt(0.5)), "n": 2}
    assert rows[0]["std"] == 0.0 and rows[2]["n"] == 1


def test_c_eps_interpolates_in_log_params():
    pts = curve([(10, 1.0), (1000, 0.2), (10_000, 0.1)])
    out = c_eps(pts, 0.6)  # halfway in value between 10 and 1000 -> geometric mean, 100
    assert out["reached"] and out["bracketed"]
    assert out["params"] == pytest.approx(100.0, rel=1e-12)
    t = (1.0 - 0.3) / (1.0 - 0.2)
    assert c_eps(pts, 0.3)["params"] == pytest.approx(10 ** (1 + 2 * t), rel=1e-12)
    assert c_eps(pts, 0.2)["params"] == pytest.approx(1000.0)  # exactly at a measured point


def test_c_eps_first_point_and_not_reached():
    pts = curve([(50, 0.4), (500, 0.3)])
    first = c_eps(pts, 0.5)
    assert first["reached"] and not first["bracketed"] and first["params"] == 50.0
    assert "smallest size" in first["note"]
    miss = c_eps(pts, 0.1)
    assert not miss["reached"] and miss["params"] is None and "not reached" in miss["note"]


def test_c_eps_monotone_in_eps_on_a_noisy_curve():
    pts = curve([(10, 0.9), (30, 0.7), (100, 0.75), (300, 0.4), (1000, 0.35)], seed=0)
    pts += curve([(10, 0.8), (30, 0.6), (100, 0.65), (300, 0.45), (1000, 0.3)], seed=1)
    previous = 0.0
    for eps in np.linspace(1.0, 0.2, 81):  # decreasing eps: C_eps must not decrease; not-reached counts as infinite
        out = c_eps(pts, float(eps))
        value = out["params"] if out["reached"] else math.inf
        assert value >= previous
        previous = value
    assert previous == math.inf


def test_auc_is_a_mean_value():
    flat = curve([(10, 0.7), (100, 0.7), (10_000, 0.7)])
    assert area_under_curve(flat) == pytest.approx(0.7)
    line = curve([(10, 1.0), (1000, 0.0)])  # linear in log10(params): mean over [1, 3] is 0.5
    assert area_under_curve(line) == pytest.approx(0.5)
    assert area_under_curve(line, (2.0, 3.0)) == pytest.approx(0.25)  # interpolated at the left end
    assert area_under_curve(line, (2.0, 2.0)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not within"):
        area_under_curve(line, (0.0, 3.0))


def test_rank_latents_orders_by_c_eps_then_auc():
    curves = {
        "never": curve([(10, 0.9), (1000, 0.6)]),
        "big": curve([(10, 0.9), (100, 0.8), (1000, 0.3)]),
        "small": curve([(10, 0.9), (100, 0.3), (1000, 0.2)]),
        "small_lower": curve([(10, 0.9), (100, 0.3), (2000, 0.1)]),  # same C_eps as "small", better AUC
    }
    rows = rank_latents(curves, 0.5)
    assert [r["latent"] for r in rows] == ["small_lower", "small", "big", "never"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["c_eps"] == pytest.approx(rows[1]["c_eps"])
    assert rows[-1]["c_eps"] is None and not rows[-1]["reached"]
    assert rows[0]["auc_range"] == pytest.approx((1.0, 3.0)) and rows[0]["auc"] < rows[1]["auc"]
    assert rows[0]["best"] == 0.1 and rows[0]["best_params"] == 2000


# ------------------------------------------------------------------------------------------------ 2-D toy

def test_mlp_parameter_count_is_exact():
    for latent_dim, width, depth in [(2, 4, 2), (3, 16, 1), (2, 64, 3)]:
        gen = toy.mlp_generator(latent_dim, width, depth=depth)
        expected = latent_dim * width + width + (depth - 1) * (width * width + width) + width * 2 + 2
        assert toy.n_params(gen) == expected


@pytest.fixture(scope="module")
def ring_curves():
    """One cheap, deterministic sweep shared by the ring tests (about 10-25 s on 2 cores)."""
    return toy.run_toy_sweep("ring", latents=("gaussian", "gmm"), widths=(4, 8, 16, 32, 64), seeds=(0,),
                             steps=300, batch=128, lr=1e-2, eval_draws=2)


def test_data_dependent_latent_needs_a_smaller_generator_on_the_ring(ring_curves):
    eps = 0.5  # the W2 floor of 1000 vs 1000 ring points is 0.3-0.36, so eps must sit well above it
    gauss, gmm = c_eps(ring_curves["gaussian"], eps), c_eps(ring_curves["gmm"], eps)
    assert gmm["reached"] and gmm["params"] < 150
    assert not gauss["reached"] or gauss["params"] > 2 * gmm["params"]  # measured ~7x
    assert rank_latents(ring_curves, eps)[0]["latent"] == "gmm"


def test_c_eps_monotone_on_toy_curves(ring_curves):
    for points in ring_curves.values():
        values = [c_eps(points, float(e)) for e in np.linspace(0.9, 0.3, 61)]
        sizes = [v["params"] if v["reached"] else math.inf for v in values]
        assert sizes == sorted(sizes)


def test_sweep_is_deterministic():
    kw = {"latents": ("gmm",), "widths": (4,), "seeds": (3,), "steps": 20, "batch": 64, "eval_draws": 1,
          "n_train": 512, "n_eval": 200}
    assert toy.run_toy_sweep("moons", **kw) == toy.run_toy_sweep("moons", **kw)


def test_latents_and_data_shapes():
    train = toy.ring_of_gaussians(2000, seed=0)
    assert np.allclose(np.linalg.norm(train, axis=1).mean(), 2.0, atol=0.01)
    rng = np.random.default_rng(0)
    for name in ("gaussian", "gmm", "empirical"):
        z = toy.make_latent(name, train).sample(300, rng)
        assert z.shape == (300, 2) and np.isfinite(z).all()
    gmm = toy.make_latent("gmm", train)  # a fresh draw, not the same points again (GaussianMixture.sample would)
    assert not np.allclose(gmm.sample(50, rng), gmm.sample(50, rng))
    assert toy.two_moons(100, seed=0).shape == (100, 2)


# ---------------------------------------------------------------------------------------- 1-D, closed form

def test_quantile_integration_matches_gaussian_closed_form():
    exact = toy.w2_gaussians_1d(0.0, 1.0, 1.5, 0.5)
    assert exact == pytest.approx(math.sqrt(1.5**2 + 0.5**2))
    assert toy.w2_quantiles_1d(stats.norm(0, 1).ppf, stats.norm(1.5, 0.5).ppf) == pytest.approx(exact, rel=1e-5)


def test_empirical_w2_agrees_with_exact_values():
    rng = np.random.default_rng(0)
    n = 20_000  # sorted-estimator sampling error at this n, max over 20 seeds: 0.016 (Gaussians), 0.022 (exponential)
    z = rng.standard_normal(n)
    gauss = 1.5 + 0.5 * rng.standard_normal(n)
    expo = rng.exponential(size=n)
    assert toy.w2_sorted_1d(z, gauss) == pytest.approx(toy.w2_gaussians_1d(0, 1, 1.5, 0.5), abs=0.05)
    assert toy.w2_sorted_1d(z, expo) == pytest.approx(toy.w2_quantiles_1d(stats.norm.ppf, stats.expon.ppf), abs=0.05)
    # the exact OT solvers used by the toy agree with sorted matching in 1-D
    assert toy.w2(z[:1000], gauss[:1000]) == pytest.approx(toy.w2_sorted_1d(z[:1000], gauss[:1000]), abs=1e-9)
    assert math.sqrt(ot.emd2_1d(z, expo)) == pytest.approx(toy.w2_sorted_1d(z, expo), abs=1e-9)
    # N(0, 1) pushed through the monotone map T = F^-1 o Phi has exactly the exponential law (W2 = 0): what remains
    # is sampling error (max 0.049 over 20 seeds), far below W2(N(0, 1), Exp(1)) = 1.09
    assert toy.w2_sorted_1d(toy.monotone_map(stats.expon.ppf)(z), rng.exponential(size=n)) < 0.1


@pytest.mark.parametrize("m, s", [(1.5, 0.5), (-2.0, 3.0)])
def test_affine_generator_recovers_the_monotone_map(m, s):
    a, b = toy.fit_affine_1d(m, s, seed=0)
    # measured over seeds 0-2: |a - s| <= 0.035 s and |b - m| <= 0.031 s (minibatch-OT bias shrinks a slightly,
    # and the 4096-point training sample's mean/std differ from m, s)
    assert a == pytest.approx(s, abs=0.08 * s)
    assert b == pytest.approx(m, abs=0.08 * s)
