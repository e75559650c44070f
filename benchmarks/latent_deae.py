"""Latent DeAE vs the diffusion prior on the same frozen autoencoder, at equal wall-clock budgets with the
autoencoder's own training time counted, beside the pixel DeAE and DCGAN rows of deae_vs_dcgan by the same judge
(emoji: results/deae_vs_dcgan_rejudged.json; MNIST: results/deae_vs_dcgan_mnist.json, from
`deae_vs_dcgan.py --datasets mnist --seeds 0,1 --out results/deae_vs_dcgan_mnist.json`).

Per (dataset, seed), 32x32, one thread per run:
  1. an `ae` (cpu preset: 4x8x8 latent) trains for --ae-budget seconds;
  2. a latent DeAE (`latent-deae` cpu preset) and a diffusion prior (`prior` cpu preset) train on its frozen,
     cached latents side by side, and are evaluated at each model-time in --budgets minus the autoencoder's time
     (the table with the autoencoder counted) and at each budget itself (the table for a user who already has an
     autoencoder): `latentforge eval`, the --features judge, held-out split, --n samples.
Figures: FID, KID, recall, coverage, near-copy fraction (held-out images' own rate beside it), NN feature ratio vs
held-out, seconds and steps to leave the plateau (latent DeAE: first diagnostic with pattern discrimination <= 0.7,
in latent space; the pixel ratio beside it), training img/s, sampling img/s, parameters.
--cost: the cost of one DeAE epoch in latent vs pixel space (cpu presets, the same images), as a ratio of
interleaved timings in one process.

    python benchmarks/latent_deae.py --datasets emoji,mnist --seeds 0,1 --runs RUNS   # the table (about 2.5 h)
    python benchmarks/latent_deae.py --cost --datasets emoji                          # the epoch-cost ratio
    python benchmarks/latent_deae.py --datasets emoji --seeds 0 --methods latent-deae,latent-deae-image \
        --budgets 900 --runs RUNS2     # does the image term pay? (link RUNS/emoji-ae-s0 into RUNS2 to share the AE)
    python benchmarks/latent_deae.py --datasets digits --budgets 40,80 --ae-budget 20 --n 200 --seeds 0   # smoke
    python benchmarks/latent_deae.py --collect RUNS                                    # re-read finished rows
Rerunning into the same RUNS skips finished cells (and autoencoders) and restarts stopped ones.
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
from _record import cell, print_table as print_rows, write_record  # noqa: E402
from _workers import add_pool_arguments, mean_std, run_cells  # noqa: E402
from deae_vs_dcgan import keep_samples  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latent_deae.json"
REJUDGED = Path(__file__).resolve().parent / "results" / "deae_vs_dcgan_rejudged.json"
PIXEL_MNIST = Path(__file__).resolve().parent / "results" / "deae_vs_dcgan_mnist.json"
METHODS = {  # benchmark name: (model type, overrides on its cpu preset)
    "latent-deae": ("latent-deae", []),
    "prior": ("prior", []),
    "latent-deae-image": ("latent-deae", ["model.loss.pixel=mse"]),  # plus the image term through the decoder
}
KEYS = ("fid", "kid", "recall", "coverage", "near_copy_fraction", "heldout_near_copy_fraction",
        "nn_feature_ratio_vs_heldout", "memorisation_flag")
PLATEAU_EXIT = 0.7
COMMON = ["train.threads=1", "train.compile=false", "train.log_every=25", "train.checkpoint_every=100000"]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def training_clock(recs: list[dict]) -> list[tuple[int, float]]:
    """(step, seconds of training since the run began) for every logged training step, across resumed sessions
    (each session's `time_s` restarts; its summary's `wall_s` carries over)."""
    out, offset = [], 0.0
    for r in recs:
        if r["kind"] == "train":
            out.append((r["step"], offset + r["time_s"]))
        elif r["kind"] == "summary":
            offset += r["wall_s"]
    return out


def plateau_exit(recs: list[dict], threshold: float = PLATEAU_EXIT, key: str = "pattern_discrimination_ratio"
                 ) -> dict:
    """The first diagnostic whose `key` is at or below `threshold`: its step and training time (None: not yet)."""
    clock = training_clock(recs)
    for d in (r for r in recs if r["kind"] == "diagnostic" and key in r):
        if d[key] <= threshold:
            return {"step": d["step"], "s": min((t for s, t in clock if s >= d["step"]), default=None)}
    return {"step": None, "s": None}


def plateau_figures(run: Path) -> dict:
    """When the whole run crossed the plateau rule's 0.9 and the benchmark's 0.7, in latent space and in pixels."""
    recs = _records(run)
    out = {}
    for space, key in (("latent", "pattern_discrimination_ratio"), ("pixels", "pattern_discrimination_ratio_pixels")):
        for threshold in (0.9, PLATEAU_EXIT):
            hit = plateau_exit(recs, threshold, key)
            out[f"{space}_{threshold}_step"], out[f"{space}_{threshold}_s"] = hit["step"], hit["s"]
    return out


def train_autoencoder(args: argparse.Namespace, out: Path) -> dict:
    import latentforge

    res = latentforge.train("ae", data=args.dataset, steps=100_000, out=out, preset="cpu", progress=False,
                            overrides=[*COMMON, "data.resolution=32", f"train.seed={args.seed}",
                                       "train.sample_every=100000", f"train.time_limit_s={args.ae_budget}"])
    return {"ae_s": res.summary["wall_s"], "ae_steps": res.step, "ae_recon_rms_heldout":
            res.summary.get("recon_rms_heldout"), "ae_parameters": sum(latentforge.load_run(out).task.describe()
                                                                       ["parameters"].values())}


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge

    torch.set_num_threads(1)
    root = Path(args.run_root)
    ae_run = root / f"{args.dataset}-ae-s{args.seed}"
    if args.model == "ae":
        return train_autoencoder(args, ae_run)
    if args.model == "cost":
        return epoch_cost(args, root)
    ae = json.loads((ae_run / "ae.json").read_text())
    out = root / f"{args.dataset}-{args.model}-s{args.seed}"
    totals = [float(b) for b in args.budgets.split(",")]
    budgets = sorted({b - ae["ae_s"] for b in totals} | set(totals))  # with the autoencoder's time, and without
    model_type, variant = METHODS[args.model]
    common = [*COMMON, *variant, f"model.source.run={ae_run}", f"train.seed={args.seed}", "train.sample_every=100"]
    with tempfile.TemporaryDirectory() as tmp:  # steps/s between steps 5 and 30 (warm-up excluded)
        latentforge.train(model_type, steps=30, out=Path(tmp) / "probe", preset="cpu", progress=False,
                          overrides=[*common, "train.log_every=5", "train.sample_every=100000"])
        times = {r["step"]: r["time_s"] for r in _records(Path(tmp) / "probe") if r["kind"] == "train"}
    # the budget ends the run, and step-scheduled settings (DeAE's weight-decay ramp) span it
    steps = int(25 / max(times[30] - times[5], 1e-6) * budgets[-1] * 1.15) + 10
    rows, spent = [], 0.0
    for i, model_time in enumerate(b for b in budgets if b > 0):
        res = latentforge.train(model_type, steps=steps, out=out, preset="cpu", progress=False, resume=i > 0,
                                overrides=(common if i == 0 else []) + [f"train.time_limit_s={model_time - spent}"])
        spent += res.summary["wall_s"]
        ev = latentforge.evaluate_run(out, n=args.n, features=args.features, progress=False)
        task = latentforge.load_run(out).task
        t0 = time.perf_counter()
        task.sample(256, seed=5)
        sample_rate = 256 / (time.perf_counter() - t0)
        keep_samples(task, out / f"samples_{model_time:.0f}s.npy", args.n)
        recs = _records(out)
        img_s = [r["img_per_s"] for r in recs if r["kind"] == "train"]
        img_s = img_s[2:] or img_s  # the first intervals hold the warm-up
        rows.append({"dataset": args.dataset, "method": args.model, "seed": args.seed, "model_s": round(spent, 1),
                     "ae_s": ae["ae_s"], "total_s": round(spent + ae["ae_s"], 1), "steps": res.step,
                     "steps_planned": steps,
                     "train_img_per_s": sorted(img_s)[len(img_s) // 2] if img_s else None,
                     "sample_img_per_s": round(sample_rate, 1),
                     "parameters": sum(task.describe()["parameters"].values()), "ae_parameters": ae["ae_parameters"],
                     "ae_steps": ae["ae_steps"], "ae_recon_rms_heldout": ae["ae_recon_rms_heldout"],
                     "pattern_discrimination": res.summary.get("pattern_discrimination_ratio"),
                     "feature_network": ev["feature_network"], "n_fake": ev["n_fake"],
                     "plateau_exit_s": plateau_exit(recs)["s"], **{k: ev.get(k) for k in KEYS}})
        (out / "latent_deae_rows.json").write_text(json.dumps(rows, indent=2))  # partial results survive a stop
    return {"rows": rows}


def epoch_cost(args: argparse.Namespace, root: Path, rounds: int = 6, steps: int = 15) -> dict:
    """Seconds per epoch of the pixel DeAE and the latent DeAE (cpu presets, batch 64, the same images), measured
    in alternating rounds in this one process so both see the same machine; the ratio is the figure."""
    import numpy as np
    import torch

    import latentforge
    from latentforge.config import build_config
    from latentforge.tasks import build_task, task_class
    from latentforge.train.task import Batch, DataShape

    ae_run = root / f"cost-{args.dataset}-ae"
    if not (ae_run / "run.json").is_file():  # any trained AE of the right shape times the same
        latentforge.train("ae", data=args.dataset, steps=20, out=ae_run, preset="cpu", progress=False,
                          overrides=[*COMMON, "data.resolution=32", "train.sample_every=100000"])
    tasks = {}
    for model, extra in (("deae", ["data.resolution=32", f"data.name={args.dataset}"]),
                         ("latent-deae", [f"model.source.run={ae_run}"])):
        cfg = build_config("cpu", None, [*COMMON, "model.mask_clusters=0", "model.mask_subclusters=0", *extra],
                           model_type=model)
        cfg, data = task_class(model).prepare(cfg, progress=False)
        tasks[model] = (build_task(cfg, torch.device("cpu"), DataShape.of(data), data), data, cfg.train.batch_size)
    seconds = {m: [] for m in tasks}
    for r in range(rounds):
        for model, (task, data, bs) in tasks.items():
            idx = torch.arange(bs) + r * bs
            t0 = time.perf_counter()
            for s in range(steps):
                task.train_step(Batch(data.get(idx % len(data)), idx % len(data), 0, r * steps + s))
            seconds[model].append((time.perf_counter() - t0) / steps)
    n = len(tasks["deae"][1])
    per_epoch = {m: float(np.median(v[1:])) * n / tasks[m][2] for m, v in seconds.items()}  # round 0: warm-up
    return {"cost": {"dataset": args.dataset, "images": n, "batch": tasks["deae"][2],
                     "s_per_epoch": per_epoch, "latent_over_pixel": per_epoch["latent-deae"] / per_epoch["deae"],
                     "rounds": rounds, "steps_per_round": steps}}


def finished(run: Path, n_budgets: int) -> bool:
    """Whether `run` holds its evaluations at every budget, twice (autoencoder counted and not). A run stopped
    before that is set aside (renamed `*.stopped-<time>`, kept for a look) so the cell restarts from scratch: its
    wall-clock budgets cannot be resumed fairly."""
    rows = run / "latent_deae_rows.json"
    if rows.is_file() and len(json.loads(rows.read_text())) >= 2 * n_budgets:
        return True
    if run.exists():
        run.rename(run.with_name(f"{run.name}.stopped-{time.strftime('%Y%m%d-%H%M%S')}"))
    return False


def collect(run_root: Path) -> tuple[list[dict], dict]:
    """The rows of every run, and the plateau crossings of each latent DeAE run over its whole training."""
    runs = [p for p in sorted(run_root.iterdir()) if p.is_dir() and ".stopped-" not in p.name]
    rows = [r for p in runs if (p / "latent_deae_rows.json").is_file()
            for r in json.loads((p / "latent_deae_rows.json").read_text())]
    plateaus = {p.name: plateau_figures(p) for p in runs
                if "-latent-deae" in p.name and (p / "metrics.jsonl").is_file()}
    return rows, plateaus


def aggregate(rows: list[dict], budgets: list[float]) -> list[dict]:
    """One row per (dataset, budget, method, counting the autoencoder or not), mean ± std over seeds."""
    out = []
    for counted in (True, False):
        for budget in budgets:
            nearest: dict[tuple, dict] = {}  # per run, the evaluation nearest the budget (within 10 %)
            for r in rows:
                gap = abs((r["total_s"] if counted else r["model_s"]) - budget)
                key = (r["dataset"], r["method"], r["seed"])
                if gap <= 0.1 * budget and (key not in nearest or gap < nearest[key][0]):
                    nearest[key] = (gap, r)
            groups: dict[tuple, list[dict]] = {}
            for (d, m, _), (_, r) in nearest.items():
                groups.setdefault((d, m), []).append(r)
            for (d, m), rs in sorted(groups.items()):
                row = {"dataset": d, "budget_s": budget, "ae_counted": counted, "method": m, "seeds": len(rs),
                       "steps": round(sum(r["steps"] for r in rs) / len(rs)),
                       "feature_network": rs[0]["feature_network"],
                       "memorised": any(r.get("memorisation_flag") for r in rs)}
                for k in (*KEYS[:-1], "plateau_exit_s", "train_img_per_s", "sample_img_per_s", "parameters",
                          "ae_s"):
                    row[k], row[k + "_std"] = mean_std([r.get(k) for r in rs])
                out.append(row)
    return out


def pixel_rows(budgets: list[float]) -> list[dict]:
    """The pixel DeAE and DCGAN rows at these budgets from deae_vs_dcgan, mean over seeds: the emoji runs as
    re-judged (rejudge.py), the MNIST runs judged directly by the same network when they ran."""
    found = []
    if REJUDGED.is_file():
        found += [r | r["rejudged"] for r in json.loads(REJUDGED.read_text())["rows"] if "rejudged" in r]
    if PIXEL_MNIST.is_file():
        found += json.loads(PIXEL_MNIST.read_text())["rows"]
    groups: dict[tuple, list[dict]] = {}
    for r in found:
        if r["budget_s"] in budgets and r["feature_network"].startswith("effnet"):
            groups.setdefault((r["dataset"], r["budget_s"], r["model"]), []).append(r)
    out = []
    for (d, b, m), rs in sorted(groups.items()):
        row = {"dataset": d, "budget_s": b, "ae_counted": None, "method": f"{m} (pixels)", "seeds": len(rs),
               "feature_network": rs[0]["feature_network"]}
        for k in ("fid", "kid", "recall", "coverage", "near_copy_fraction", "nn_feature_ratio_vs_heldout"):
            row[k], row[k + "_std"] = mean_std([r.get(k) for r in rs])
        out.append(row)
    return out


def print_table(summary: list[dict]) -> None:
    print_rows(summary, [
        ("data", "<6", lambda r: r["dataset"]), ("budget", ">6", lambda r: f"{r['budget_s']:.0f}"),
        ("AE", ">3", lambda r: {True: "in", False: "out", None: ""}[r["ae_counted"]]),
        ("method", "<17", lambda r: r["method"]), ("n", ">2", lambda r: str(r["seeds"])),
        ("FID", ">13", lambda r: f"{r['fid']:.1f}±{r['fid_std']:.1f}" if r.get("fid") is not None else "-"),
        ("KID", ">6", lambda r: cell(r, "kid", ".3f")), ("recall", ">6", lambda r: cell(r, "recall", ".2f")),
        ("cover", ">5", lambda r: cell(r, "coverage", ".2f")),
        ("copies", ">11", lambda r: f"{cell(r, 'near_copy_fraction', '.3f')}/"
                                    f"{cell(r, 'heldout_near_copy_fraction', '.3f')}"),
        ("NN", ">5", lambda r: cell(r, "nn_feature_ratio_vs_heldout", ".2f")),
        ("plateau s", ">9", lambda r: cell(r, "plateau_exit_s", ".0f")),
        ("img/s", ">6", lambda r: cell(r, "train_img_per_s", ".0f")),
        ("smp/s", ">6", lambda r: cell(r, "sample_img_per_s", ".0f")),
        ("params", ">8", lambda r: cell(r, "parameters", ".2e"))],
        flag=lambda r: "  MEMORISES" if r.get("memorised") else "",
        footer=f"feature network: {', '.join(sorted({r['feature_network'] for r in summary}))}; AE in: the budget "
               f"includes the autoencoder's training, out: it does not; copies = near-copy fraction of samples / of "
               f"held-out images")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="emoji,mnist")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--methods", default="latent-deae,prior", help=f"of {', '.join(METHODS)}")
    p.add_argument("--budgets", default="600,1800", help="wall-clock budgets in seconds (autoencoder included)")
    p.add_argument("--ae-budget", type=float, default=300.0, help="the autoencoder's training time in seconds")
    p.add_argument("--n", type=int, default=1000, help="samples scored per evaluation (and kept as .npy)")
    p.add_argument("--features", default="effnet", help="evaluation feature network (latentforge eval --features)")
    p.add_argument("--cost", action="store_true", help="only the latent/pixel epoch-cost ratio")
    p.add_argument("--collect", type=Path, default=None, help="only re-read the rows of finished runs in this folder")
    add_pool_arguments(p, DEFAULT_OUT, ("--model",))
    args = p.parse_args()
    if unknown := set(args.methods.split(",")) - set(METHODS):
        p.error(f"unknown --methods {', '.join(sorted(unknown))} (choose from {', '.join(METHODS)})")
    if args.worker:
        print(json.dumps(worker(args)))
        return
    load0, t0 = os.getloadavg(), time.time()
    budgets = [float(b) for b in args.budgets.split(",")]
    datasets, seeds = args.datasets.split(","), args.seeds.split(",")
    run_root = args.collect or Path(args.runs or tempfile.mkdtemp(prefix="latent_deae_"))
    base = ["--budgets", args.budgets, "--n", str(args.n), "--features", args.features, "--run-root", str(run_root),
            "--ae-budget", str(args.ae_budget)]
    extra: dict = {}
    if args.cost:
        res = run_cells(__file__, {d: ["--worker", "--dataset", d, "--model", "cost", "--seed", "0", *base]
                                   for d in datasets}, 1)
        extra["cost"] = [r.get("cost", r) for r in res.values()]
        print(json.dumps(extra["cost"], indent=2))
        write_record("latent_deae_cost", args.out.with_name(args.out.stem + "_cost.json"), load0,
                     wall_s=round(time.time() - t0, 1), **extra)
        return
    if args.collect is None:
        from latentforge.metrics.evaluate import resolve_features

        resolve_features(args.features, None, None, progress=False)  # the judge's weights, once, before workers

        def keep_ae(key, res):
            if "ae_s" in res:
                (run_root / f"{key[0]}-ae-s{key[1]}" / "ae.json").write_text(json.dumps(res))
        run_cells(__file__, {(d, s): ["--worker", "--dataset", d, "--model", "ae", "--seed", s, *base]
                             for d in datasets for s in seeds
                             if not (run_root / f"{d}-ae-s{s}" / "ae.json").is_file()}, args.jobs, on_done=keep_ae)
        cells = {(d, s, m): ["--worker", "--dataset", d, "--model", m, "--seed", s, *base]
                 for d in datasets for s in seeds for m in args.methods.split(",")
                 if not finished(run_root / f"{d}-{m}-s{s}", len(budgets))}
        run_cells(__file__, cells, args.jobs)
    rows, plateaus = collect(run_root)
    summary = aggregate(rows, budgets) + pixel_rows(budgets)
    print_table(summary)
    for run, fig in plateaus.items():
        print(f"{run}: pattern discrimination <= 0.9 / <= {PLATEAU_EXIT} at step (s): latent "
              f"{fig['latent_0.9_step']} ({fig['latent_0.9_s']}) / {fig[f'latent_{PLATEAU_EXIT}_step']} "
              f"({fig[f'latent_{PLATEAU_EXIT}_s']}); pixels {fig['pixels_0.9_step']} ({fig['pixels_0.9_s']}) / "
              f"{fig[f'pixels_{PLATEAU_EXIT}_step']} ({fig[f'pixels_{PLATEAU_EXIT}_s']})")
    write_record("latent_deae", args.out, load0, wall_s=round(time.time() - t0, 1), runs=str(run_root),
                 settings={k: v for k, v in vars(args).items() if k not in ("out", "collect", "runs")},
                 rows=rows, summary=summary, plateaus=plateaus)


if __name__ == "__main__":
    main()
