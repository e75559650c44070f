"""How should a clustered DeAE draw fresh patterns? The two rules scored on the same checkpoints.

  frequency  a cluster with its training frequency, then a first-level channel inside its block (the `cpu` preset)
  uniform    the first-level channel over all channels, ignoring the clusters (the official sample.py; `paper`)

Both rules decode through the same weights, so the comparison is paired: only the patterns differ. The runs are
small_data.py's DeAE runs (`<set>-deae-s<seed>`, `cpu` preset, 32 clusters), read at their last checkpoint and
scored as small_data scores them (FID against the training images on the ~100-image sets, against held-out images
on the others; one feature network for all).

    python benchmarks/pattern_sampling.py --runs /work/bench_runs/small_data/emoji-100-deae-s0 ...
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import cell, print_table, write_record  # noqa: E402
from small_data import fid_reference, heldout_for, shown_fid_key  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pattern_sampling.json"
RULES = ("frequency", "uniform")
KEYS = ("fid", "fid_train", "kid", "precision", "recall", "coverage", "near_copy_fraction",
        "nn_feature_ratio_vs_heldout", "sample_distinct_fraction")


def score_run(run: Path, n: int, features: str) -> list[dict]:
    """One row per rule for the run's last checkpoint."""
    from latentforge import load_dataset, load_run
    from latentforge.metrics.evaluate import evaluate, resolve_features

    set_name = run.name.split("-deae")[0]
    loaded = load_run(run)
    if not getattr(loaded.task, "patterns", None) or loaded.task.patterns.clusters is None:
        raise SystemExit(f"{run} is not a DeAE with a clustered pattern code: the two rules draw alike there")
    train_set, held = load_dataset(loaded.cfg.data), heldout_for(set_name)
    extractor = resolve_features(features, train_set, held, progress=False)
    reference = fid_reference(set_name)
    rows = []
    for rule in RULES:
        loaded.task.patterns.sampling = rule
        ev = evaluate(loaded.task.sample(n, seed=1), train_set, held, extractor, seed=1)
        rows.append({"run": run.name, "set": set_name, "step": loaded.step, "rule": rule,
                     "feature_network": ev["feature_network"], "n_fake": ev["n_fake"],
                     "fid_reference": reference,
                     "fid_shown": ev[shown_fid_key(set_name)],
                     **{k: ev.get(k) for k in KEYS}})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="small_data DeAE run folders")
    p.add_argument("--n", type=int, default=1000, help="samples scored per rule")
    p.add_argument("--features", default="effnet", help="evaluation feature network (latentforge eval --features)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args()
    load0, t0 = os.getloadavg(), time.time()
    rows = []
    for run in args.runs:  # the reference features are cached: computed once per set for both rules
        rows += score_run(run, args.n, args.features)
    print_table(rows, [
        ("run", "<22", lambda r: r["run"]), ("step", ">6", lambda r: str(r["step"])),
        ("rule", "<10", lambda r: r["rule"]),
        ("FID", ">7", lambda r: f"{r['fid_shown']:.1f}"), ("vs", ">8", lambda r: r["fid_reference"]),
        ("KID", ">6", lambda r: cell(r, "kid", ".3f")), ("prec", ">5", lambda r: cell(r, "precision", ".2f")),
        ("recall", ">6", lambda r: cell(r, "recall", ".2f")), ("cover", ">5", lambda r: cell(r, "coverage", ".2f")),
        ("copies", ">6", lambda r: cell(r, "near_copy_fraction", ".3f")),
        ("NN ratio", ">8", lambda r: cell(r, "nn_feature_ratio_vs_heldout", ".2f"))],
        footer=f"feature network: {', '.join(sorted({r['feature_network'] for r in rows}))}; {args.n} samples per "
               "rule from the same weights")
    write_record("pattern_sampling", args.out, load0, wall_s=round(time.time() - t0, 1),
                 settings={"runs": [str(r) for r in args.runs], "n": args.n, "features": args.features}, rows=rows)


if __name__ == "__main__":
    main()
