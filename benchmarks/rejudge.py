"""Re-score a finished benchmark's kept samples with another judge, without retraining, and show both judges' figures
side by side.

deae_vs_dcgan.py keeps each run folder (`<dataset>-<model>-s<seed>`) and, per wall-clock budget,
`samples_<budget>s.npy` (uint8) beside the run's own evaluation record of that budget (the old judge, in
metrics.jsonl). This script scores those files with `--features` against the run's dataset (held-out split for
distribution metrics, train split for memorisation, as `latentforge eval` does), prints old and new columns with
the mean over seeds, and writes every row with both judges' figures.

    python benchmarks/rejudge.py --runs RUN_ROOT --features effnet --out benchmarks/results/deae_vs_dcgan_rejudged.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from _record import write_record
from deae_vs_dcgan import kept_samples, load_kept

KEYS = ("fid", "kid", "precision", "recall", "coverage", "is", "nn_feature_ratio_vs_heldout", "near_copy_fraction",
        "fid_heldout_vs_train", "collapse_flag", "memorisation_flag")


def rows_from_runs(runs: Path) -> list[dict]:
    """One row per kept samples file: the run's identity, its budget, and the old judge's record of that budget
    (the i-th evaluation in metrics.jsonl belongs to the i-th budget)."""
    rows = []
    for run in sorted(p for p in runs.iterdir() if (p / "metrics.jsonl").is_file()):
        dataset, model, seed = run.name.rsplit("-", 2)
        evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
        for budget, ev in zip(kept_samples(run), evals):
            rows.append({"dataset": dataset, "model": model, "seed": int(seed[1:]),
                         "budget_s": budget, "steps": ev["step"],
                         "feature_network": ev["feature_network"], **{k: ev.get(k) for k in KEYS}})
    return rows


def rejudge_rows(rows: list[dict], runs: Path, features: str) -> None:
    import latentforge

    for r in rows:
        path = runs / f"{r['dataset']}-{r['model']}-s{r['seed']}" / f"samples_{r['budget_s']:.0f}s.npy"
        if not path.is_file():
            print(f"missing {path}: row left without the new judge")
            continue
        fake = load_kept(path)
        t0 = time.perf_counter()
        ev = latentforge.evaluate_images(fake, data=r["dataset"], resolution=fake.shape[-1], features=features,
                                         progress=False)
        r["rejudged"] = {"feature_network": ev["feature_network"], "n_fake": ev["n_fake"], "samples": str(path),
                         "seconds": round(time.perf_counter() - t0, 1), **{k: ev.get(k) for k in KEYS}}
        print(f"{path.parent.name} @{r['budget_s']:.0f}s: FID {r['fid']:.3g} -> {ev['fid']:.4g} "
              f"({r['rejudged']['seconds']} s)", flush=True)


def print_side_by_side(rows: list[dict]) -> None:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "rejudged" in r:
            groups.setdefault((r["dataset"], r["budget_s"], r["model"]), []).append(r)
    old_net = {r["feature_network"] for r in rows}
    new_net = {r["rejudged"]["feature_network"] for rs in groups.values() for r in rs}
    print(f"\nold judge: {', '.join(sorted(old_net))}; new judge: {', '.join(sorted(new_net))}")
    print(f"{'data':<6} {'budget':>6} {'model':<6} {'n':>2} {'old FID':>10} {'old rec':>8} {'new FID':>13} "
          f"{'new KID':>9} {'new prec':>8} {'new rec':>8} {'new cov':>8}")
    for (d, b, m), rs in sorted(groups.items()):
        def mean(key, new=True):
            vals = [(r["rejudged"] if new else r).get(key) for r in rs]
            vals = [v for v in vals if v is not None]
            return (np.mean(vals), np.std(vals)) if vals else (float("nan"), float("nan"))
        fid, fid_sd = mean("fid")
        print(f"{d:<6} {b:>6.0f} {m:<6} {len(rs):>2} {mean('fid', False)[0]:>10.3g} {mean('recall', False)[0]:>8.2f} "
              f"{f'{fid:.1f}±{fid_sd:.1f}':>13} {mean('kid')[0]:>9.4f} {mean('precision')[0]:>8.2f} "
              f"{mean('recall')[0]:>8.2f} {mean('coverage')[0]:>8.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, required=True, help="the run root the benchmark kept")
    p.add_argument("--features", default="effnet")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    load0, t0 = os.getloadavg(), time.time()
    rows = rows_from_runs(args.runs)
    if args.out.is_file():  # scored before by this judge: keep those figures, score only the new rows
        done = {(r["dataset"], r["model"], r["seed"], r["budget_s"]): r["rejudged"]
                for r in json.loads(args.out.read_text()).get("rows", []) if "rejudged" in r}
        for r in rows:
            old = done.get((r["dataset"], r["model"], r["seed"], r["budget_s"]))
            if old is not None and old["feature_network"].split("@")[0].startswith(args.features):
                r["rejudged"] = old
    rejudge_rows([r for r in rows if "rejudged" not in r], args.runs, args.features)
    print_side_by_side(rows)
    write_record("rejudge", args.out, load0, wall_s=round(time.time() - t0, 1), runs=str(args.runs),
                 features=args.features, rows=rows)


if __name__ == "__main__":
    main()
