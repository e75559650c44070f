"""Time and memory of one complexity-sweep cell per generator width: what a sweep will cost before it is run.

Each width runs in a fresh subprocess (so peak memory does not leak between widths): the DCGAN `cpu` preset at
32x32 on the chosen data, N(0, I) latent, `--steps` real training steps through `latentforge.train` after a 5-step
warm-up run. Reported: generator and discriminator parameters, seconds per step (median of 3 timed chunks), images
per second, and the growth of peak RSS over the process's baseline after imports. Writes
benchmarks/results/sweep_cell_cost.json.

    python benchmarks/sweep_cell_cost.py --data emoji --widths 0.125,0.25,0.5,1,2 --threads 2
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "sweep_cell_cost.json"


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge
    from latentforge.data import load_dataset
    from latentforge.config import DataConfig

    torch.set_num_threads(args.threads)
    load_dataset(DataConfig(name=args.data, resolution=32))  # decode (cached) before the baseline
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sets = ["data.resolution=32", f"model.width={args.width}", f"train.threads={args.threads}", "train.compile=false", "train.log_every=1",
            "train.sample_every=100000", "train.checkpoint_every=100000"]
    with tempfile.TemporaryDirectory() as tmp:
        latentforge.train("dcgan", data=args.data, steps=5, out=Path(tmp) / "warm", preset="cpu", overrides=sets,
                          progress=False)
        chunks = []
        for i in range(3):
            t0 = time.perf_counter()
            latentforge.train("dcgan", data=args.data, steps=args.steps, out=Path(tmp) / f"r{i}", preset="cpu",
                              overrides=sets, progress=False)
            chunks.append(time.perf_counter() - t0)
        info = json.loads((Path(tmp) / "r0" / "run.json").read_text())
    per_step = sorted(chunks)[1] / args.steps  # includes the end-of-run summary (256 samples): an upper bound
    return {"width": args.width, "generator_parameters": info["task"]["generator_parameters"],
            "discriminator_parameters": info["task"]["discriminator_parameters"], "batch": info["batch_size"],
            "s_per_step": round(per_step, 4), "img_per_s": round(info["batch_size"] / per_step, 1),
            "peak_rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="emoji")
    p.add_argument("--widths", default="0.125,0.25,0.5,1,2")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--width", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    load0 = os.getloadavg()
    rows = []
    for w in args.widths.split(","):
        proc = subprocess.run([sys.executable, __file__, "--worker", "--width", w, "--data", args.data,
                               "--steps", str(args.steps), "--threads", str(args.threads)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"width {r['width']:>6g}  G {r['generator_parameters']:>10,}  D {r['discriminator_parameters']:>8,}  "
              f"{r['s_per_step']:.3f} s/step  {r['img_per_s']:>7.1f} img/s  peak RSS {r['peak_rss_mib']:.0f} MiB "
              f"(+{r['peak_rss_growth_mib']:.0f})", flush=True)
    record = {"benchmark": "sweep_cell_cost", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "data": args.data, "resolution": 32, "threads": args.threads, "steps": args.steps,
              "cpu_count": os.cpu_count(), "loadavg_before": load0, "loadavg_after": os.getloadavg(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
