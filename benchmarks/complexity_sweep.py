"""The complexity study on a built-in set, as a benchmark: `latentforge sweep` with stated budgets, then its
sweep.json (every cell, the C_eps/AUC tables) and its plot copied to benchmarks/results/ with the machine's load.

    python benchmarks/complexity_sweep.py --data emoji --latents gaussian,ssl,deae --widths 0.125,0.25,0.5,1 \
        --steps 400 --deae-steps 1500 --runs /tmp/sweep-emoji

Run folders stay under --runs (default: a temporary folder); rerunning with the same --runs resumes the sweep.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="emoji")
    p.add_argument("--latents", default="gaussian,ssl,deae")
    p.add_argument("--widths", default="0.125,0.25,0.5,1")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--deae-steps", type=int, default=1500)
    p.add_argument("--deae-run", default=None, help="an existing DeAE run on the same data (default: train one)")
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--set", dest="overrides", action="append", default=["data.resolution=32"])
    p.add_argument("--runs", default=None)
    p.add_argument("--name", default=None, help="results file stem (default: complexity_sweep_<data>)")
    args = p.parse_args()

    from latentforge.cli.main import _print_sweep
    from latentforge.complexity.sweep import Sweep, SweepSpec

    root = Path(args.runs or tempfile.mkdtemp(prefix="sweep_"))
    spec = SweepSpec(data=args.data, latents=args.latents.split(","), widths=[float(w) for w in args.widths.split(",")],
                     seeds=list(range(args.seeds)), steps=args.steps, preset="cpu", overrides=args.overrides,
                     eval_n=args.eval_n, deae_steps=args.deae_steps, deae_run=args.deae_run)
    load0, t0 = os.getloadavg(), time.time()
    summary = Sweep(root, spec, progress=False).run()
    _print_sweep(summary)
    stem = args.name or f"complexity_sweep_{args.data}"
    RESULTS.mkdir(exist_ok=True)
    record = {"benchmark": "complexity_sweep", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "machine": f"{os.cpu_count()} cores, CPU only", "loadavg_before": load0, "loadavg_after": os.getloadavg(),
              "wall_s": round(time.time() - t0, 1), "runs": str(root), "sweep": summary}
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=2))
    if (root / "quality_vs_params.png").is_file():
        shutil.copy(root / "quality_vs_params.png", RESULTS / f"{stem}.png")
    print(f"wrote {RESULTS / (stem + '.json')}")


if __name__ == "__main__":
    main()
