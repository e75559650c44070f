"""Which generator for a small folder? DeAE vs DCGAN vs DCGAN + DiffAugment at about 100, 300 and 1,000 images.

Sets (32x32, drawn once from the built-in datasets' train splits and written as .npz folders-in-a-file, so each
run trains on exactly these images with no held-out split of its own):
  emoji-100   the 'Smileys & Emotion' category (a seeded draw of 100 of its train images)
  emoji-300, emoji-1000, mnist-100, mnist-300, mnist-1000   seeded random draws from the whole train split
Reference: the built-in's held-out split (for emoji-100 only its Smileys & Emotion images). On the ~100-image sets
the table's FID is against the training images themselves (DiffAugment's few-shot protocol: a held-out split that
small cannot anchor a FID); the held-out split still gives the memorisation baselines.
Models (equal wall-clock budgets read from one run: train to the first budget, evaluate, continue, evaluate):
  deae        DeAE `cpu` preset           deae-paper  DeAE `paper` (the reference recipe, clustered code, MSE loss)
  dcgan       DCGAN `cpu` preset          dcgan-da    DCGAN `cpu` + DiffAugment color,translation,cutout
Each run is a subprocess with one thread, `--jobs` at once, the models of one set and seed side by side. Scores use
one feature network for every set (default: the ImageNet EfficientNet, `--features`), named in the table. Columns:
FID, KID, recall, coverage, near-copy fraction (vs the held-out images' own rate), the nearest-neighbour feature
ratio vs held-out, distinct fraction; a memorisation flag marks a model that replays its training images.

    python benchmarks/small_data.py                                   # all sets, 2 seeds (about 20 h on 2 cores)
    python benchmarks/small_data.py --sets emoji-100 --models deae,dcgan-da --seeds 0 --runs RUNS   # one pair
    python benchmarks/small_data.py --sets mnist-100 --budgets 20,40 --n 200 --seeds 0   # smoke check
    python benchmarks/small_data.py --collect RUNS   # re-read finished runs into the table and JSON
    python benchmarks/small_data.py --collect RUNS --earlier benchmarks/results/small_data.json   # plus the rows of
        an earlier record whose run folders are gone (another machine); a cell found in RUNS replaces its rows
    python benchmarks/small_data.py --grid RUNS/mnist-300-deae-s1/samples_1800s.npy \
        RUNS/mnist-300-dcgan-da-s1/samples_1800s.npy OUT.png   # 32 kept samples of each, first above second
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
from _record import cell, cpu_description, print_table as print_rows, write_record  # noqa: E402
from _workers import add_pool_arguments, mean_std, run_cells  # noqa: E402
from deae_vs_dcgan import keep_samples  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "small_data.json"
SETS = ("emoji-100", "emoji-300", "emoji-1000", "mnist-100", "mnist-300", "mnist-1000")
CATEGORY = {"emoji-100": "Smileys & Emotion"}
MODELS = {  # name -> (model, preset, overrides)
    "deae": ("deae", "cpu", []),
    "deae-paper": ("deae", "paper", ["model.loss.pixel=mse", "model.loss.perceptual=none"]),
    "dcgan": ("dcgan", "cpu", []),
    "dcgan-da": ("dcgan", "cpu", ["model.diffaug=color,translation,cutout"]),
}
KEYS = ("fid", "fid_train", "kid", "recall", "coverage", "near_copy_fraction", "heldout_near_copy_fraction",
        "nn_feature_ratio_vs_heldout", "sample_distinct_fraction", "memorisation_flag")
RESOLUTION, SUBSET_SEED = 32, 2026


def set_parts(name: str):
    """(dataset, size): 'emoji-300' -> ('emoji', 300)."""
    data, size = name.split("-")
    return data, int(size)


def build_subset(name: str, folder: Path) -> Path:
    """Write the set's training images (uint8, NCHW) to folder/NAME.npz once; the same draw on every machine."""
    import numpy as np

    from latentforge import load_dataset
    from latentforge.config import DataConfig

    path = folder / f"{name}.npz"
    if path.is_file():
        return path
    data, size = set_parts(name)
    train = load_dataset(DataConfig(name=data, resolution=RESOLUTION))
    pool = np.arange(len(train))
    if name in CATEGORY:
        pool = pool[train.labels.numpy() == train.class_names.index(CATEGORY[name])]
    pick = np.sort(np.random.default_rng(SUBSET_SEED).choice(pool, size=min(size, len(pool)), replace=False))
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=train.images[pick].numpy(), labels=train.labels[pick].numpy())
    return path


