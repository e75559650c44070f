"""Generator size needed per latent on 2-D toy data: W2-vs-parameters curves, C_eps and AUC (SPEC section 2).

For each dataset (`ring`: 8 Gaussians on a circle; `moons`: two moons) and each latent (`gaussian` N(0, I),
`gmm` a fitted 8-component mixture, `empirical` training points + N(0, 0.05^2) noise), a family of 2-hidden-layer
ReLU MLP generators of increasing width is trained with the same recipe (exact minibatch OT loss, Adam, cosine
decay; `latentforge.complexity.toy`) for several seeds, and scored by the exact W2 between 1000 generated and 1000
held-out points (mean over `--eval-draws` generated draws). From the seed-mean curves: C_eps (the smallest
generator reaching W2 <= eps, interpolated in log(params)), the AUC (mean W2 over log10(params)) and a rank, for
each eps in `--eps`. The metric's floor (W2 of the data against itself at the same sample size) is printed too:
eps must sit above it.

    python benchmarks/toy_complexity.py                  # full run, JSON to benchmarks/results/toy_complexity.json
    python benchmarks/toy_complexity.py --quick          # smoke check (1 seed, 2 widths, 60 steps)
    python benchmarks/toy_complexity.py --data ring --seeds 0 --jobs 1 --out /tmp/toy.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "toy_complexity.json"
# Default targets, chosen above each dataset's W2 floor (ring about 0.3-0.36, moons about 0.04) after a first run.
DEFAULT_EPS = {"ring": (0.45, 0.5, 0.6), "moons": (0.1, 0.15, 0.2)}


def csv(cast):
    """argparse type: a comma-separated list, each item converted by cast."""
    return lambda text: tuple(cast(v) for v in text.split(",") if v.strip())


def sweep_one(data: str, latent: str, seed: int, kw: dict) -> tuple[str, str, list[dict], float]:
    """One (data, latent, seed) curve in a worker process; every generator depends only on its own seed."""
    import torch

    from latentforge.complexity.toy import run_toy_sweep

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    points = run_toy_sweep(data, latents=(latent,), seeds=(seed,), **kw)[latent]
    return data, latent, [vars(p) for p in points], time.perf_counter() - t0


def fmt_c(row: dict) -> str:
    if not row["reached"]:
        return "not reached"
    return f"{row['c_eps']:,.0f}" if row["bracketed"] else f"<= {row['c_eps']:,.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=csv(str), default=("ring", "moons"))
    p.add_argument("--latents", type=csv(str), default=("gaussian", "gmm", "empirical"))
    p.add_argument("--widths", type=csv(int), default=(4, 8, 16, 32, 64))
    p.add_argument("--seeds", type=csv(int), default=(0, 1, 2))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--depth", type=int, default=2, help="hidden layers of the MLP generator")
    p.add_argument("--n-eval", type=int, default=1000, help="generated and held-out points per W2")
    p.add_argument("--eval-draws", type=int, default=4, help="generated draws averaged per W2")
    p.add_argument("--eps", action="append", default=[], metavar="DATA=E1,E2",
                   help=f"targets per dataset (repeatable); default {DEFAULT_EPS}")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (1 thread each)")
    p.add_argument("--quick", action="store_true", help="smoke check: seed 0, widths 4,16, 60 steps, 1 eval draw")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.widths, args.steps, args.eval_draws = (0,), (4, 16), 60, 1
    eps = dict(DEFAULT_EPS)
    for item in args.eps:
        name, _, values = item.partition("=")
        eps[name] = csv(float)(values)
    unknown = [d for d in args.data if d not in DEFAULT_EPS and d not in eps]
    if unknown:
        p.error(f"no --eps given for dataset(s) {unknown}")

    from latentforge.complexity import aggregate, rank_latents
    from latentforge.complexity.ceps import CurvePoint
    from latentforge.complexity.toy import w2_floor

    kw = {"widths": args.widths, "steps": args.steps, "batch": args.batch, "depth": args.depth, "lr": args.lr,
          "n_eval": args.n_eval, "eval_draws": args.eval_draws}
    tasks = [(d, lat, s) for d in args.data for lat in args.latents for s in args.seeds]
    load_before, t0 = os.getloadavg(), time.perf_counter()
    curves: dict[str, dict[str, list[dict]]] = {d: {lat: [] for lat in args.latents} for d in args.data}
    seconds: dict[str, float] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(sweep_one, d, lat, s, kw) for d, lat, s in tasks]
        for f in futures:
            d, lat, points, dt = f.result()
            curves[d][lat] += points
            seconds[f"{d}/{lat}/{points[0]['seed']}"] = dt
            print(f"[{d}/{lat}/seed {points[0]['seed']}] {dt:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0

    import torch

    record_data = {}
    for d in args.data:
        floor = w2_floor(d, args.n_eval, draws=args.eval_draws)
        pts = {lat: [CurvePoint(**q) for q in curves[d][lat]] for lat in args.latents}
        aggs = {lat: aggregate(pts[lat]) for lat in args.latents}
        print(f"\n{d}: W2 (mean ± std over {len(args.seeds)} seed(s)) by generator width [params]; "
              f"floor (data vs data, n={args.n_eval}) {floor:.3f}")
        cols = [f"{w} [{r['params']:,}]" for w, r in zip(args.widths, aggs[args.latents[0]])]
        print(f"{'latent':<10} " + " ".join(f"{c:>14}" for c in cols))
        for lat in args.latents:
            print(f"{lat:<10} " + " ".join(f"{r['mean']:>7.3f} ± {r['std']:.3f}" for r in aggs[lat]))
        ranks = {}
        lo_hi = None
        print(f"\n{d}: C_eps (params; '<=' = reached at the smallest width), AUC = mean W2 over log10(params)")
        print(f"{'eps':>6} {'latent':<10} {'C_eps':>12} {'AUC':>7} {'best W2':>8} {'rank':>5}")
        for e in eps[d]:
            rows = rank_latents(pts, e)
            ranks[str(e)] = rows
            lo_hi = rows[0]["auc_range"]
            for r in rows:
                auc = f"{r['auc']:.3f}" if r["auc"] is not None else "-"
                print(f"{e:>6.3g} {r['latent']:<10} {fmt_c(r):>12} {auc:>7} {r['best']:>8.3f} {r['rank']:>5}")
        if lo_hi:
            print(f"(AUC over log10(params) in [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}])")
        record_data[d] = {"floor_w2": floor, "eps": list(eps[d]), "curves": curves[d], "aggregate": aggs,
                          "ranking": ranks}

    record = {
        "benchmark": "toy_complexity", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "device": "cpu",
        "settings": {**kw, "widths": list(args.widths), "seeds": list(args.seeds), "latents": list(args.latents),
                     "metric": "exact W2 (ot.emd2, sqeuclidean, sqrt)", "quick": args.quick, "jobs": args.jobs},
        "wall_s": wall, "seconds_per_curve": seconds, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "data": record_data,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    load_after = "/".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nwall {wall:.0f} s with {args.jobs} job(s); load average before "
          f"{'/'.join(f'{v:.2f}' for v in load_before)}, after {load_after}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
