"""How long does a DeAE stay on its mean-image plateau, and which knob shortens it? (issue 15)

Every DeAE run starts by decoding every pattern to the training average: its pattern-discrimination ratio
(reconstruction error from the own pattern / from another image's, `DeAETask.discrimination`) stays at 1.0 until
the network starts to tell the patterns apart. This script trains one run per (dataset, variant, seed) from the
`cpu` preset at 32x32 plus the variant's overrides, writes a sample grid and the diagnostic every
`--every` steps, and reads from metrics.jsonl:
  * steps, epochs and training seconds until the ratio first falls below `--threshold` (0.7 by default);
  * the ratio and the samples' pixel diversity relative to the data at the end;
  * with `--eval`, the evaluator's FID/KID/recall and diversity figures at each wall-clock budget (named feature
    network, held-out split).

Budgets are wall-clock seconds (`--budgets 600,1800`: train to 600 s, evaluate, resume to 1800 s, evaluate), or
optimizer steps with `--steps N` (device-independent epochs: use it to sweep many variants on a GPU, then confirm
the winners by the clock on the CPU). Runs go `--jobs` at a time, each in its own process with `--threads` threads.

    python benchmarks/deae_plateau.py --datasets emoji,mnist --variants all --steps 4000 --jobs 8   # GPU sweep
    python benchmarks/deae_plateau.py --variants base,best --budgets 600,1800 --seeds 0,1 --eval --jobs 2

Seeds measured on different occasions are combined with `--merge A.json B.json --out C.json`: the rows of both,
and a summary (mean ± std over seeds) per dataset, variant and budget.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _workers import add_pool_arguments, mean_std, run_cells, warm_feature_networks  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "deae_plateau.json"
EVAL_KEYS = ("fid", "kid", "precision", "recall", "coverage", "diversity_ratio", "distinct_fraction")

# Every variant starts from the `cpu` preset as it was when the plateau issue was filed (the reference's noise input
# and random patterns, only narrower), whatever the preset says today, then applies its own overrides.
BASELINE = ["model.encoder_input=noise", "model.encoder_norm=batch", "model.mask_clusters=0",
            "model.mask_subclusters=0", "model.mask_active=[1,4,16]"]
VARIANTS: dict[str, list[str]] = {
    "base": [],
    "const": ["model.encoder_input=constant"],
    "gn": ["model.encoder_norm=group"],
    "nonorm": ["model.encoder_norm=none"],
    "clusters": ["model.mask_clusters=32"],
    "enc_lr3": ["model.encoder_lr_scale=3"],
    "enc_lr0.3": ["model.encoder_lr_scale=0.3"],
    "warmup": ["model.optim.warmup_steps=500"],
    "lr5e-3": ["model.optim.lr=5e-3"],
    "lr5e-4": ["model.optim.lr=5e-4"],
    "no_wd": ["model.optim.weight_decay=0"],
    "active_4_16_64": ["model.mask_active=[4,16,64]"],
    "bernoulli": ["model.mask_kind=bernoulli", "model.mask_keep_prob=[0.5]"],
    "latent128": ["model.latent_dim=128"],
    "mse_only": ["model.loss.perceptual=none"],
    "bs16": ["train.batch_size=16"],
    "bs256": ["train.batch_size=256"],
    "no_aug": ["model.flip=false", "model.shift_range=0"],
    "const_gn": ["model.encoder_input=constant", "model.encoder_norm=group"],
    "clusters_const": ["model.mask_clusters=32", "model.encoder_input=constant"],
    "clusters_lr5e-3": ["model.mask_clusters=32", "model.optim.lr=5e-3"],
    "const_lr5e-3": ["model.encoder_input=constant", "model.optim.lr=5e-3"],
    "const_active": ["model.encoder_input=constant", "model.mask_active=[4,16,64]"],
    "const_bs16": ["model.encoder_input=constant", "train.batch_size=16"],
    "clusters_const_active": ["model.mask_clusters=32", "model.encoder_input=constant", "model.mask_active=[1,16,64]"],
    "subclusters": ["model.mask_clusters=32", "model.mask_subclusters=16"],
    "subclusters_const": ["model.mask_clusters=32", "model.mask_subclusters=16", "model.encoder_input=constant"],
    "subclusters_const_a64": ["model.mask_clusters=32", "model.mask_subclusters=16", "model.encoder_input=constant",
                              "model.mask_active=[1,4,64]"],
}


def first_below(diags: list[dict], trains: list[dict], threshold: float, images_per_epoch: float,
                batch: int) -> dict:
    """The first diagnostic whose ratio is below the threshold: its step, epoch and training time."""
    times = {r["step"]: r["time_s"] for r in trains}
    for d in diags:
        if d["pattern_discrimination_ratio"] < threshold:
            t = min((v for s, v in times.items() if s >= d["step"]), default=None)
            return {"steps": d["step"], "epochs": round(d["step"] * batch / images_per_epoch, 2),
                    "seconds": t}
    return {"steps": None, "epochs": None, "seconds": None}


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge
    torch.set_num_threads(args.threads)
    overrides = ["data.resolution=32", f"train.threads={args.threads}", "train.compile=false", f"train.seed={args.seed}",
                 f"train.sample_every={args.every}", "train.log_every=25", "train.checkpoint_every=100000",
                 f"train.device={args.device}", "train.precision=fp32", *BASELINE, *VARIANTS[args.variant]]
    out = Path(args.run_root) / f"{args.dataset}-{args.variant}-s{args.seed}"
    rows, t_start = [], time.time()
    if args.steps:
        res = latentforge.train("deae", data=args.dataset, steps=args.steps, out=out, preset="cpu",
                                overrides=overrides, progress=False)
        stages = [(None, res)]
        setup_s = time.time() - t_start - res.summary["wall_s"]
    else:
        budgets = [float(b) for b in args.budgets.split(",")]
        steps = args.planned_steps  # the clock, not the step count, ends the run; the schedule spans the budget
        stages, spent = [], 0.0
        for i, budget in enumerate(budgets):
            res = latentforge.train("deae", data=args.dataset, steps=steps, out=out, preset="cpu",
                                    overrides=(overrides if i == 0 else []) + [f"train.time_limit_s={budget - spent}"],
                                    resume=i > 0, progress=False)
            spent += res.summary["wall_s"]
            stages.append((budget, res))
            if i == 0:  # loading data, k-means for clustered patterns, building the network: outside the budget
                setup_s = time.time() - t_start - res.summary["wall_s"]
            if args.eval:
                ev = latentforge.evaluate_run(out, n=args.n, progress=False)
                rows.append({"budget_s": budget, "step": res.step, "train_s": round(spent, 1),
                             "feature_network": ev["feature_network"],
                             **{k: ev.get(k) for k in EVAL_KEYS}})
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    diags = [r for r in records if r["kind"] == "diagnostic"]
    trains = [r for r in records if r["kind"] == "train"]
    info = json.loads((out / "run.json").read_text())
    n_images = info["dataset"]["count"]
    batch = _batch_size(out)
    final = diags[-1] if diags else {}
    return {"dataset": args.dataset, "variant": args.variant, "seed": args.seed, "steps": stages[-1][1].step,
            "train_s": round(sum(r.summary["wall_s"] for _, r in stages), 1), "setup_s": round(setup_s, 1),
            "images": n_images, "batch": batch,
            "params": info["task"]["parameters"],
            "leave": first_below(diags, trains, args.threshold, n_images, batch),
            "final_ratio": final.get("pattern_discrimination_ratio"),
            "final_diversity_ratio": final.get("sample_diversity_ratio"),
            "curve": [(d["step"], round(d["pattern_discrimination_ratio"], 4), round(d["sample_diversity_ratio"], 4))
                      for d in diags],
            "evals": rows}


def _batch_size(run: Path) -> int:
    import yaml
    return int(yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"])


def _planned_steps(dataset: str, variant: str, budget: float, threads: int) -> int:
    """Steps a budget allows, from a 30-step probe (steps 5-30, warm-up excluded), plus 15 %."""
    import latentforge
    with tempfile.TemporaryDirectory() as tmp:
        latentforge.train("deae", data=dataset, steps=30, out=Path(tmp) / "probe", preset="cpu", progress=False,
                          overrides=["data.resolution=32", f"train.threads={threads}", "train.log_every=5",
                                     "train.sample_every=100000", *BASELINE, *VARIANTS[variant]])
        times = {r["step"]: r["time_s"] for r in map(json.loads, (Path(tmp) / "probe" / "metrics.jsonl").open())
                 if r["kind"] == "train"}
    return int(25 / max(times[30] - times[5], 1e-6) * budget * 1.15) + 10


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="emoji,mnist")
    p.add_argument("--variants", default="base,const", help="comma-separated names, or 'all': " + ",".join(VARIANTS))
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=0, help="train this many steps (instead of wall-clock budgets)")
    p.add_argument("--budgets", default="600,1800", help="cumulative wall-clock budgets in seconds")
    p.add_argument("--every", type=int, default=100, help="steps between sample grids and diagnostics")
    p.add_argument("--threshold", type=float, default=0.7, help="'left the plateau' = ratio below this")
    p.add_argument("--eval", action="store_true", help="evaluate (FID etc.) at each budget")
    p.add_argument("--n", type=int, default=1000, help="samples per evaluation")
    p.add_argument("--threads", type=int, default=1, help="threads per run")
    p.add_argument("--device", default="cpu")
    add_pool_arguments(p, DEFAULT_OUT, ("--variant",))
    p.add_argument("--planned-steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                   help="combine earlier results (e.g. one file per seed) into --out, with mean ± std per budget")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.merge:
        merge(args.merge, args.out)
        return

    import latentforge
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    datasets = args.datasets.split(",")
    run_root = args.runs or tempfile.mkdtemp(prefix="deae_plateau_")
    load0, t0 = os.getloadavg(), time.time()
    if args.eval:  # the shared evaluation network is built once, before the parallel jobs need it
        warm_feature_networks(datasets, 32)
    planned = {}
    if not args.steps:
        budget = float(args.budgets.split(",")[-1])
        planned = {(d, v): _planned_steps(d, v, budget, args.threads) for d in datasets for v in variants}
    jobs = [(d, v, s) for s in args.seeds.split(",") for d in datasets for v in variants]
    common = ["--worker", "--every", str(args.every), "--threshold", str(args.threshold), "--n", str(args.n),
              "--threads", str(args.threads), "--device", args.device, "--run-root", run_root,
              "--steps", str(args.steps), "--budgets", args.budgets] + (["--eval"] if args.eval else [])
    cells = {(d, v, s): [*common, "--dataset", d, "--variant", v, "--seed", s,
                         "--planned-steps", str(planned.get((d, v), 0))] for d, v, s in jobs}
    done = run_cells(__file__, cells, args.jobs, on_done=lambda key, res: "error" in res or print(_line(res)))
    results = [res | {"job": key} for key, res in done.items()]
    rows = sorted((r for r in results if "error" not in r), key=lambda r: (r["dataset"], r["variant"], r["seed"]))
    print_table(rows)
    summary = summarize(rows)
    print_summary(summary)
    from _record import write_record

    device = "CPU only"
    if args.device.startswith("cuda"):
        import torch
        device = torch.cuda.get_device_name(0)
    write_record("deae_plateau", args.out, load0, f"{args.threads} thread(s) per run, {args.jobs} runs at once",
                 device=device, wall_s=round(time.time() - t0, 1), settings=vars(args) | {"out": str(args.out)},
                 variants={v: VARIANTS[v] for v in variants}, latentforge=latentforge.__version__, rows=rows,
                 summary=summary, errors=[r for r in results if "error" in r])


def _line(r: dict) -> str:
    leave = r["leave"]
    left = (f"left at step {leave['steps']} (epoch {leave['epochs']}, {leave['seconds']} s)" if leave["steps"]
            else "did not leave")
    return f"{r['steps']} steps, {left}, final ratio {r['final_ratio']:.2f}, diversity {r['final_diversity_ratio']:.2f}"


def ratio_at(curve: list, step: int) -> float | None:
    """The pattern-discrimination ratio of the diagnostic nearest to `step` (they are logged every --every steps)."""
    return min(curve, key=lambda c: abs(c[0] - step))[1] if curve else None


SUMMARY_KEYS = ("step", "ratio", "fid", "kid", "precision", "recall", "coverage", "diversity_ratio")


def summarize(rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds of each (dataset, variant, budget): steps reached, the ratio at the nearest diagnostic
    and the evaluator's figures."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        for e in r.get("evals", []):  # by-steps runs (--steps) have no wall-clock evaluations
            groups.setdefault((r["dataset"], e["budget_s"], r["variant"]), []).append(
                e | {"ratio": ratio_at(r["curve"], e["step"]), "seed": r["seed"]})
    out = []
    for (dataset, budget, variant), evals in sorted(groups.items()):
        row = {"dataset": dataset, "budget_s": budget, "variant": variant, "seeds": sorted(e["seed"] for e in evals),
               "feature_network": evals[0]["feature_network"]}
        for k in SUMMARY_KEYS:
            row[k], row[k + "_std"] = mean_std([e.get(k) for e in evals])
        out.append(row)
    return out


def print_summary(summary: list[dict]) -> None:
    print(f"{'data':<6} {'budget':>6} {'variant':<18} {'seeds':<6} {'steps':>6} {'ratio':>12} {'FID':>12} "
          f"{'KID':>11} {'rec':>5} {'cov':>5} {'div':>11}")
    for r in summary:
        def f(k, w=12, p=2):
            return (f"{r[k]:.{p}f}±{r[k + '_std']:.{p}f}" if r[k] is not None else "n/a").rjust(w)
        print(f"{r['dataset']:<6} {r['budget_s']:>6.0f} {r['variant']:<18} {','.join(map(str, r['seeds'])):<6} "
              f"{r['step']:>6.0f} {f('ratio')} {f('fid', p=1)} {f('kid', 11)} {r['recall']:>5.2f} "
              f"{r['coverage']:>5.2f} {f('diversity_ratio', 11)}")
    if summary:
        print(f"feature network: {', '.join(sorted({r['feature_network'] for r in summary}))}")


def merge(paths: list[Path], out: Path) -> None:
    """One record from several (e.g. one per seed): each source's conditions kept, rows joined, a summary added."""
    sources = [json.loads(p.read_text()) for p in paths]
    rows = sorted((r for s in sources for r in s["rows"]), key=lambda r: (r["dataset"], r["variant"], r["seed"]))
    summary = summarize(rows)
    print_summary(summary)
    record = {"benchmark": "deae_plateau", "merged_from": [
        {"file": p.name, **{k: s.get(k) for k in ("date", "machine", "loadavg_before", "loadavg_after", "wall_s",
                                                  "settings")}} for p, s in zip(paths, sources)],
        "variants": {k: v for s in sources for k, v in s.get("variants", {}).items()},
        "rows": rows, "summary": summary, "errors": [e for s in sources for e in s.get("errors", [])]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {out}")


def print_table(rows: list[dict]) -> None:
    print(f"{'data':<6} {'variant':<15} {'seed':>4} {'steps':>6} {'leave@step':>10} {'epochs':>6} {'secs':>6} "
          f"{'ratio':>6} {'div':>5}  evals")
    for r in rows:
        lv = r["leave"]
        ev = "; ".join(f"{e['budget_s']:.0f}s FID {e['fid']:.1f} rec {e['recall']:.2f} div {e['diversity_ratio']:.2f}"
                       for e in r["evals"])
        print(f"{r['dataset']:<6} {r['variant']:<15} {r['seed']:>4} {r['steps']:>6} {str(lv['steps']):>10} "
              f"{str(lv['epochs']):>6} {str(lv['seconds']):>6} {r['final_ratio']:>6.3f} "
              f"{r['final_diversity_ratio']:>5.2f}  {ev}")


if __name__ == "__main__":
    main()