def fid_reference(name: str) -> str:
    """What the table's FID for a set is measured against: 'train' on the ~100-image sets (a held-out split that
    small cannot anchor a FID), 'held-out' above."""
    return "train" if set_parts(name)[1] <= 100 else "held-out"


def shown_fid_key(name: str) -> str:
    """The record key of the FID the table shows for a set: the one measured against `fid_reference(name)`."""
    return "fid_train" if fid_reference(name) == "train" else "fid"


def heldout_for(name: str):
    import torch

    from latentforge import load_dataset
    from latentforge.config import DataConfig

    data, _ = set_parts(name)
    held = load_dataset(DataConfig(name=data, resolution=RESOLUTION, split="test"))
    if name in CATEGORY:
        keep = torch.from_numpy((held.labels.numpy() == held.class_names.index(CATEGORY[name])).nonzero()[0])
        held = type(held)(held.images[keep].contiguous(), held.labels[keep], held.name, held.split,
                          held.fingerprint + "|" + CATEGORY[name], held.class_names, held.source)
    return held


def worker(args: argparse.Namespace) -> dict:
    import torch

    import latentforge
    from latentforge import load_dataset
    from latentforge.metrics.evaluate import evaluate, resolve_features

    torch.set_num_threads(1)
    model, preset, extra = MODELS[args.model]
    data_path = build_subset(args.dataset, Path(args.run_root) / "data")
    budgets = [float(b) for b in args.budgets.split(",")]
    common = [f"data.resolution={RESOLUTION}", "data.test_fraction=0", "data.near_duplicate_rms=0",
              "train.threads=1", "train.log_every=50", f"train.seed={args.seed}", "train.compile=false",
              "train.sample_every=100000", "train.checkpoint_every=100000", *extra]
    with tempfile.TemporaryDirectory() as tmp:  # steps/s between steps 5 and 30 (warm-up excluded)
        latentforge.train(model, data=str(data_path), steps=30, out=Path(tmp) / "probe", preset=preset,
                          overrides=common + ["train.log_every=5"], progress=False)
        times = {r["step"]: r["time_s"] for r in map(json.loads, (Path(tmp) / "probe" / "metrics.jsonl").open())
                 if r["kind"] == "train"}
    steps = int(25 / max(times[30] - times[5], 1e-6) * budgets[-1] * 1.15) + 10  # the budget ends the run
    out = Path(args.run_root) / f"{args.dataset}-{args.model}-s{args.seed}"
    held = heldout_for(args.dataset)
    rows, spent = [], 0.0
    for i, budget in enumerate(budgets):
        res = latentforge.train(model, data=str(data_path), steps=steps, out=out, preset=preset,
                                overrides=(common if i == 0 else []) + [f"train.time_limit_s={budget - spent}"],
                                resume=i > 0, progress=False)
        spent += res.summary["wall_s"]
        loaded = latentforge.load_run(out)
        train_set = load_dataset(loaded.cfg.data)
        extractor = resolve_features(args.features, train_set, held, progress=False)
        fake = loaded.task.sample(args.n, seed=1)
        ev = evaluate(fake, train_set, held, extractor, seed=1)
        keep_samples(loaded.task, out / f"samples_{budget:.0f}s.npy", args.n)
        diag = [r for r in map(json.loads, (out / "metrics.jsonl").open()) if r["kind"] == "diagnostic"]
        rows.append({"set": args.dataset, "model": args.model, "seed": args.seed, "budget_s": budget,
                     "cpu": cpu_description(), "finished": time.strftime("%Y-%m-%d %H:%M"),
                     "train_s": round(spent, 1), "steps": res.step, "epochs": res.step * min(64, len(train_set))
                     / len(train_set), "n_train": len(train_set), "n_heldout": len(held),
                     "feature_network": ev["feature_network"], "n_fake": ev["n_fake"],
                     "pattern_discrimination": diag[-1].get("pattern_discrimination_ratio") if diag else None,
                     **{k: ev.get(k) for k in KEYS}})
    return {"rows": rows}


def collect(run_root: Path) -> list[dict]:
    """Rows of finished runs from their `small_data_rows.json` files (written by main as each run ends)."""
    return [r for p in sorted(run_root.glob("*/small_data_rows.json")) for r in json.loads(p.read_text())]


