"""Which sampler makes new SSL latents, and does any of them replay the training set? DCGANs fed SimCLR features of
the training images through each sampler, same recipe and budget, scored by the same evaluator, with its
memorisation figures beside the distribution metrics.

Configurations: `gmm` (10-component full-covariance mixture, the default), `empirical` with sigma 0.1, and
`empirical` with sigma 0 (pure replay of training features: what the memorisation figures must reveal), plus the
N(0, I) latent as the baseline. Each runs in its own subprocess with one thread (`--jobs` at once).

    python benchmarks/ssl_latent_samplers.py --data emoji --width 0.5 --steps 300 --jobs 2
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _record import write_record

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ssl_latent_samplers.json"
CONFIGS = {
    "gaussian": ["model.latent.kind=gaussian"],
    "ssl-gmm": ["model.latent.kind=ssl", "model.latent.sampler=gmm"],
    "ssl-empirical-0.1": ["model.latent.kind=ssl", "model.latent.sampler=empirical", "model.latent.sigma=0.1"],
    "ssl-empirical-0": ["model.latent.kind=ssl", "model.latent.sampler=empirical", "model.latent.sigma=0"],
}
KEYS = ("fid", "kid", "precision", "recall", "coverage", "nn_feature_ratio_vs_heldout", "nn_pixel_rms_median",
        "heldout_nn_pixel_rms_median", "near_copy_fraction")


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge

    torch.set_num_threads(1)
    out = Path(args.run_root) / args.config
    sets = ["data.resolution=32", f"model.width={args.width}", "train.threads=1", "train.compile=false", f"model.latent.ssl_steps={args.ssl_steps}",
            *CONFIGS[args.config]]
    res = latentforge.train("dcgan", data=args.data, steps=args.steps, out=out, preset="cpu", overrides=sets,
                            progress=False)
    ev = latentforge.evaluate_run(out, n=args.n, progress=False)
    latent = json.loads((out / "run.json").read_text())["task"]["latent"]
    return {"config": args.config, "steps": res.step, "train_s": res.summary["wall_s"],
            "feature_network": ev["feature_network"], "latent_network": latent.get("network"),
            **{k: ev.get(k) for k in KEYS}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="emoji")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--ssl-steps", type=int, default=400)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--run-root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    root, load0 = tempfile.mkdtemp(prefix="ssl_samplers_"), os.getloadavg()

    def one(config: str) -> dict:
        argv = [sys.executable, __file__, "--worker", "--config", config, "--run-root", root, "--data", args.data,
                "--width", str(args.width), "--steps", str(args.steps), "--ssl-steps", str(args.ssl_steps),
                "--n", str(args.n)]
        proc = subprocess.run(argv, capture_output=True, text=True)
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else \
            {"config": config, "error": proc.stderr[-1500:]}

    with cf.ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, args.configs.split(",")))
    print(f"{'latent / sampler':<19} {'FID':>7} {'KID':>6} {'prec':>5} {'rec':>5} {'cov':>5} {'NN feat ratio':>13} "
          f"{'NN px':>6} {'held-out NN px':>14} {'near-copy':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['config']:<19} ERROR {r['error'][-300:]}")
            continue
        print(f"{r['config']:<19} {r['fid']:>7.2f} {r['kid']:>6.3f} {r['precision']:>5.2f} {r['recall']:>5.2f} "
              f"{r['coverage']:>5.2f} {r['nn_feature_ratio_vs_heldout']:>13.2f} {r['nn_pixel_rms_median']:>6.3f} "
              f"{r['heldout_nn_pixel_rms_median']:>14.3f} {r['near_copy_fraction']:>9.3f}")
    write_record("ssl_latent_samplers", args.out, load0, machine="one thread per job",
                 settings={k: v for k, v in vars(args).items() if k not in ("out", "worker")}, rows=rows)


if __name__ == "__main__":
    main()
