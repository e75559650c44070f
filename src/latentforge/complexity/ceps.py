"""Generator complexity needed to reach a target quality: C_eps and the area under the quality curve.

"Complexity Matters" (Hu et al. 2023): the paper's GAN-induced distance between a latent nu and the data mu is the
best adversarial loss a generator of bounded complexity C can reach. It is made measurable here the way the paper
reads it off experiments: for each latent, train a family of generators of increasing parameter count (same recipe,
same budget), score each with a quality value where lower is better (FID, KID, a Wasserstein distance), and read

* **C_eps(nu)**: the smallest generator whose quality reaches a target eps, and
* **AUC**: the mean quality over a common range of log10(parameter count), a single number that does not depend on eps.

Everything is pure numpy on a handful of (params, value) points, so each number can be checked by hand.

Limits, stated once here because they apply to every function:

* The curve is only known at the measured sizes. Between them C_eps interpolates linearly in log(params), which
  assumes the quality changes smoothly with size; it is an estimate, not a measurement. Below the smallest size
  nothing is known, so a curve already at or below eps there reports the smallest size (``bracketed=False``), an
  upper bound on the true C_eps.
* C_eps uses the *first* size whose seed-mean reaches eps. A noisy, non-monotone curve that dips below eps once and
  comes back up still counts as reached there; look at ``aggregate``'s std before trusting a crossing.
* Values are means over seeds; with one seed there is no error bar (std 0, n 1).
* Quality values must share a scale across latents (same metric, same evaluation sample sizes, same data), or the
  comparison is meaningless. Finite-sample metrics have a floor above 0 (e.g. the W2 between two samples of the data
  itself); an eps below that floor is never reached by anyone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class CurvePoint:
    """One trained generator: its parameter count, its quality value (lower is better) and the seed that made it."""

    params: int
    value: float
    seed: int | None = None


def aggregate(points: list[CurvePoint]) -> list[dict]:
    """Seed-mean curve: one row per parameter count, sorted by params, with keys params, mean, std, n.

    ``std`` is the sample standard deviation over seeds (ddof=1), 0.0 when a size has a single point.
    """
    if not points:
        raise ValueError("aggregate: no curve points")
    by_params: dict[int, list[float]] = {}
    for p in points:
        if p.params <= 0:
            raise ValueError(f"aggregate: params must be positive, got {p.params}")
        if not math.isfinite(p.value):
            raise ValueError(f"aggregate: non-finite value {p.value} at params={p.params}")
        by_params.setdefault(int(p.params), []).append(float(p.value))
    rows = []
    for params in sorted(by_params):
        v = np.asarray(by_params[params])
        rows.append({"params": params, "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                     "n": int(v.size)})
    return rows


def c_eps(points: list[CurvePoint], eps: float) -> dict:
    """Smallest generator size whose seed-mean quality is <= eps.

    On the seed-mean curve sorted by params, take the first size i with mean <= eps.
    * i is the smallest size measured: return that size, ``bracketed=False`` (the true crossing may lie below it).
    * otherwise the crossing lies between size i-1 (mean > eps) and size i; interpolate linearly in log(params):
      ``log C = log p[i-1] + t (log p[i] - log p[i-1])`` with ``t = (m[i-1] - eps) / (m[i-1] - m[i])``.
    * no size reaches eps: ``reached=False``, ``params=None``.

    Returns {"eps", "reached", "params" (float or None), "bracketed", "note"}. C_eps never decreases as eps
    decreases (a smaller eps is reached no earlier on the same curve).
    """
    rows = aggregate(points)
    for i, row in enumerate(rows):
        if row["mean"] > eps:
            continue
        if i == 0:
            return {"eps": eps, "reached": True, "params": float(row["params"]), "bracketed": False,
                    "note": f"reached at or below the smallest size measured ({row['params']} params, "
                            f"mean {row['mean']:.4g} <= {eps:.4g}); the true C_eps may be smaller"}
        prev = rows[i - 1]
        t = (prev["mean"] - eps) / (prev["mean"] - row["mean"])
        log_c = math.log(prev["params"]) + t * (math.log(row["params"]) - math.log(prev["params"]))
        return {"eps": eps, "reached": True, "params": math.exp(log_c), "bracketed": True,
                "note": f"crossed between {prev['params']} (mean {prev['mean']:.4g}) and {row['params']} params "
                        f"(mean {row['mean']:.4g}); interpolated in log(params)"}
    best = min(rows, key=lambda r: r["mean"])
    return {"eps": eps, "reached": False, "params": None, "bracketed": False,
            "note": f"not reached: best mean {best['mean']:.4g} at {best['params']} params is above eps={eps:.4g}; "
                    f"largest size measured {rows[-1]['params']}"}


def area_under_curve(points: list[CurvePoint], log_params_range: tuple[float, float] | None = None) -> float:
    """Mean quality over log10(params): trapezoid of the seed-mean curve divided by the width of the range.

    Because it is normalised by the width, a constant curve returns the constant, and the number reads as "the
    average quality over this size range". Give ``log_params_range=(lo, hi)`` (log10 units) to integrate every latent
    over the same range; the curve is then linearly interpolated at lo and hi. The range must lie within the
    measured sizes: nothing is extrapolated. A single point, or lo == hi, returns the (interpolated) value there.
    """
    rows = aggregate(points)
    x = np.log10([r["params"] for r in rows])
    y = np.asarray([r["mean"] for r in rows])
    lo, hi = (x[0], x[-1]) if log_params_range is None else map(float, log_params_range)
    tol = 1e-12
    if lo > hi or lo < x[0] - tol or hi > x[-1] + tol:
        raise ValueError(f"area_under_curve: range ({lo:.4g}, {hi:.4g}) is not within the measured "
                         f"log10(params) range ({x[0]:.4g}, {x[-1]:.4g})")
    if hi - lo <= tol:
        return float(np.interp(lo, x, y))
    inside = (x > lo) & (x < hi)
    xs = np.concatenate([[lo], x[inside], [hi]])
    ys = np.interp(xs, x, y)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / (hi - lo))


def rank_latents(curves: dict[str, list[CurvePoint]], eps: float) -> list[dict]:
    """Rank latents by C_eps (ascending; not reached last), ties broken by AUC over the common size range.

    The AUC range is the overlap of all curves' log10(params) ranges, so every latent is averaged over the same
    sizes (latents of different dimension give slightly different parameter counts for the same widths). If the
    curves do not overlap, ``auc`` is None for all of them.

    Each row: latent, c_eps (params or None), reached, bracketed, auc, auc_range (log10 lo, hi), best (lowest
    seed-mean value), best_params, rank (1 = best).
    """
    if not curves:
        raise ValueError("rank_latents: no curves")
    aggs = {name: aggregate(pts) for name, pts in curves.items()}
    lo = max(math.log10(a[0]["params"]) for a in aggs.values())
    hi = min(math.log10(a[-1]["params"]) for a in aggs.values())
    overlap = lo <= hi
    rows = []
    for name, pts in curves.items():
        c = c_eps(pts, eps)
        best = min(aggs[name], key=lambda r: r["mean"])
        rows.append({"latent": name, "c_eps": c["params"], "reached": c["reached"], "bracketed": c["bracketed"],
                     "auc": area_under_curve(pts, (lo, hi)) if overlap else None,
                     "auc_range": (lo, hi) if overlap else None, "best": best["mean"], "best_params": best["params"]})
    rows.sort(key=lambda r: (not r["reached"], r["c_eps"] if r["reached"] else 0.0,
                             r["auc"] if r["auc"] is not None else 0.0))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
