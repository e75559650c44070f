"""Does bf16 autocast train the same models as fp32? Loss curves and the DeAE plateau read-out, over 1,500 steps.

Per model (DeAE and DCGAN, `cpu` presets, 32x32, the first 640 training images of emoji: 10 steps per epoch, so
1,500 steps are 150 epochs and the DeAE leaves its plateau), fp32 runs with seeds 0, 1, 2 give the seed-to-seed
spread, and bf16 runs with seeds 0 and 1 are compared with the fp32 run of the same seed (same data order, patterns
and noise: only the arithmetic differs). The loss is averaged per window of 100 steps; a window passes when the bf16
run's distance to its fp32 twin is within the spread of the three fp32 seeds there (max - min). For DeAE the
pattern-discrimination ratio at the last step must agree within 0.03.

Each run is a subprocess with one thread, `--jobs` at once. On a CPU without native bf16, autocast emulates bf16
(correct, but slower than fp32): the comparison of numbers holds, its run times do not.

    python benchmarks/bf16_equivalence.py                       # both models (about 2 h on 2 cores without bf16)
    python benchmarks/bf16_equivalence.py --models deae --steps 60 --window 20 --limit 128   # smoke check
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
from _record import write_record  # noqa: E402
from _workers import add_pool_arguments, run_cells  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bf16_equivalence.json"
RUNS = (("fp32", 0), ("fp32", 1), ("fp32", 2), ("bf16", 0), ("bf16", 1))


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge

    torch.set_num_threads(1)
    out = Path(args.run_root) / f"{args.model}-{args.precision}-s{args.seed}"
    t0 = time.perf_counter()
    latentforge.train(args.model, data=args.dataset, steps=args.steps, out=out, preset="cpu", progress=False,
                      overrides=["data.resolution=32", f"data.limit={args.limit}", "train.threads=1",
                                 f"train.precision={args.precision}", f"train.seed={args.seed}", "train.compile=false",
                                 "train.log_every=10", f"train.sample_every={args.steps}",
                                 f"train.checkpoint_every={args.steps}"])
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    train = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    diag = [r for r in records if r["kind"] == "diagnostic"]
    info = json.loads((out / "run.json").read_text())
    return {"model": args.model, "precision": info["precision"], "precision_reason": info["precision_reason"],
            "seed": args.seed, "loss": train, "wall_s": round(time.perf_counter() - t0, 1),
            "discrimination": diag[-1].get("pattern_discrimination_ratio") if diag else None}


def windows(loss: list[tuple[int, float]], width: int) -> list[float]:
    """Mean loss per window of `width` steps (logged every 10 steps)."""
    out: dict[int, list[float]] = {}
    for step, value in loss:
        out.setdefault((step - 1) // width, []).append(value)
    return [sum(v) / len(v) for _, v in sorted(out.items())]


def compare(runs: list[dict], width: int) -> dict:
    fp32 = {r["seed"]: windows(r["loss"], width) for r in runs if r["precision"] == "fp32"}
    bf16 = {r["seed"]: windows(r["loss"], width) for r in runs if r["precision"] == "bf16"}
    n = min(len(c) for c in [*fp32.values(), *bf16.values()])
    spread = [max(c[i] for c in fp32.values()) - min(c[i] for c in fp32.values()) for i in range(n)]
    rows = {}
    for seed, curve in bf16.items():
        gap = [abs(curve[i] - fp32[seed][i]) for i in range(n)]
        rows[seed] = {"windows_within_spread": sum(g <= s for g, s in zip(gap, spread)), "windows": n,
                      "max_gap_over_spread": max(g / max(s, 1e-12) for g, s in zip(gap, spread)),
                      "final_loss_bf16": curve[n - 1], "final_loss_fp32": fp32[seed][n - 1]}
        disc = {r["precision"]: r["discrimination"] for r in runs if r["seed"] == seed}
        if disc.get("bf16") is not None and disc.get("fp32") is not None:
            rows[seed]["discrimination_bf16"], rows[seed]["discrimination_fp32"] = disc["bf16"], disc["fp32"]
            rows[seed]["discrimination_gap"] = abs(disc["bf16"] - disc["fp32"])
    walls = {p: [r["wall_s"] for r in runs if r["precision"] == p] for p in ("fp32", "bf16")}
    fp32_disc = [r["discrimination"] for r in runs if r["precision"] == "fp32" and r["discrimination"] is not None]
    return {"spread_per_window": spread, "fp32_mean_per_window": [sum(c[i] for c in fp32.values()) / len(fp32)
                                                                 for i in range(n)],
            "by_seed": rows, "wall_s": walls,
            "discrimination_fp32_seed_spread": max(fp32_disc) - min(fp32_disc) if fp32_disc else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="deae,dcgan")
    p.add_argument("--data", default="emoji")
    p.add_argument("--limit", type=int, default=640)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--window", type=int, default=100)
    add_pool_arguments(p, DEFAULT_OUT, ("--model", "--precision"))
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    load = os.getloadavg()
    run_root = args.runs or tempfile.mkdtemp(prefix="bf16_equivalence_")
    common = ["--worker", "--run-root", run_root, "--dataset", args.data, "--limit", str(args.limit),
              "--steps", str(args.steps)]
    cells = {(m, prec, s): common + ["--model", m, "--precision", prec, "--seed", str(s)]
             for m in args.models.split(",") for prec, s in RUNS}
    results = run_cells(__file__, cells, args.jobs,
                        on_done=lambda key, res: print(f"  {key}: {res.get('wall_s', res.get('error', '')[-300:])}",
                                                       file=sys.stderr, flush=True))
    failed = {k: r for k, r in results.items() if "error" in r}
    if failed:
        sys.exit(f"{len(failed)} run(s) failed: " + "; ".join(f"{k}: {r['error'][-300:]}" for k, r in failed.items()))
    by_model = {m: compare([r for (mm, _, _), r in results.items() if mm == m], args.window)
                for m in args.models.split(",")}
    print(f"\nbf16 vs fp32, {args.steps} steps, loss per {args.window}-step window ({args.data}, {args.limit} images)")
    print(f"{'model':6} {'seed':>4} {'windows in spread':>18} {'max gap/spread':>15} {'final fp32':>11} "
          f"{'final bf16':>11} {'discr. fp32':>12} {'discr. bf16':>12}")
    for m, c in by_model.items():
        for seed, row in c["by_seed"].items():
            print(f"{m:6} {seed:>4} {row['windows_within_spread']:>10}/{row['windows']:<7} "
                  f"{row['max_gap_over_spread']:>15.2f} {row['final_loss_fp32']:>11.4f} {row['final_loss_bf16']:>11.4f}"
                  f" {row.get('discrimination_fp32', float('nan')):>12.3f} "
                  f"{row.get('discrimination_bf16', float('nan')):>12.3f}")
        print(f"{m:6} wall s fp32 {c['wall_s']['fp32']}, bf16 {c['wall_s']['bf16']}; fp32 seed spread of the "
              f"discrimination ratio {c['discrimination_fp32_seed_spread']}")
    write_record("bf16_equivalence", args.out, load, data=args.data, limit=args.limit, steps=args.steps,
                 window=args.window, precision_reason={p: next(r["precision_reason"] for k, r in results.items() if k[1] == p) for p in ("fp32", "bf16")},
                 models=by_model, runs={f"{k[0]}-{k[1]}-s{k[2]}": r for k, r in results.items()})


if __name__ == "__main__":
    main()
