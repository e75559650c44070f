"""How cost grows with the data (issue 19): DeAE training step time and peak memory for 1k ... 1M training indices,
the FID reference-feature cache for a large reference set, and evaluation time against the number of samples.

DeAE's claim is that a training example costs nothing but its index: its dropout pattern is derived from the index
on the fly, never stored, so step time and memory must stay flat as the set grows (the images themselves are the
only thing that grows: 256 bytes each here). Every size runs in a fresh subprocess (its own peak RSS), on
synthetic 16x16 grey images, with the `cpu16` preset's network and plain patterns (`model.mask_clusters=0`: the
`cpu` preset's k-means pattern code is fitted on the images, an O(N) setup measured separately by its start line).

    python benchmarks/cost_growth.py                        # 1k, 10k, 100k, 1M; 50k reference images
    python benchmarks/cost_growth.py --sizes 1000,10000 --steps 10 --reference 5000 --samples 200,400   # smoke
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cost_growth.json"


def _synthetic(n: int, resolution: int = 16, seed: int = 0):
    import torch

    from latentforge.data.dataset import ImageDataset

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, resolution, resolution), dtype=torch.uint8, generator=g)
    return ImageDataset(images, torch.full((n,), -1), f"synthetic-{n}", "train", f"synthetic-{n}-{seed}", [],
                        "uniform noise images (benchmark)")


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_worker(n: int, steps: int) -> dict:
    import torch

    from latentforge.config import build_config
    from latentforge.tasks import build_task
    from latentforge.train.loop import Trainer
    from latentforge.train.run_dir import RunDir
    from latentforge.train.task import DataShape

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = _synthetic(n)
    rss_data = _peak_rss_mib()
    cfg = build_config("cpu16", overrides=["model.mask_clusters=0", "model.mask_subclusters=0", f"train.steps={steps}",
                                           "train.log_every=1", "train.sample_every=100000",
                                           "train.checkpoint_every=100000", "data.resolution=16"],
                       model_type="deae")
    task = build_task(cfg, torch.device("cpu"), DataShape.of(data), dataset=data)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.create(cfg)
        Trainer(task, data, run, progress=False).fit()
        times = [r["time_s"] for r in run.read_metrics() if r["kind"] == "train"]
    per_step = [b - a for a, b in zip(times[4:], times[5:])]  # steps 6.. (warm-up excluded)
    return {"n": n, "image_mib": data.images.numel() / 2**20, "build_s": round(build_s, 3),
            "step_s_median": statistics.median(per_step), "step_s_iqr": _iqr(per_step),
            "peak_rss_mib": round(_peak_rss_mib(), 1), "rss_after_data_mib": round(rss_data, 1),
            "pattern_state_bytes": _pattern_bytes(task)}


def _pattern_bytes(task) -> int:
    """Bytes the task keeps per-example (tensors whose first dimension is the number of examples)."""
    import torch

    n = task.shape.count
    total = 0
    for obj in (task, getattr(task, "patterns", None)):
        for v in vars(obj).values() if obj is not None else ():
            if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n:
                total += v.numel() * v.element_size()
    return total


def _iqr(xs: list[float]) -> float:
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


def eval_worker(reference: int, samples: list[int]) -> dict:
    """Reference features of `reference` images (cold, then cached), and scoring time per number of samples."""
    import torch

    from latentforge.api import _train_and_heldout
    from latentforge.config import DataConfig
    from latentforge.data.fetch import default_cache_dir
    from latentforge.metrics.evaluate import dataset_features, evaluate, resolve_features

    torch.set_num_threads(1)
    train, heldout = _train_and_heldout(DataConfig(name="mnist", resolution=32))
    extractor = resolve_features("auto", train, heldout, progress=False)
    big = _synthetic(reference, resolution=32, seed=1)
    t0 = time.perf_counter()
    dataset_features(big, extractor)  # cold: compute and write the cache entry
    ref_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset_features(big, extractor)  # warm: read it
    cached_s = time.perf_counter() - t0
    entry = max((default_cache_dir() / "reference_features").glob(f"{big.name}-*"), key=lambda q: q.stat().st_mtime)
    rows = []
    for n in samples:
        fake = heldout.get(torch.arange(min(n, len(heldout))) % len(heldout)).repeat(-(-n // len(heldout)), 1, 1, 1)[:n]
        fake = (fake + 0.1 * torch.randn(fake.shape, generator=torch.Generator().manual_seed(n))).clamp(-1, 1)
        t0 = time.perf_counter()
        evaluate(fake, train, heldout, extractor, seed=1)
        rows.append({"n_samples": n, "eval_s": round(time.perf_counter() - t0, 2)})
    return {"reference_images": reference, "reference_features_s": round(ref_s, 2),
            "reference_features_cached_s": round(cached_s, 3), "reference_cache_mib": entry.stat().st_size / 2**20,
            "feature_network": extractor.label, "eval_rows": rows}


def _subprocess(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--reference", type=int, default=50000, help="reference images for the feature cache")
    p.add_argument("--samples", default="250,1000,4000", help="numbers of samples scored")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--train-worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--eval-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    samples = [int(x) for x in a.samples.split(",")]
    if a.train_worker:
        print(json.dumps(train_worker(a.train_worker, a.steps)))
        return
    if a.eval_worker:
        print(json.dumps(eval_worker(a.reference, samples)))
        return

    load0, t0 = os.getloadavg(), time.time()
    rows = []
    for n in (int(x) for x in a.sizes.split(",") if x):
        rows.append(_subprocess(["--train-worker", str(n), "--steps", str(a.steps)]) | {"n": n})
        r = rows[-1]
        print(f"N={n:>9,}  " + (f"step {r['step_s_median'] * 1000:7.1f} ms (IQR {r['step_s_iqr'] * 1000:.1f})  "
                                 f"peak RSS {r['peak_rss_mib']:7.0f} MiB  images {r['image_mib']:6.1f} MiB  "
                                 f"per-example pattern state {r['pattern_state_bytes']} B  build {r['build_s']:.2f} s"
                                 if "error" not in r else "ERROR " + r["error"][-300:]), flush=True)
    ev = _subprocess(["--eval-worker", "--reference", str(a.reference), "--samples", a.samples])
    if "error" not in ev:
        print(f"reference features of {ev['reference_images']:,} images: {ev['reference_features_s']:.1f} s cold, "
              f"{ev['reference_features_cached_s']:.2f} s cached, {ev['reference_cache_mib']:.1f} MiB on disk "
              f"({ev['feature_network']})")
        for r in ev["eval_rows"]:
            print(f"eval of {r['n_samples']:>5} samples: {r['eval_s']:.1f} s")
    else:
        print("eval ERROR " + ev["error"][-300:])
    write_record("cost_growth", a.out, load0, machine="one thread per measurement, one at a time",
                 wall_s=round(time.time() - t0, 1), settings={k: v for k, v in vars(a).items() if k != "out"},
                 train_rows=rows, eval=ev)


if __name__ == "__main__":
    main()