def merge_earlier(rows: list[dict], earlier: dict) -> list[dict]:
    """`rows` plus the rows of an earlier record for the cells (set, model, seed) `rows` lacks: run folders do not
    outlive a machine, the record does. Each earlier row keeps the CPU it was measured on (a row without its own
    'cpu' field was measured on the CPU its record names)."""
    cells = {(r["set"], r["model"], r["seed"]) for r in rows}
    return rows + [{**r, "cpu": r.get("cpu", earlier.get("cpu"))} for r in earlier.get("rows", [])
                   if (r["set"], r["model"], r["seed"]) not in cells]


def aggregate(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["budget_s"], r["model"]), []).append(r)
    out = []
    for (s, b, m), rs in sorted(groups.items(), key=lambda kv: (SETS.index(kv[0][0]), kv[0][1], kv[0][2])):
        row = {"set": s, "budget_s": b, "model": m, "seeds": len(rs), "steps": round(sum(r["steps"] for r in rs)
                                                                                      / len(rs)),
               "fid_reference": fid_reference(s), "feature_network": rs[0]["feature_network"],
               "memorised": any(r.get("memorisation_flag") for r in rs)}
        for k in KEYS[:-1]:
            row[k], row[k + "_std"] = mean_std([r.get(k) for r in rs])
        shown = shown_fid_key(s)
        row["fid_shown"], row["fid_shown_std"] = row[shown], row[shown + "_std"]
        out.append(row)
    return out


def whole_set_rows(summary: list[dict]) -> list[dict]:
    """The whole built-in sets' points at the same budgets, from deae_vs_dcgan (DeAE `cpu` vs plain DCGAN `cpu`,
    2 seeds, the same judge, FID against held-out images), as rows of this table named `emoji-3331`, `mnist-8982`:
    the far end of the FID-vs-size curve."""
    from latent_deae import pixel_rows

    from latentforge import load_dataset
    from latentforge.config import DataConfig

    datasets = {set_parts(r["set"])[0] for r in summary}
    budgets = sorted({r["budget_s"] for r in summary})
    sizes: dict[str, int] = {}
    out = []
    for r in pixel_rows(budgets):
        if r["dataset"] not in datasets:
            continue
        if r["dataset"] not in sizes:
            sizes[r["dataset"]] = len(load_dataset(DataConfig(name=r["dataset"], resolution=RESOLUTION)))
        out.append({"set": f"{r['dataset']}-{sizes[r['dataset']]}", "budget_s": r["budget_s"],
                    "model": r["method"].split()[0], "seeds": r["seeds"], "fid_shown": r["fid"],
                    "fid_shown_std": r["fid_std"], "fid_reference": "held-out", "feature_network": r["feature_network"],
                    "source": "deae_vs_dcgan"})
    return out


def crossovers(summary: list[dict], gans: tuple[str, ...] = ("dcgan", "dcgan-da")) -> list[dict]:
    """Per dataset and budget, the set sizes where DeAE and a GAN were both measured, whether DeAE's FID is the
    lower one (against the best GAN of that cell), and the crossover: the smallest size at which DeAE stops winning
    (None while it wins at every measured size)."""
    out = []
    for data, budget in sorted({(set_parts(r["set"])[0], r["budget_s"]) for r in summary}):
        cells = []
        for size in sorted({set_parts(r["set"])[1] for r in summary if set_parts(r["set"])[0] == data}):
            here = {r["model"]: r["fid_shown"] for r in summary
                    if r["set"] == f"{data}-{size}" and r["budget_s"] == budget and r["fid_shown"] is not None}
            rivals = {m: f for m, f in here.items() if m in gans}
            if "deae" in here and rivals:
                gan = min(rivals, key=rivals.get)
                cells.append({"size": size, "deae": here["deae"], "gan": gan, "gan_fid": rivals[gan],
                              "deae_wins": here["deae"] < rivals[gan]})
        lost = [c["size"] for c in cells if not c["deae_wins"]]
        out.append({"dataset": data, "budget_s": budget, "sizes": cells, "crossover_size": lost[0] if lost else None})
    return out


def pair_grid(top: Path, bottom: Path, png: Path, n: int = 32) -> None:
    """The first n kept samples of two runs in one 8-wide grid, `top`'s rows above `bottom`'s: the look-at-it check
    beside the table's figures."""
    import numpy as np
    import torch

    from latentforge.utils.images import make_grid, save_png

    images = torch.from_numpy(np.concatenate([np.load(top)[:n], np.load(bottom)[:n]])).float() / 127.5 - 1
    save_png(make_grid(images, nrow=8, min_tile=96), png)


