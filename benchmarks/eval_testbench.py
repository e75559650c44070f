"""The evaluator's test bench as a table: generators of known quality (latentforge.metrics.testbench) scored on
  * emoji (built-in, labelled: the classifier feature network),
  * the same emoji as a folder of PNGs without labels (the contrastive SimCLR feature network, near-duplicate
    grouped split), i.e. what a user with their own folder gets,
  * mnist (built-in, labelled).
All at 32x32, n = held-out size (capped at 1,000), default feature-network recipes. Prints one table per set
(FID, KID, precision, recall, density, coverage, diversity ratio, distinct fraction, near-copies, flags) and
writes benchmarks/results/eval_testbench.json.

    python benchmarks/eval_testbench.py
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _record import write_record

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "eval_testbench.json"
COLS = ("fid", "kid", "precision", "recall", "density", "coverage", "diversity_ratio", "sample_distinct_fraction",
        "near_copy_fraction")


def emoji_folder(root: Path) -> Path:
    """The built-in emoji as a user's folder: 64x64 PNGs, no class subfolders."""
    import torch

    from latentforge.config import DataConfig
    from latentforge.data import load_dataset
    from latentforge.utils.images import save_each

    ds = load_dataset(DataConfig(name="emoji", resolution=64, split="all"))
    save_each(ds.get(torch.arange(len(ds))), root / "emoji_folder")
    return root / "emoji_folder"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="emoji,emoji-folder,mnist")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--features", default="trained", help="feature network (latentforge eval --features)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args()

    from latentforge.config import DataConfig
    from latentforge.data import load_dataset
    from latentforge.metrics.evaluate import resolve_features
    from latentforge.metrics.testbench import EXPECTED_FLAGS, raised_flags, run_testbench

    load0, t0, tables = os.getloadavg(), time.time(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            source = str(emoji_folder(Path(tmp))) if name == "emoji-folder" else name
            cfg = DataConfig(name=source, resolution=32)
            train, held = load_dataset(cfg), load_dataset(cfg.model_copy(update={"split": "test"}))
            net = resolve_features(args.features, train, held, progress=False)
            res = run_testbench(train, held, net, n=args.n)
            rows = [{"generator": g, **{c: r[c] for c in COLS}, "flags": sorted(raised_flags(r)),
                     "expected_flags": sorted(EXPECTED_FLAGS.get(g, set()))} for g, r in res.items()]
            tables[name] = {"feature_network": net.label, "feature_network_info": net.info, "rows": rows,
                            "n": res["heldout"]["n_fake"],
                            "fid_heldout_vs_train": res["heldout"].get("fid_heldout_vs_train")}
            print(f"\n{name}: {net.label}, n = {res['heldout']['n_fake']} per generator, "
                  f"train {len(train)}, held-out {len(held)}")
            print(f"{'generator':<16}" + "".join(f"{c[:9]:>10}" for c in COLS) + "  flags")
            for r in rows:
                ok = "" if r["flags"] == r["expected_flags"] else f"  (expected {r['expected_flags']})"
                print(f"{r['generator']:<16}" + "".join(f"{r[c]:>10.4g}" for c in COLS)
                      + f"  {','.join(r['flags']) or '-'}{ok}")
    write_record("eval_testbench", args.out, load0, wall_s=round(time.time() - t0, 1), sets=tables)


if __name__ == "__main__":
    main()
