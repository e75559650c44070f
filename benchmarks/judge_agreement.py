"""Does the judge see what a person sees? Pairs of sample sets whose order is evident to a person, scored by every
available feature network, and the fraction of pairs each network orders correctly (by FID, and by KID beside it).

Sets, all at 32x32: `emoji` and `mnist` (built-in, labelled) and `emoji-folder` (the same emoji as a flat folder of
PNGs: no labels, so the trained judge is SimCLR, as for a user's folder). The reference is a seeded random subset of
the training split (`--ref-n`); every candidate set is built from held-out images (`--n` of them), which no network
trained on the data has seen. Candidates and the pairs that must come out in order (better < worse):

  ladders      held-out < +noise 0.05 < 0.1 < 0.2 < 0.4 (std, [0,1] pixel units); held-out < blur sigma 0.5 < 1 <
               1.5 < 2.5 px; held-out < colours quantised to 8 < 4 < 2 levels per channel
  structure    a mild blur (sigma 1 px) < each of: 8x8 patches shuffled within the image; the pixels permuted within
               the image; noise drawn pixel by pixel from the training set's colours (colour statistics kept,
               structure destroyed)
  collapse     varied but degraded sets (noise 0.1, blur 1.5) < the training mean repeated, one image repeated;
               reported apart from the totals, since latentforge flags collapse in pixels whatever the network
  checkpoints  a late < an early checkpoint's samples of one run (`--checkpoints`: run folders kept by
               deae_vs_dcgan.py, holding samples_<budget>s.npy), for the models whose grids were checked by eye
               (`--checkpoint-models`, default deae: on emoji its 30-minute samples are people, faces, flags and
               smileys where the 10-minute ones are brown blobs; the DCGAN's go from brown to colourful noise,
               not evidently better, so they are left out)
  models       one model's samples < another's at one budget (`--model-order deae,dcgan --model-budget 1800`):
               on emoji at 30 minutes the DeAE draws blurry but coherent people, faces and flags, the DCGAN
               colourful noise with no recognisable object (the grids are checked by eye before a pair is used)

Networks: `effnet` (EfficientNet-Lite0, ImageNet), the trained classifier (labelled sets), the trained SimCLR
encoder (every set), Inception when its weights are on disk. Prints one table and writes
benchmarks/results/judge_agreement.json.

    python benchmarks/judge_agreement.py
    python benchmarks/judge_agreement.py --sets mnist --n 200 --ref-n 500     # a quicker look
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from _record import write_record
from deae_vs_dcgan import kept_samples, load_kept

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "judge_agreement.json"
NOISE = (0.05, 0.1, 0.2, 0.4)
BLUR = (0.5, 1.0, 1.5, 2.5)
LEVELS = (8, 4, 2)
MILD_BLUR = "blur-1"
COLLAPSE = "collapse"  # reported apart from the evident pairs: collapse is flagged in pixels whatever the network


def patch_shuffle(x: torch.Tensor, patch: int, g: torch.Generator) -> torch.Tensor:
    """Each image's patch x patch tiles in a random order of its own."""
    n, c, h, w = x.shape
    tiles = x.unfold(2, patch, patch).unfold(3, patch, patch).reshape(n, c, -1, patch, patch)
    order = torch.stack([torch.randperm(tiles.shape[2], generator=g) for _ in range(n)])
    tiles = tiles[torch.arange(n)[:, None], :, order].permute(0, 2, 1, 3, 4)  # (n, c, tiles, p, p)
    k = w // patch
    return tiles.reshape(n, c, h // patch, k, patch, patch).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def pixel_permute(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image's pixels (all channels together) in a random order of its own: its colour histogram exactly."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    order = torch.stack([torch.randperm(h * w, generator=g) for _ in range(n)])
    return flat.gather(2, order[:, None, :].expand(-1, c, -1)).reshape(x.shape)


def colour_noise(train: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n images whose every pixel is an independent draw from the training set's pixel colours."""
    _, c, h, w = train.shape
    pixels = train.permute(0, 2, 3, 1).reshape(-1, c)
    idx = torch.randint(0, len(pixels), (n * h * w,), generator=g)
    return pixels[idx].reshape(n, h, w, c).permute(0, 3, 1, 2).contiguous()


def candidates(held: torch.Tensor, train: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    from latentforge.metrics.testbench import gaussian_blur

    g = torch.Generator().manual_seed(seed)
    out = {"heldout": held}
    out.update({f"noise-{s:g}": (held + 2 * s * torch.randn(held.shape, generator=g)).clamp(-1, 1) for s in NOISE})
    out.update({f"blur-{s:g}": gaussian_blur(held, s) for s in BLUR})
    out.update({f"quant-{q}": torch.round((held + 1) / 2 * (q - 1)) / (q - 1) * 2 - 1 for q in LEVELS})
    out["patch-shuffle"] = patch_shuffle(held, 8, g)
    out["pixel-permute"] = pixel_permute(held, g)
    out["colour-noise"] = colour_noise(train, len(held), g)
    out["mean-image"] = train.mean(0, keepdim=True).expand_as(held).clone()
    out["one-image"] = held[:1].expand_as(held).clone()
    return out


def evident_pairs() -> list[tuple[str, str, str]]:
    """(better, worse, family) for the built candidates."""
    pairs = []
    for family, names in (("noise", [f"noise-{s:g}" for s in NOISE]), ("blur", [f"blur-{s:g}" for s in BLUR]),
                          ("quantise", [f"quant-{q}" for q in LEVELS])):
        ladder = ["heldout", *names]
        pairs += [(a, b, family) for a, b in zip(ladder, ladder[1:])]
    pairs += [(MILD_BLUR, bad, "structure") for bad in ("patch-shuffle", "pixel-permute", "colour-noise")]
    pairs += [(good, bad, COLLAPSE) for good in ("noise-0.1", "blur-1.5") for bad in ("mean-image", "one-image")]
    return pairs


def checkpoint_sets(runs: list[Path], dataset: str, n: int,
                    models: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], list[tuple[str, str, str]]]:
    """The first n samples kept per budget by deae_vs_dcgan.py, for the runs of this dataset: latest < earliest."""
    sets, pairs = {}, []
    for run in runs:
        if not run.name.startswith(f"{dataset}-") or run.name.rsplit("-", 2)[1] not in models:
            continue
        kept = kept_samples(run)
        if len(kept) < 2:
            continue
        early, late = (f"{run.name}@{b:.0f}s" for b in (min(kept), max(kept)))
        sets[early], sets[late] = load_kept(kept[min(kept)], n), load_kept(kept[max(kept)], n)
        pairs.append((late, early, "checkpoint"))
    return sets, pairs


def model_sets(runs: list[Path], dataset: str, n: int, order: list[str],
               budget: str) -> tuple[dict[str, torch.Tensor], list[tuple[str, str, str]]]:
    """Per seed, the samples of order[0] < those of order[1] at `budget` seconds, where both runs kept them."""
    sets, pairs = {}, []
    files = {run.name: run / f"samples_{budget}s.npy" for run in runs if run.name.startswith(f"{dataset}-")}
    for name, f in files.items():
        _, model, seed = name.rsplit("-", 2)
        other = files.get(f"{dataset}-{order[1]}-{seed}")
        if model == order[0] and f.is_file() and other is not None and other.is_file():
            for g in (f, other):
                sets[f"{g.parent.name}@{budget}s"] = load_kept(g, n)
            pairs.append((f"{name}@{budget}s", f"{other.parent.name}@{budget}s", "models"))
    return sets, pairs


def networks(train, held, want: list[str]) -> dict:
    from latentforge.metrics.evaluate import resolve_features
    from latentforge.metrics.features.inception import inception_available

    out = {}
    for name in want:
        if name == "inception" and not inception_available():
            print("inception: weights not on disk, skipped")
            continue
        if name == "classifier" and not train.has_class_labels:
            continue
        out[name] = resolve_features(name, train, held, progress=False)
    return out


def agreement(scores: dict[str, float], pairs: list[tuple[str, str, str]]) -> dict:
    """How many of the evident pairs (all but the collapse family) the scores order right, and which not."""
    collapse = [scores[a] < scores[b] for a, b, fam in pairs if fam == COLLAPSE]
    evident = [(a, b, fam, scores[a] < scores[b]) for a, b, fam in pairs if fam != COLLAPSE]
    by_family: dict[str, list[bool]] = {}
    for _, _, fam, ok in evident:
        by_family.setdefault(fam, []).append(ok)
    right = sum(ok for *_, ok in evident)
    return {"correct": right, "pairs": len(evident), "fraction": right / len(evident) if evident else None,
            "by_family": {f: f"{sum(v)}/{len(v)}" for f, v in by_family.items()},
            "collapse": f"{sum(collapse)}/{len(collapse)}",
            "wrong": [f"{a} < {b}" for a, b, _, ok in evident if not ok]}


def score_set(name: str, source: str, args, runs: list[Path]) -> dict:
    from latentforge.config import DataConfig
    from latentforge.data import load_dataset
    from latentforge.metrics.scores import fid_from_features, kid

    cfg = DataConfig(name=source, resolution=32)
    train, held = load_dataset(cfg), load_dataset(cfg.model_copy(update={"split": "test"}))
    g = torch.Generator().manual_seed(args.seed)
    ref = train.get(torch.randperm(len(train), generator=g)[:args.ref_n])
    base = held.get(torch.randperm(len(held), generator=g)[:args.n])
    sets, pairs = ({}, []) if args.checkpoints_only else (candidates(base, ref, args.seed), evident_pairs())
    ck_sets, ck_pairs = checkpoint_sets(runs, name, args.n, tuple(args.checkpoint_models.split(",")))
    sets.update(ck_sets)
    pairs += ck_pairs
    if args.model_order:
        m_sets, m_pairs = model_sets(runs, name, args.n, args.model_order.split(","), args.model_budget)
        sets.update(m_sets)
        pairs += m_pairs
    if not pairs:
        print(f"{name}: no pairs to score")
        return {"networks": {}, "pairs": []}
    table = {"train": len(train), "heldout": len(held), "n": len(base), "ref_n": len(ref), "networks": {}}
    for key, net in networks(train, held, args.networks.split(",")).items():
        t0 = time.perf_counter()
        f_ref = net.extract(ref).pool
        feats = {s: net.extract(x).pool for s, x in sets.items()}
        fid = {s: fid_from_features(f_ref, f) for s, f in feats.items()}
        kids = {s: kid(f_ref, f, 20, len(f), args.seed)[0] for s, f in feats.items()}
        entry = {"label": net.label, "fid": fid, "agreement_fid": agreement(fid, pairs),
                 "kid": kids, "agreement_kid": agreement(kids, pairs), "seconds": round(time.perf_counter() - t0, 1)}
        table["networks"][key] = entry
        a = entry["agreement_fid"]
        print(f"{name:<13} {key:<11} {net.label:<40} FID order {a['correct']:>2}/{a['pairs']:<2} "
              f"{a['by_family']}, collapse {a['collapse']}  ({entry['seconds']} s)", flush=True)
        if a["wrong"]:
            print(f"{'':<13} wrong: {'; '.join(a['wrong'])}", flush=True)
    table["pairs"] = pairs
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="emoji,mnist,emoji-folder")
    p.add_argument("--networks", default="effnet,classifier,simclr,inception")
    p.add_argument("--n", type=int, default=400, help="held-out images per candidate set")
    p.add_argument("--ref-n", type=int, default=2000, help="training images in the reference")
    p.add_argument("--checkpoints", default="", help="folder of run folders with samples_<budget>s.npy")
    p.add_argument("--checkpoint-models", default="deae", help="models whose later samples are evidently better")
    p.add_argument("--model-order", default="", help="better,worse model at --model-budget, checked by eye")
    p.add_argument("--model-budget", default="1800")
    p.add_argument("--checkpoints-only", action="store_true", help="score only the --checkpoints pairs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from eval_testbench import emoji_folder

    runs = sorted(Path(args.checkpoints).iterdir()) if args.checkpoints else []
    load0, t0, tables = os.getloadavg(), time.time(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            source = str(emoji_folder(Path(tmp))) if name == "emoji-folder" else name
            tables[name] = score_set(name, source, args, runs)
    totals: dict[str, list[int]] = {}
    for t in tables.values():
        for key, e in t["networks"].items():
            c = totals.setdefault(key, [0, 0])
            c[0] += e["agreement_fid"]["correct"]
            c[1] += e["agreement_fid"]["pairs"]
    print("\nall sets:", ", ".join(f"{k} {c}/{n} ({c / n:.0%})" for k, (c, n) in totals.items()))
    write_record("judge_agreement", args.out, load0, wall_s=round(time.time() - t0, 1),
                 settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                 totals={k: {"correct": c, "pairs": n, "fraction": c / n} for k, (c, n) in totals.items()},
                 sets=tables)


if __name__ == "__main__":
    main()
