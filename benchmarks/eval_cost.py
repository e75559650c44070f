"""What evaluating on an unlabelled set costs: first time (cold: decode, near-duplicate grouping, training the
feature network or training the contrastive one, reference features) and every later time (cached), on 2 CPU cores.

Sets, each handed to latentforge the way a user would (no labels):
  * mnist-5k:  the first 5,000 MNIST digits as a .npy array file (28x28 grey, evaluated at 32x32);
  * emoji:     the 3,781 built-in emoji written as a folder of 64x64 PNGs (evaluated at 32x32).
Per set, in a fresh subprocess with a fresh cache (so nothing is shared between sets):
  load (decode + resize + group near-duplicates), features (train the SimCLR evaluation network with its default
  recipe + reference features of train and held-out), score (1,000 samples: held-out images with noise), and the
  same three again with everything cached. Prints a table and writes benchmarks/results/eval_cost.json with the
  machine's load before and after.

    python benchmarks/eval_cost.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import write_record

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "eval_cost.json"


def make_source(kind: str, root: Path) -> Path:
    import numpy as np

    from latentforge.config import DataConfig
    from latentforge.data import load_dataset

    if kind == "mnist-5k":
        ds = load_dataset(DataConfig(name="mnist", resolution=28, split="all"))
        path = root / "mnist5k.npy"
        np.save(path, ds.images[:5000, 0].numpy())
        return path
    from eval_testbench import emoji_folder

    return emoji_folder(root)


def worker(source: str, features: str) -> dict:
    import torch

    from latentforge.config import DataConfig
    from latentforge.data import load_dataset
    from latentforge.metrics.evaluate import dataset_features, evaluate, resolve_features

    out: dict = {}
    for attempt in ("cold", "cached"):
        t0 = time.perf_counter()
        cfg = DataConfig(name=source, resolution=32)
        train, held = load_dataset(cfg), load_dataset(cfg.model_copy(update={"split": "test"}))
        t1 = time.perf_counter()
        net = resolve_features(features, train, held, progress=False)
        dataset_features(train, net), dataset_features(held, net)
        t2 = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        held_x = held.get(torch.randint(0, len(held), (1000,), generator=g))
        rec = evaluate((held_x + 0.1 * torch.randn(held_x.shape, generator=g)).clamp(-1, 1), train, held, net)
        t3 = time.perf_counter()
        out[attempt] = {"load_s": round(t1 - t0, 1), "features_s": round(t2 - t1, 1), "score_s": round(t3 - t2, 1),
                        "total_s": round(t3 - t0, 1)}
        out.update({"train_images": len(train), "heldout_images": len(held), "feature_network": net.label,
                    "feature_network_info": {k: net.info.get(k) for k in ("steps", "batch_size", "seconds",
                                                                            "knn_view_accuracy", "weak")},
                    "fid_noisy_heldout": rec["fid"], "heldout_near_copy_fraction": rec["heldout_near_copy_fraction"]})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="mnist-5k,emoji")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--features", default="auto", help="feature network (latentforge eval --features)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.features)))
        return
    load0, rows = os.getloadavg(), []
    for kind in args.sets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            source = make_source(kind, Path(tmp))
            env = os.environ | {"LATENTFORGE_CACHE": str(Path(tmp) / "cache")}
            proc = subprocess.run([sys.executable, __file__, "--worker", str(source), "--features", args.features],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            rows.append({"set": kind, **json.loads(proc.stdout.strip().splitlines()[-1])})
    print(f"{'set':<9} {'train':>6} {'held':>5} {'':>7} {'load s':>7} {'features s':>10} {'score s':>8} {'total s':>8}")
    for r in rows:
        for attempt in ("cold", "cached"):
            c = r[attempt]
            print(f"{r['set']:<9} {r['train_images']:>6} {r['heldout_images']:>5} {attempt:>7} {c['load_s']:>7} "
                  f"{c['features_s']:>10} {c['score_s']:>8} {c['total_s']:>8}")
    for r in rows:
        print(f"{r['set']}: {r['feature_network']} {r['feature_network_info']}")
    write_record("eval_cost", args.out, load0, rows=rows)


if __name__ == "__main__":
    main()