# The columns after FID, shared by the printed table and the docs' markdown lines: (title, width, cell).
QUALITY_COLUMNS = [
    ("KID", ">7", lambda r: cell(r, "kid", ".3f")),
    ("recall", ">6", lambda r: cell(r, "recall", ".2f")),
    ("cover", ">6", lambda r: cell(r, "coverage", ".2f")),
    ("copies", ">13", lambda r: f"{r['near_copy_fraction']:.3f} / {r['heldout_near_copy_fraction'] or 0:.3f}"),
    ("NN ratio", ">8", lambda r: cell(r, "nn_feature_ratio_vs_heldout", ".2f")),
    ("distinct", ">8", lambda r: cell(r, "sample_distinct_fraction", ".2f"))]


def print_table(summary: list[dict]) -> None:
    print_rows(summary, [
        ("set", "<10", lambda r: r["set"]), ("budget", ">6", lambda r: f"{r['budget_s']:.0f}"),
        ("model", "<10", lambda r: r["model"]), ("n", ">2", lambda r: str(r["seeds"])),
        ("steps", ">6", lambda r: str(r["steps"])),
        ("FID", ">15", lambda r: f"{r['fid_shown']:.1f}±{r['fid_shown_std']:.1f}"),
        ("vs", ">8", lambda r: r["fid_reference"]), *QUALITY_COLUMNS],
        flag=lambda r: "  MEMORISES" if r["memorised"] else "",
        footer=f"feature network: {', '.join(sorted({r['feature_network'] for r in summary}))}; copies = near-copy "
               f"fraction of samples / of held-out images (the rate a fresh draw of the data has)")


MODEL_NAMES = {"deae": "DeAE", "dcgan-da": "DCGAN + DA", "dcgan": "DCGAN (plain)", "deae-paper": "DeAE reference recipe"}


def markdown_rows(rows: list[dict], summary: list[dict], sets: list[str]) -> list[str]:
    """The docs' table lines for `sets`: one line per run and budget (`set, seed N`), then the mean ± std of the
    cells with more than one seed (`set, K seeds`), in the column order of docs/complexity.md."""
    def line(label: str, r: dict, fid: float, std: float | None = None) -> str:
        shown = f"{fid:.1f}" + (f" ± {std:.1f}" if std is not None else "")
        return (f"| {label} | {r['budget_s'] / 60:.0f} min | {MODEL_NAMES.get(r['model'], r['model'])} | "
                f"{r['steps']:,} | {shown} | {fid_reference(r['set'])} | "
                + " | ".join(value(r) for _, _, value in QUALITY_COLUMNS) + " |")

    out = []
    for s in sets:
        for r in sorted((r for r in rows if r["set"] == s), key=lambda r: (r["seed"], r["budget_s"], r["model"])):
            out.append(line(f"{s}, seed {r['seed']}", r, r[shown_fid_key(s)]))
        out += [line(f"{s}, {r['seeds']} seeds", r, r["fid_shown"], r["fid_shown_std"])
                for r in summary if r["set"] == s and r["seeds"] > 1]
    return out


