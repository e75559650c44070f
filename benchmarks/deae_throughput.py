"""Throughput and memory of the Deciphering Autoencoder (DeAE) at 32x32x3, for three model sizes.

What is measured, per size (`tiny`, `cpu`, `paper`; the presets of `latentforge.config`):
  * params         trainable parameters of the DeAE network (the EMA copy is not counted);
  * train img/s    the real training step, `DeAETask.train_step(Batch(...))` on random images in [-1, 1]
                   (masks, flip, random shift, forward, loss, backward, AdamW, EMA update), after a few warm-up
                   steps; img/s = batch * timed steps / wall time;
  * sample img/s   `task.sample(n, seed=0)` (n=256; timed over 3 calls, 1 for `paper`) after a warm-up call, with
                   batch statistics (the default; always decodes full batches of 256) and with `bn="running"`
                   (eval-mode batch norm), from the EMA weights as in real sampling;
  * peak mem       CPU: growth of peak RSS (`ru_maxrss`) from just after `import torch`/`latentforge` to the end,
                   each size in its own fresh subprocess so peaks do not leak between sizes;
                   CUDA: `torch.cuda.max_memory_allocated` over the whole run.
Every size uses `model.loss.pixel=mse` and `model.loss.perceptual=laplacian`, so no LPIPS weights are needed (the `paper`
recipe normally uses LPIPS, which would make its training step slower). Precision is fp32 (no autocast).

    python benchmarks/deae_throughput.py                     # all sizes, CPU/CUDA auto, JSON to benchmarks/results/
    python benchmarks/deae_throughput.py --quick --sizes tiny  # smoke check
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

SIZES = {  # name -> (preset, enc_widths, latent_dim, default timed train steps)
    "tiny": ("tiny", (16, 32, 64, 128), 32, 50),
    "cpu": ("cpu", (32, 64, 128, 256), 64, 25),
    "paper": ("paper", (128, 256, 512, 1024), 128, 8),
}
CHANNELS, RESOLUTION = 3, 32
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "deae_throughput.json"


def worker(args: argparse.Namespace) -> dict:
    """Measure one size in this (fresh) process and return a result dict."""
    import torch

    from latentforge.config import build_config
    from latentforge.tasks import build_task
    from latentforge.train.task import Batch, DataShape

    rss0_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    preset, widths, latent, default_steps = SIZES[args.worker]
    steps = args.steps or (2 if args.quick else default_steps)
    warmup = 1 if args.quick else 2 if args.worker == "paper" else 3
    n_sample = 64 if args.quick else args.sample_n
    reps = 1 if args.quick or args.worker == "paper" else 3  # timed sample() calls per bn mode
    cfg = build_config(preset, overrides=[
        f"model.enc_widths={list(widths)}", f"model.latent_dim={latent}", "model.loss.pixel=mse",
        "model.loss.perceptual=laplacian", f"train.batch_size={args.batch}", "train.device=" + device.type])
    n_examples = 10_000
    task = build_task(cfg, device, DataShape(CHANNELS, RESOLUTION, n_examples))
    params = sum(p.numel() for p in task.net.parameters())

    g = torch.Generator().manual_seed(0)

    def batch(s: int) -> Batch:
        images = (torch.rand(args.batch, CHANNELS, RESOLUTION, RESOLUTION, generator=g) * 2 - 1).to(device)
        index = torch.randint(0, n_examples, (args.batch,), generator=g)
        return Batch(images=images, index=index, epoch=0, step=s)

    for s in range(warmup):
        task.train_step(batch(s))
    batches = [batch(warmup + s) for s in range(steps)]  # made up front: only the step is timed
    step_s = []
    for b in batches:
        sync()
        t0 = time.perf_counter()
        loss = task.train_step(b)["loss"]
        sync()
        step_s.append(time.perf_counter() - t0)
    train_s = sum(step_s)

    sample = {}
    for mode in ("batch", "running"):
        task.sample(min(n_sample, 64), seed=1, bn=mode)  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            out = task.sample(n_sample, seed=0, bn=mode)
        sync()
        dt = time.perf_counter() - t0
        sample[mode] = {"calls": reps, "seconds": dt, "img_per_s": reps * n_sample / dt}
        assert out.shape == (n_sample, CHANNELS, RESOLUTION, RESOLUTION)

    rss1_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "size": args.worker, "preset": preset, "enc_widths": list(widths), "latent_dim": latent, "params": params,
        "train": {"batch": args.batch, "warmup_steps": warmup, "steps": steps, "seconds": train_s,
                  "s_per_step": train_s / steps, "img_per_s": args.batch * steps / train_s,
                  "median_img_per_s": args.batch / sorted(step_s)[steps // 2], "step_seconds": step_s,
                  "last_loss": loss},
        "sample": {"n": n_sample, **sample},
        "peak_mem_mib": (torch.cuda.max_memory_allocated() if cuda else (rss1_kib - rss0_kib) * 1024) / 2**20,
        "peak_mem_kind": "cuda max_memory_allocated" if cuda else "ru_maxrss growth after imports",
        "peak_rss_total_mib": rss1_kib / 1024,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="tiny,cpu,paper", help="comma-separated subset of " + ",".join(SIZES))
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch", type=int, default=64, help="training batch size")
    p.add_argument("--steps", type=int, default=None, help="timed training steps (default per size: 50/25/8)")
    p.add_argument("--sample-n", type=int, default=256, help="images per timed sample() call")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="smoke check: 2 steps, 64 samples")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure one size in this process
    args = p.parse_args()

    if args.worker:
        print(json.dumps(worker(args)))
        return

    import torch
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available to this torch")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        p.error(f"unknown size(s) {unknown}; choose from {list(SIZES)}")

    results, load_before = [], os.getloadavg()
    for size in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", size, "--device", args.device,
               "--batch", str(args.batch), "--sample-n", str(args.sample_n)]
        cmd += ["--steps", str(args.steps)] if args.steps else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--quick"] if args.quick else []
        print(f"[{size}] running ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"[{size}] failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    threads = results[0]["threads"] if results else torch.get_num_threads()
    dev_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    mem_col = "peak MiB (CUDA alloc)" if args.device == "cuda" else "peak RSS +MiB"
    print(f"\nDeAE throughput, 32x32x3, device={args.device} ({dev_name}), torch {torch.__version__}, "
          f"threads={threads}, train batch={args.batch}, fp32, loss=mse+laplacian (no LPIPS)")
    head = f"{'size':<6} {'params':>11} {'train img/s':>12} {'s/step':>8} {'sample img/s':>13} " \
           f"{'sample img/s':>13} {mem_col:>{max(14, len(mem_col))}}"
    sub = f"{'':<6} {'':>11} {'(steps)':>12} {'':>8} {'(bn=batch)':>13} {'(bn=running)':>13}"
    print(head + "\n" + sub + "\n" + "-" * len(head))
    for r in results:
        tr = r["train"]
        print(f"{r['size']:<6} {r['params']:>11,} {tr['img_per_s']:>7.1f} ({tr['steps']:>2}) {tr['s_per_step']:>8.3f} "
              f"{r['sample']['batch']['img_per_s']:>13.1f} {r['sample']['running']['img_per_s']:>13.1f} "
              f"{r['peak_mem_mib']:>{max(14, len(mem_col))}.0f}")

    record = {
        "benchmark": "deae_throughput", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "device": args.device,
        "device_name": dev_name, "threads": threads, "batch": args.batch, "resolution": RESOLUTION,
        "channels": CHANNELS, "precision": "fp32", "loss": {"pixel": "mse", "perceptual": "laplacian"},
        "quick": args.quick, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    la = lambda t: "/".join(f"{v:.2f}" for v in t)  # noqa: E731
    print(f"\nload average (1/5/15 min): before {la(load_before)}, after {la(os.getloadavg())} "
          f"(on CPU, other busy processes can slow multi-threaded steps many-fold)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
