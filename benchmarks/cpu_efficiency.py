"""How much of the machine a DeAE training step uses, and what channels_last and torch.compile buy (issue 19).

Per preset (`tiny`, `cpu`, `paper`; 32x32x3, batch 64, loss mse + laplacian so no LPIPS weights are needed), one
process times these variants of the same network, interleaved (round-robin, `--rounds` rounds of `--steps` steps
each, so drifting load hits every variant alike), and reports the median step:
  * plain            a bare PyTorch step of the same network: forward from precomputed masks/noise/shift, MSE,
                     backward, Adam step. No augmentation, no perceptual loss, no EMA: the floor latentforge is
                     measured against ("ratio to plain" = plain step time / latentforge step time);
  * eager            `DeAETask.train_step`, as the Trainer runs it with the default settings on a CPU;
  * channels_last    weights, EMA and images in NHWC (`train.memory_format=channels_last`);
  * compile          `train.compile=true` (torch.compile of the network in place, inductor); its first step,
                     which compiles, is reported apart;
  * compile+cl       both.
The machine's rate is the best of several square matmuls (fp32 4096^2 on a CPU, bf16 8192^2 on CUDA) on the same
threads; on CUDA every variant runs under bf16 autocast, as the Trainer does. A step's work is counted by torch's
FlopCounterMode (convolutions and matmuls, forward and backward), so "of matmul rate" = step FLOPs / step time /
matmul rate: how close the step comes to the best dense kernel here.

    python benchmarks/cpu_efficiency.py                           # all presets and variants (~15 min on 2 cores)
    python benchmarks/cpu_efficiency.py --presets tiny --variants plain,eager --rounds 1 --steps 2   # smoke check
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402

from latentforge.config import build_config  # noqa: E402
from latentforge.tasks.deae import DeAETask  # noqa: E402
from latentforge.train.loop import autocast_context, compile_modules  # noqa: E402
from latentforge.train.task import Batch, DataShape  # noqa: E402

PRESETS = ("tiny", "cpu", "paper")
VARIANTS = ("plain", "eager", "channels_last", "compile", "compile+cl")
CHANNELS, RESOLUTION, N_EXAMPLES = 3, 32, 10_000


def matmul_rate(device: torch.device, repeats: int = 5) -> dict:
    """Best FLOP/s of a square matmul: fp32 4096^2 on a CPU, bf16 8192^2 on CUDA (the dtype training uses there)."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (4096, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    sync(device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms up
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "flops_per_s": 2 * n**3 / best}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """One way of running the step; `step(batch)` trains one step and returns nothing."""

    def __init__(self, name: str, preset: str, batch: int, device: torch.device):
        self.name = name
        cfg = build_config(preset, overrides=["model.loss.pixel=mse", "model.loss.perceptual=laplacian",
                                              f"train.batch_size={batch}", f"train.device={device.type}"])
        self.task = DeAETask(cfg, device, DataShape(CHANNELS, RESOLUTION, N_EXAMPLES))
        self.format = torch.channels_last if name in ("channels_last", "compile+cl") else torch.contiguous_format
        if self.format is torch.channels_last:
            for m in [self.task.net, self.task.emas["net"].model]:
                m.to(memory_format=torch.channels_last)
        if name.startswith("compile"):
            compile_modules(self.task, "default", "inductor")
        if name == "plain":
            self.opt = torch.optim.Adam(self.task.net.parameters(), lr=1e-3)
            self.plain_inputs: dict[int, tuple[list[torch.Tensor], torch.Tensor]] = {}
        self.precision = "bf16" if device.type == "cuda" else "fp32"  # as the Trainer's default (precision=auto)
        self.times: list[float] = []
        self.first_s: float | None = None

    def step(self, b: Batch) -> None:
        with autocast_context(self.task.device, self.precision):
            self._step(b)

    def _step(self, b: Batch) -> None:
        if self.name != "plain":
            images = b.images.contiguous(memory_format=self.format)
            self.task.train_step(Batch(images=images, index=b.index, epoch=b.epoch, step=b.step))
            return
        t = self.task
        if b.step not in self.plain_inputs:  # what the real step derives per batch, made once, outside the timing
            self.plain_inputs[b.step] = (t.masks_for(b.index, False), torch.randn_like(b.images))
        masks, noise = self.plain_inputs[b.step]
        t.net.train()
        loss = F.mse_loss(t.net(noise, masks), b.images)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def step_flops(preset: str, batch: int, device: torch.device, b: Batch) -> int:
    v = Variant("eager", preset, batch, device)
    v.step(b)  # the first step allocates optimizer state; count the second
    with FlopCounterMode(display=False) as counter:
        v.step(b)
    return counter.get_total_flops()


