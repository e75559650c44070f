"""Which arithmetic the training step runs in, and why.

bf16 autocast pays only where the hardware computes bf16 natively: NVIDIA GPUs from Ampere on, and CPUs with
AVX-512 BF16 (AMD Zen 4 and later, Intel Cooper Lake) or AMX (Intel Sapphire Rapids and later), where oneDNN runs
convolutions and matmuls in bf16 with fp32 accumulation. Elsewhere bf16 is emulated and slower than fp32, so `auto`
stays in fp32 there. Under autocast only the convolutions and matmuls run in bf16: the weights, their EMA copies,
the optimizer state and batch-norm statistics stay fp32 tensors, and the losses are reduced in fp32 (torch's CPU and
CUDA autocast run mse/l1/BCE-with-logits in fp32).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch


def cpu_bf16_feature() -> str | None:
    """The CPU feature that makes bf16 native here ('amx_bf16' or 'avx512_bf16'), or None.

    Both the CPU must have it and torch's kernels must be built for AVX-512 (its dispatch capability), or the
    element-wise work between the oneDNN kernels falls back to slower code."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith("AVX512"):
        return None
    flags = _cpu_flags()
    probes = (("amx_bf16", getattr(torch.cpu, "_is_amx_tile_supported", None)),
              ("avx512_bf16", getattr(torch.cpu, "_is_avx512_bf16_supported", None)))
    for name, probe in probes:
        if (probe() if probe is not None else False) or name in flags:
            return name
    return None


def _cpu_flags() -> set[str]:
    """Linux's view of the CPU's features (empty elsewhere; torch's probes above cover other systems)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@dataclass(frozen=True)
class Precision:
    """The arithmetic in force (`name`: 'bf16' or 'fp32') and the one-line reason the start line and run.json give."""

    name: str
    reason: str

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.name != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def record(self) -> dict[str, str]:
        return {"precision": self.name, "precision_reason": self.reason}


def resolve_precision(asked: str, device: torch.device) -> Precision:
    """`train.precision` (auto | fp32 | bf16) on this device -> the precision in force and why."""
    if asked == "fp32":
        return Precision("fp32", "train.precision=fp32")
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        if asked == "bf16":
            return Precision("bf16", "train.precision=bf16" + ("" if native else "; this GPU emulates bf16 (slow)"))
        return (Precision("bf16", "auto: this GPU computes bf16 natively") if native
                else Precision("fp32", "auto: this GPU has no native bf16"))
    if device.type != "cpu":
        return Precision("bf16" if asked == "bf16" else "fp32", f"train.precision={asked} on {device.type}")
    feature = cpu_bf16_feature()
    if asked == "bf16":
        return Precision("bf16", "train.precision=bf16" + (f" (the CPU has {feature})" if feature else
                                                            "; this CPU emulates bf16, usually slower than fp32"))
    if feature:
        return Precision("bf16", f"auto: the CPU computes bf16 natively ({feature})")
    return Precision("fp32", "auto: this CPU has no native bf16 (no avx512_bf16 or amx_bf16)")
