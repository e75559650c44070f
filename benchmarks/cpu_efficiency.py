"""What bf16 autocast, channels_last and torch.compile buy per training step, for every model and preset.

For each model (DeAE, DCGAN, the joint and decoupled autoencoders, the latent diffusion prior) and each of its
presets, one process builds the task as the Trainer does (32x32x3 images, batch 64; the prior on the 4x8x8 latents
of an autoencoder made for the purpose; perceptual losses set to the offline Laplacian pyramid so no LPIPS weights
are needed) and times `task.train_step` under these variants, interleaved (round-robin, alternating order, `--rounds`
rounds of `--steps` steps each, so drifting load hits every variant alike), reporting the median step:
  * fp32        eager, contiguous: the baseline every ratio divides by;
  * cl          channels_last weights, EMA copies and images (`train.memory_format=channels_last`);
  * compile     `train.compile=true` (inductor); its first step, which compiles, is reported apart;
  * bf16        bf16 autocast (`train.precision=bf16`); with
  * bf16+cl     channels_last as well.
The bf16 variants run only where the CPU computes bf16 natively (what `train.precision=auto` would choose), unless
`--emulated-bf16` asks for them: emulated bf16 is correct but several times slower than fp32, and auto never picks it.
The table names the CPU, its bf16 capability and the load average before and after.

    python benchmarks/cpu_efficiency.py                                       # everything (about 40 min, 2 cores)
    python benchmarks/cpu_efficiency.py --models deae --presets tiny --rounds 1 --steps 2 --variants fp32,cl  # smoke
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import cpu_description, write_record  # noqa: E402

import latentforge  # noqa: E402
from latentforge.config import build_config  # noqa: E402
from latentforge.errors import ConfigError  # noqa: E402
from latentforge.tasks import build_task  # noqa: E402
from latentforge.train.compiling import compile_modules  # noqa: E402
from latentforge.train.precision import Precision, resolve_precision  # noqa: E402
from latentforge.train.task import Batch, DataShape  # noqa: E402

MODELS = {"deae": ("tiny", "cpu", "paper"), "dcgan": ("tiny", "cpu", "paper"), "ae": ("tiny", "cpu", "paper"),
          "dae": ("tiny", "cpu", "paper"), "prior": ("tiny", "cpu", "paper")}
VARIANTS = ("fp32", "cl", "compile", "bf16", "bf16+cl")
N_EXAMPLES = 10_000


def autoencoder_source(root: Path) -> str:
    """A 2-step `ae` run (cpu preset, 32 px: 4x8x8 latents) for the prior to build on; its weights do not matter."""
    out = root / "ae_source"
    latentforge.train("ae", data="digits", steps=2, out=out, preset="cpu", progress=False,
                      overrides=["data.resolution=32", "train.batch_size=16", "train.checkpoint_every=2",
                                 "train.sample_every=1000", "train.compile=false"])
    return str(out)


class Variant:
    """One way of running a model's step; `step(batch)` trains one step."""

    def __init__(self, name: str, model: str, preset: str, batch: int, source: str | None, device: torch.device):
        self.name, self.times, self.first_s, self.device = name, [], None, device
        overrides = [f"train.batch_size={batch}", f"train.device={device}", "data.resolution=32",
                     "train.compile=false"]
        cfg = None
        for extra in (["model.loss.pixel=mse", "model.loss.perceptual=laplacian"], []):  # models without a loss
            try:
                cfg = build_config(preset, overrides=overrides + extra + (
                    [f"model.source.run={source}"] if model == "prior" else []), model_type=model)
                break
            except ConfigError:
                continue
        shape = DataShape(4, 8, N_EXAMPLES) if model == "prior" else DataShape(3, 32, N_EXAMPLES)
        self.shape = shape
        self.task = build_task(cfg, device, shape, state={"latent_scale": 1.0} if model == "prior"
                               else None)
        self.format = torch.channels_last if name.endswith("cl") else torch.contiguous_format
        if self.format is torch.channels_last:
            for m in [*self.task.modules().values(), *(e.model for e in self.task.emas.values())]:
                m.to(memory_format=torch.channels_last)
        if name == "compile":
            compile_modules(self.task.modules().values(), "default", "inductor")
        self.precision = Precision("bf16", "benchmark") if name.startswith("bf16") else Precision("fp32", "benchmark")

    def step(self, b: Batch) -> None:
        images = b.images.contiguous(memory_format=self.format)
        with self.precision.autocast(self.device):
            self.task.train_step(Batch(images=images, index=b.index, epoch=b.epoch, step=b.step))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: str, preset: str, variants: list[str], args, source: str | None) -> dict:
    device = torch.device(args.device)
    runs = [Variant(name, model, preset, args.batch, source, device) for name in variants]
    shape = runs[0].shape
    g = torch.Generator().manual_seed(0)

    def batch(s: int) -> Batch:
        images = torch.rand(args.batch, shape.channels, shape.resolution, shape.resolution, generator=g) * 2 - 1
        return Batch(images=images.to(device), index=torch.randint(0, N_EXAMPLES, (args.batch,), generator=g),
                     epoch=0, step=s)

    batches = [batch(s) for s in range(args.steps)]
    for v in runs:  # warm-up (and compilation), timed apart
        t0 = time.perf_counter()
        v.step(batches[0])
        v.step(batches[1 % len(batches)])
        sync(device)
        v.first_s = time.perf_counter() - t0
        print(f"  [{model} {preset}] {v.name}: first two steps {v.first_s:.1f} s", file=sys.stderr, flush=True)
    for r in range(args.rounds):
        for v in (runs if r % 2 == 0 else runs[::-1]):  # alternate the order: no variant always goes first
            for b in batches:
                sync(device)
                t0 = time.perf_counter()
                v.step(b)
                sync(device)
                v.times.append(time.perf_counter() - t0)
    params = sum(p.numel() for m in runs[0].task.modules().values() for p in m.parameters())
    base = statistics.median(runs[0].times)
    return {"model": model, "preset": preset, "params": params, "variants": {
        v.name: {"median_step_s": statistics.median(v.times), "img_per_s": args.batch / statistics.median(v.times),
                 "ratio_to_fp32": base / statistics.median(v.times), "first_two_steps_s": v.first_s,
                 "step_seconds": v.times} for v in runs}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--presets", default="tiny,cpu,paper")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--emulated-bf16", action="store_true", help="time bf16 on a CPU that does not compute it natively")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu, or cuda (the GPU checks)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "cpu_efficiency.json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    auto = resolve_precision("auto", torch.device(args.device))
    variants = [v for v in args.variants.split(",") if v in VARIANTS]
    skipped_bf16 = auto.name != "bf16" and not args.emulated_bf16
    if skipped_bf16:
        variants = [v for v in variants if not v.startswith("bf16")]
    if variants[0] != "fp32":
        variants.insert(0, "fp32")
    print(f"CPU: {cpu_description()}; torch {torch.__version__} (kernels {torch.backends.cpu.get_cpu_capability()}), "
          f"{torch.get_num_threads()} threads; train.precision=auto here: {auto.name} ({auto.reason})"
          + ("; bf16 variants skipped (--emulated-bf16 times them)" if skipped_bf16 else ""), flush=True)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        source = autoencoder_source(Path(tmp)) if "prior" in args.models else None
        for model in args.models.split(","):
            for preset in args.presets.split(","):
                if preset in MODELS[model]:
                    results.append(measure(model, preset, variants, args, source))
    load_after = os.getloadavg()
    head = f"{'model':<6} {'preset':<6} {'params':>10} " + " ".join(f"{v:>15}" for v in variants) + \
        f" {'compile: first 2 steps':>23}"
    print(f"\ntraining step, batch {args.batch}, img/s (ratio to fp32 eager)\n{head}\n" + "-" * len(head))
    for r in results:
        cells = " ".join(f"{r['variants'][v]['img_per_s']:>7.1f} ({r['variants'][v]['ratio_to_fp32']:.2f}x)"
                         for v in variants)
        first = r["variants"].get("compile", {}).get("first_two_steps_s")
        print(f"{r['model']:<6} {r['preset']:<6} {r['params']:>10,} {cells} "
              f"{(f'{first:.0f} s' if first else '-'):>23}")
    la = lambda t: "/".join(f"{x:.2f}" for x in t)  # noqa: E731
    print(f"load average: before {la(load_before)}, after {la(load_after)}")
    write_record("cpu_efficiency", args.out, load_before, torch=torch.__version__,
                 kernels=torch.backends.cpu.get_cpu_capability(), threads=torch.get_num_threads(), batch=args.batch,
                 rounds=args.rounds, steps=args.steps, precision_auto=auto.name, precision_reason=auto.reason,
                 bf16_timed=not skipped_bf16, results=results)


if __name__ == "__main__":
    main()