def measure_preset(preset: str, variants: list[str], args, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)

    def batch(s: int) -> Batch:
        images = (torch.rand(args.batch, CHANNELS, RESOLUTION, RESOLUTION, generator=g) * 2 - 1).to(device)
        return Batch(images=images, index=torch.randint(0, N_EXAMPLES, (args.batch,), generator=g), epoch=0, step=s)

    batches = [batch(s) for s in range(args.steps)]
    flops = step_flops(preset, args.batch, device, batches[0])
    runs = [Variant(name, preset, args.batch, device) for name in variants]
    for v in runs:  # warm-up (and compilation), timed apart
        sync(device)
        t0 = time.perf_counter()
        v.step(batches[0])
        v.step(batches[1 % len(batches)])
        sync(device)
        v.first_s = time.perf_counter() - t0
        print(f"  [{preset}] {v.name}: first two steps {v.first_s:.1f} s", file=sys.stderr, flush=True)
    for r in range(args.rounds):
        for v in (runs if r % 2 == 0 else runs[::-1]):  # alternate the order: no variant always goes first
            for b in batches:
                sync(device)
                t0 = time.perf_counter()
                v.step(b)
                sync(device)
                v.times.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in runs[0].task.net.parameters())
    out = {"preset": preset, "params": params, "step_flops": flops, "variants": {}}
    plain = statistics.median(runs[0].times) if variants[0] == "plain" else None
    for v in runs:
        med = statistics.median(v.times)
        out["variants"][v.name] = {
            "median_step_s": med, "img_per_s": args.batch / med, "first_two_steps_s": v.first_s,
            "step_seconds": v.times, "fraction_of_matmul_rate": flops / med / args.rate["flops_per_s"],
            "ratio_to_plain": (plain / med) if plain else None,
            "speedup_vs_eager": None}
    if "eager" in out["variants"]:
        eager = out["variants"]["eager"]["median_step_s"]
        for rec in out["variants"].values():
            rec["speedup_vs_eager"] = eager / rec["median_step_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="round-robin rounds over the variants")
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant per round")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "cpu_efficiency.json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    presets = [s for s in args.presets.split(",") if s]
    variants = [s for s in args.variants.split(",") if s]
    bad = [v for v in variants if v not in VARIANTS] + [s for s in presets if s not in PRESETS]
    if bad:
        p.error(f"unknown {bad}: presets {PRESETS}, variants {VARIANTS}")
    load_before = os.getloadavg()
    args.rate = matmul_rate(device)
    print(f"matmul rate: {args.rate['flops_per_s'] / 1e9:.1f} GFLOP/s ({args.rate['dtype']} {args.rate['n']}^2, "
          f"{torch.get_num_threads()} threads)", file=sys.stderr, flush=True)
    results = [measure_preset(pr, variants, args, device) for pr in presets]
    rate_after = matmul_rate(device)

    print(f"\nDeAE training step, 32x32x3, batch {args.batch}, {device} ({platform.machine()}), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; matmul rate "
          f"{args.rate['flops_per_s'] / 1e9:.1f} GFLOP/s before, {rate_after['flops_per_s'] / 1e9:.1f} after")
    head = f"{'preset':<7} {'params':>10} {'GFLOP/img':>10} {'variant':<14} {'img/s':>8} {'of matmul':>10} " \
           f"{'vs plain':>9} {'vs eager':>9} {'first 2 steps':>14}"
    print(head + "\n" + "-" * len(head))
    for r in results:
        for name, v in r["variants"].items():
            vp = f"{v['ratio_to_plain']:.2f}" if v["ratio_to_plain"] else "-"
            ve = f"{v['speedup_vs_eager']:.2f}x" if v["speedup_vs_eager"] else "-"
            print(f"{r['preset']:<7} {r['params']:>10,} {r['step_flops'] / args.batch / 1e9:>10.2f} {name:<14} "
                  f"{v['img_per_s']:>8.1f} {v['fraction_of_matmul_rate']:>9.0%} {vp:>9} {ve:>9} "
                  f"{v['first_two_steps_s']:>12.1f} s")
    la = lambda t: "/".join(f"{x:.2f}" for x in t)  # noqa: E731
    print(f"load average: before {la(load_before)}, after {la(os.getloadavg())}")
    write_record("cpu_efficiency", args.out, load_before, device=str(device), torch=torch.__version__,
                 threads=torch.get_num_threads(), batch=args.batch, rounds=args.rounds, steps=args.steps,
                 matmul_rate_before=args.rate, matmul_rate_after=rate_after, results=results)


if __name__ == "__main__":
    main()
