"""Does decoupling pay? The Decoupled Autoencoder against the same autoencoder trained jointly, each followed by
the same latent diffusion prior with the same budget ("Complexity Matters", section 2 of SPEC; issue 16).

Per (dataset, method, seed), in its own subprocess with one thread (`--jobs` at once, one per core):
  1. `train ae` (joint) or `train dae` (stage 1 with the weak auxiliary decoder, stage 2 with a fresh decoder on the
     frozen encoder), both for `--ae-steps` steps of the same preset: equal total steps;
  2. `train prior --from` that run for `--prior-steps` steps (same prior preset and seed for both methods);
  3. `latentforge eval` of the prior's samples: held-out split, the offline feature network named in the table,
     `--n` samples; plus the autoencoder's held-out reconstruction error and the prior's final training loss.
Prints a table (mean ± std over seeds) and writes benchmarks/results/dae_vs_joint.json, negative results included.

    python benchmarks/dae_vs_joint.py --datasets emoji,mnist --seeds 0,1,2 --jobs 2
    python benchmarks/dae_vs_joint.py --datasets digits --seeds 0 --ae-steps 40 --prior-steps 40 --n 200  # smoke
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402
from _workers import add_pool_arguments, mean_std, run_cells, warm_feature_networks  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dae_vs_joint.json"
METHODS = {"joint": "ae", "dae": "dae"}
KEYS = ("recon_rms_heldout", "prior_final_loss", "fid", "kid", "precision", "recall", "coverage",
        "diversity_ratio", "ae_train_s", "prior_train_s")


def _median_img_s(run: Path) -> float:
    rates = [r["img_per_s"] for r in map(json.loads, (run / "metrics.jsonl").open()) if r["kind"] == "train"]
    return statistics.median(rates[1:] or rates)


def worker(a: argparse.Namespace) -> dict:
    import torch

    import latentforge

    torch.set_num_threads(1)
    common = ["train.threads=1", "train.compile=false", f"train.seed={a.seed}", "train.sample_every=100000", "train.checkpoint_every=100000"]
    root = Path(a.run_root) / f"{a.dataset}-{a.method}-s{a.seed}"
    ae = latentforge.train(METHODS[a.method], data=a.dataset, steps=a.ae_steps, out=root / "autoencoder",
                           preset=a.preset, overrides=common + list(a.ae_set or []), progress=False)
    prior = latentforge.train("prior", steps=a.prior_steps, out=root / "prior", preset=a.prior_preset,
                              overrides=common + [f"model.source.run={root / 'autoencoder'}"], progress=False)
    ev = latentforge.evaluate_run(root / "prior", n=a.n, progress=False)
    losses = [r["loss"] for r in map(json.loads, (root / "prior" / "metrics.jsonl").open()) if r["kind"] == "train"]
    info = json.loads((root / "autoencoder" / "run.json").read_text())
    return {"dataset": a.dataset, "method": a.method, "seed": a.seed,
            "recon_rms_heldout": ae.summary.get("recon_rms_heldout"),
            "prior_final_loss": statistics.mean(losses[-10:]),  # last 10 logged intervals: the loss is noisy in t
            "ae_train_s": ae.summary["wall_s"], "prior_train_s": prior.summary["wall_s"],
            "ae_img_per_s": _median_img_s(root / "autoencoder"), "prior_img_per_s": _median_img_s(root / "prior"),
            "ae_parameters": info["task"]["parameters"], "latent_shape": info["task"]["latent_shape"],
            "latent_scale": prior.summary.get("latent_scale"), "feature_network": ev["feature_network"],
            "n_fake": ev["n_fake"], "fid_floor": ev.get("fid_heldout_vs_train"),
            **{k: ev.get(k) for k in ("fid", "kid", "precision", "recall", "coverage", "diversity_ratio")}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="emoji,mnist")
    p.add_argument("--methods", default="joint,dae")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--preset", default="cpu16", help="autoencoder preset of both methods (default: cpu16, 16 px)")
    p.add_argument("--ae-steps", type=int, default=1000, help="autoencoder steps, equal for both methods")
    p.add_argument("--ae-set", action="append", help="extra autoencoder override for both methods (repeatable)")
    p.add_argument("--prior-preset", default="cpu")
    p.add_argument("--prior-steps", type=int, default=1500)
    p.add_argument("--n", type=int, default=1000, help="samples scored per evaluation")
    add_pool_arguments(p, DEFAULT_OUT, ("--method",))
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
        return

    from latentforge.config import build_config

    resolution = build_config(a.preset, None, a.ae_set, model_type="ae").data.resolution
    run_root = a.runs or tempfile.mkdtemp(prefix="dae_vs_joint_")
    datasets = a.datasets.split(",")
    load0, t0 = os.getloadavg(), time.time()
    warm_feature_networks(datasets, resolution)
    passthrough = ["--preset", a.preset, "--ae-steps", str(a.ae_steps), "--prior-preset", a.prior_preset,
                   "--prior-steps", str(a.prior_steps), "--n", str(a.n), "--run-root", run_root,
                   *[x for s in (a.ae_set or []) for x in ("--ae-set", s)]]
    cells = {(d, m, int(s)): ["--worker", "--dataset", d, "--method", m, "--seed", s, *passthrough]
             for d in datasets for s in a.seeds.split(",") for m in a.methods.split(",")}
    results = run_cells(__file__, cells, a.jobs)
    rows = [r for r in results.values() if "error" not in r]
    summary = aggregate(rows)
    print_table(summary)
    write_record("dae_vs_joint", a.out, load0, machine=f"one thread per job, {a.jobs} jobs at once",
                 wall_s=round(time.time() - t0, 1), resolution=resolution,
                 settings={k: v for k, v in vars(a).items() if k != "out"}, rows=rows, summary=summary,
                 errors=[{"cell": list(k), **v} for k, v in results.items() if "error" in v], run_root=run_root)


def aggregate(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for (d, m), rs in sorted(groups.items()):
        row = {"dataset": d, "method": m, "seeds": len(rs), "feature_network": rs[0]["feature_network"],
               "fid_floor": rs[0]["fid_floor"]}
        for k in KEYS:
            row[k], row[k + "_std"] = mean_std([r.get(k) for r in rs])
        out.append(row)
    return out


def print_table(summary: list[dict]) -> None:
    cols = [("recon_rms_heldout", "recon held-out", 4), ("prior_final_loss", "prior loss", 3), ("fid", "FID", 3),
            ("kid", "KID", 2), ("recall", "recall", 2), ("coverage", "coverage", 2),
            ("ae_train_s", "AE s", 3), ("prior_train_s", "prior s", 3)]
    print(f"{'data':<6} {'method':<6} {'n':>2} " + " ".join(f"{h:>15}" for _, h, _ in cols))
    for r in summary:
        cells = [(f"{r[k]:.{p}g}±{r[k + '_std']:.2g}" if r[k] is not None else "n/a") for k, _, p in cols]
        print(f"{r['dataset']:<6} {r['method']:<6} {r['seeds']:>2} " + " ".join(f"{c:>15}" for c in cells))
    for d in sorted({r["dataset"] for r in summary}):
        r0 = next(r for r in summary if r["dataset"] == d)
        print(f"{d}: feature network {r0['feature_network']}, FID floor (held-out vs train) {r0['fid_floor']:.3g}")


if __name__ == "__main__":
    main()