def plot_curves(summary: list[dict], path: Path) -> Path | None:
    """FID against training-set size, one panel per dataset, a line per model and budget (dashed 10 min, solid 30,
    dotted 60). The ~100-image points are FID against the training images (hollow), the others against held-out
    images (filled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({set_parts(r["set"])[0] for r in summary})
    if not datasets:
        return None
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, data in zip(axes[0], datasets):
        rows = [r for r in summary if set_parts(r["set"])[0] == data]
        for model, budget in sorted({(r["model"], r["budget_s"]) for r in rows}):
            pts = sorted((set_parts(r["set"])[1], r["fid_shown"], r["fid_reference"]) for r in rows
                         if r["model"] == model and r["budget_s"] == budget)
            color = f"C{list(MODELS).index(model)}"  # colour: the model; line: the budget
            line = "--" if budget < 1800 else "-" if budget < 3600 else ":"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], line, color=color,
                    label=f"{model}, {budget / 60:.0f} min")
            for size, fid, ref in pts:
                ax.plot(size, fid, "o", color=color, fillstyle="none" if ref == "train" else "full")
        ax.set_xscale("log")
        ax.set_xlabel("training images")
        ax.set_ylabel("FID (hollow: vs train, filled: vs held-out)")
        ax.set_title(f"{data}, 32 px, 2 CPU cores")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--models", default="deae,dcgan,dcgan-da")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--budgets", default="600,1800", help="cumulative wall-clock training budgets in seconds")
    p.add_argument("--n", type=int, default=1000, help="samples scored per evaluation (and kept as .npy)")
    p.add_argument("--features", default="effnet", help="evaluation feature network (latentforge eval --features)")
    p.add_argument("--collect", type=Path, default=None, help="only re-read the rows of finished runs in this folder")
    p.add_argument("--earlier", type=Path, default=None,
                   help="a record written before (this benchmark's JSON) whose rows fill the cells RUNS lacks")
    p.add_argument("--markdown", default=None, metavar="SETS",
                   help="also print these sets' rows (comma-separated) as the docs' markdown table lines")
    p.add_argument("--grid", type=Path, nargs=3, metavar=("TOP_NPY", "BOTTOM_NPY", "PNG"), default=None,
                   help="only draw two runs' kept samples in one grid (see pair_grid)")
    add_pool_arguments(p, DEFAULT_OUT, ("--model",))
    args = p.parse_args()
    missing = [f for f in [*(args.grid or [])[:2], args.earlier] if f is not None and not f.is_file()]
    if missing:
        p.error(f"no such file: {missing[0]}")
    if args.collect is not None and not args.collect.is_dir():
        p.error(f"--collect: no such folder: {args.collect}")
    unknown = [s for s in (args.markdown or "").split(",") if s and s not in SETS]
    if unknown:
        p.error(f"--markdown: no set named {unknown[0]!r} (sets: {', '.join(SETS)})")
    if args.grid:
        pair_grid(*args.grid)
        return
    if args.worker:
        print(json.dumps(worker(args)))
        return
    load0, t0 = os.getloadavg(), time.time()
    if args.collect is None:
        run_root = Path(args.runs or tempfile.mkdtemp(prefix="small_data_"))
        for s in args.sets.split(","):  # the subsets and the feature network, once, before the parallel workers
            build_subset(s, run_root / "data")
        from latentforge.metrics.evaluate import resolve_features

        if args.features in ("effnet", "auto"):  # a trained network is made per set, inside the workers
            resolve_features(args.features, None, None, progress=False)
        cells = {(s, m, seed): ["--worker", "--dataset", s, "--model", m, "--seed", seed, "--budgets", args.budgets,
                                "--n", str(args.n), "--features", args.features, "--run-root", str(run_root)]
                 for s in args.sets.split(",") for seed in args.seeds.split(",") for m in args.models.split(",")}

        def keep(key, res):
            if "rows" in res:
                folder = run_root / f"{key[0]}-{key[1]}-s{key[2]}"
                (folder / "small_data_rows.json").write_text(json.dumps(res["rows"], indent=2))

        run_cells(__file__, cells, args.jobs, on_done=keep)
    else:
        run_root = args.collect
    rows = collect(run_root)
    if args.earlier is not None:
        rows = merge_earlier(rows, json.loads(args.earlier.read_text()))
    summary = aggregate(rows)
    print_table(summary)
    if args.markdown:
        print("\n".join(markdown_rows(rows, summary, args.markdown.split(","))))
    whole = whole_set_rows(summary)
    crossing = crossovers(summary + whole)
    for c in crossing:
        sizes = ", ".join(f"{x['size']}: {x['deae']:.0f} vs {x['gan_fid']:.0f} ({x['gan']})" for x in c["sizes"])
        where = f"DeAE stops winning at {c['crossover_size']}" if c["crossover_size"] else "DeAE wins at every size"
        print(f"{c['dataset']}, {c['budget_s'] / 60:.0f} min: {where} (DeAE vs best GAN FID, {sizes})")
    png = plot_curves(summary + whole, args.out.with_name(args.out.stem + "_fid_vs_size.png"))
    write_record("small_data", args.out, load0, wall_s=round(time.time() - t0, 1), runs=str(run_root),
                 settings={k: v for k, v in vars(args).items() if k not in ("out", "collect", "runs")},
                 subsets={"seed": SUBSET_SEED, "category": CATEGORY, "resolution": RESOLUTION},
                 rows=rows, summary=summary, whole_sets=whole, crossovers=crossing,
                 plot=png.name if png else None)


if __name__ == "__main__":
    main()
