"""The DeAE paper's headline claim at equal wall-clock: DeAE vs DCGAN on the same data, resolution, evaluator and
number of samples, at two training budgets, several seeds.

Each (dataset, model, seed) runs in its own subprocess with one thread (`--jobs` of them at once, one per core):
  1. a 30-step probe measures steps/s (steps 5-30), and the step count is set 15 % above what the largest
     wall-clock budget allows, so the budget ends the run and the schedule (DeAE's weight-decay ramp) spans it;
  2. train with `train.time_limit_s` = first budget, evaluate (`latentforge eval`: held-out split, named feature
     network, `--n` samples), resume up to the second budget, evaluate again.
Models: DeAE with its `cpu` preset (the best CPU preset at the time of the run) and DCGAN with its `cpu` preset
(N(0, I) latent, width 1), both at 32x32. Prints a table and writes benchmarks/results/deae_vs_dcgan.json.

    python benchmarks/deae_vs_dcgan.py --budgets 600,1800 --seeds 0,1,2 --jobs 2
    python benchmarks/deae_vs_dcgan.py --budgets 20,40 --seeds 0 --datasets digits --n 200   # smoke check
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _workers import add_pool_arguments, mean_std, run_cells, warm_feature_networks  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "deae_vs_dcgan.json"
KEYS = ("fid", "kid", "precision", "recall", "coverage", "nn_feature_ratio_vs_heldout", "near_copy_fraction")


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge
    from latentforge.metrics.pixel import mean_pairwise_distance

    torch.set_num_threads(1)
    budgets = [float(b) for b in args.budgets.split(",")]
    common = ["data.resolution=32", "train.threads=1", "train.compile=false", "train.log_every=50", f"train.seed={args.seed}",
              "train.sample_every=100000", "train.checkpoint_every=100000"]
    with tempfile.TemporaryDirectory() as tmp:  # steps/s between steps 5 and 30 (warm-up excluded)
        latentforge.train(args.model, data=args.dataset, steps=30, out=Path(tmp) / "probe", preset="cpu",
                          overrides=common + ["train.log_every=5"], progress=False)
        times = {r["step"]: r["time_s"] for r in map(json.loads, (Path(tmp) / "probe" / "metrics.jsonl").open())
                 if r["kind"] == "train"}
    rate = 25 / max(times[30] - times[5], 1e-6)
    steps = int(rate * budgets[-1] * 1.15) + 10  # the budget, not the step count, must end the run
    out = Path(args.run_root) / f"{args.dataset}-{args.model}-s{args.seed}"
    rows, spent = [], 0.0
    for i, budget in enumerate(budgets):
        res = latentforge.train(args.model, data=args.dataset, steps=steps, out=out, preset="cpu",
                                overrides=(common if i == 0 else []) + [f"train.time_limit_s={budget - spent}"],
                                resume=i > 0, progress=False)
        spent += res.summary["wall_s"]
        ev = latentforge.evaluate_run(out, n=args.n, features=args.features, progress=False)
        task = latentforge.load_run(out).task
        samples = task.sample(256, seed=7)
        keep_samples(task, out / f"samples_{budget:.0f}s.npy", args.n)
        rows.append({"dataset": args.dataset, "model": args.model, "seed": args.seed, "budget_s": budget,
                     "train_s": round(spent, 1), "steps": res.step, "steps_planned": steps,
                     "feature_network": ev["feature_network"], "n_fake": ev["n_fake"],
                     "sample_diversity_rms": mean_pairwise_distance(samples),
                     **{k: ev.get(k) for k in KEYS}, "fid_heldout_vs_train": ev.get("fid_heldout_vs_train")})
    return {"rows": rows, "params": json.loads((out / "run.json").read_text())["task"]["parameters"]}


def keep_samples(task, path: Path, n: int) -> None:
    """n samples as uint8 (N, C, H, W), so a later judge can re-score this budget without retraining."""
    import numpy as np
    import torch

    images = task.sample(n, seed=11)
    np.save(path, ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())


def kept_samples(run: Path) -> dict[float, Path]:
    """The samples files `keep_samples` wrote in a run folder, by budget in seconds, earliest first."""
    found = {float(p.stem.split("_")[1][:-1]): p for p in run.glob("samples_*s.npy")}
    return dict(sorted(found.items()))


def load_kept(path: Path, n: int | None = None):
    """The first n (all if None) kept samples as float images in [-1, 1], (N, C, H, W)."""
    import numpy as np
    import torch

    return torch.from_numpy(np.load(path)[:n]).float() / 127.5 - 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="emoji,mnist")
    p.add_argument("--models", default="deae,dcgan")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budgets", default="600,1800", help="cumulative wall-clock training budgets in seconds")
    p.add_argument("--n", type=int, default=1000, help="samples scored per evaluation (and kept as .npy per budget)")
    p.add_argument("--features", default="auto", help="evaluation feature network (latentforge eval --features)")
    add_pool_arguments(p, DEFAULT_OUT, ("--model",))
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    run_root = args.runs or tempfile.mkdtemp(prefix="deae_vs_dcgan_")
    jobs = [(d, m, s) for d in args.datasets.split(",") for s in args.seeds.split(",") for m in args.models.split(",")]
    load0, t0 = os.getloadavg(), time.time()
    # the shared evaluation network and datasets are built once before the parallel jobs need them
    import latentforge

    warm_feature_networks(args.datasets.split(","), 32)
    cells = {(d, m, s): ["--worker", "--dataset", d, "--model", m, "--seed", s, "--budgets", args.budgets,
                         "--n", str(args.n), "--features", args.features, "--run-root", run_root] for d, m, s in jobs}
    results = [{"job": key, **res} for key, res in run_cells(__file__, cells, args.jobs).items()]
    rows = [r for res in results for r in res.get("rows", [])]
    summary = aggregate(rows)
    print_table(summary)
    record = {"benchmark": "deae_vs_dcgan", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "machine": f"{os.cpu_count()} cores, CPU only, one thread per job, {args.jobs} jobs at once",
              "loadavg_before": load0, "loadavg_after": os.getloadavg(), "wall_s": round(time.time() - t0, 1),
              "settings": vars(args) | {"out": str(args.out)}, "latentforge": latentforge.__version__,
              "rows": rows, "summary": summary, "errors": [r for r in results if "error" in r],
              "params": {f"{r['job'][1]}": r.get("params") for r in results}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


def aggregate(rows: list[dict]) -> list[dict]:
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["budget_s"], r["model"]), []).append(r)
    out = []
    for (d, b, m), rs in sorted(groups.items()):
        row = {"dataset": d, "budget_s": b, "model": m, "seeds": len(rs), "steps": int(np.mean([r["steps"] for r in rs])),
               "feature_network": rs[0]["feature_network"]}
        for k in (*KEYS, "sample_diversity_rms"):
            row[k], row[k + "_std"] = mean_std([r.get(k) for r in rs])
        out.append(row)
    return out


def print_table(summary: list[dict]) -> None:
    head = f"{'data':<6} {'budget':>6} {'model':<6} {'n':>2} {'steps':>6} {'FID':>13} {'KID':>13} {'prec':>5} {'rec':>5} " \
           f"{'cov':>5} {'div':>5} {'NNratio':>7}"
    print(head)
    for r in summary:
        def f(k, w=13, p=3):
            return f"{r[k]:.{p}g}±{r[k + '_std']:.2g}".rjust(w) if r[k] is not None else "n/a".rjust(w)
        print(f"{r['dataset']:<6} {r['budget_s']:>6.0f} {r['model']:<6} {r['seeds']:>2} {r['steps']:>6} {f('fid')} "
              f"{f('kid')} {r['precision']:>5.2f} {r['recall']:>5.2f} {r['coverage']:>5.2f} "
              f"{r['sample_diversity_rms']:>5.3f} {r['nn_feature_ratio_vs_heldout']:>7.2f}")
    if summary:
        print(f"feature network: {', '.join(sorted({r['feature_network'] for r in summary}))}")


if __name__ == "__main__":
    main()
