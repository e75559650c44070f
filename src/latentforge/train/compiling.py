"""torch.compile for the trained modules: when it pays, and how a failure falls back to eager.

Compilation costs a fixed time before the first compiled step (inductor generates and builds C++ on a CPU) and then
saves a share of every step. `auto` therefore waits for the session's first eager steps, estimates the time left, and
compiles only when the saving repays the cost twice over; a run too short for that stays eager. Then it times the
first compiled steps and goes back to eager if they are not faster (as on networks whose convolutions inductor
cannot improve). The cost and the saving are the cautious ends of what benchmarks/cpu_efficiency.py measures (docs/training.md, "How fast a step is").
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

COMPILE_COST_S = 120.0  # the first compiled step's extra time (generated code is built then)
STEP_SAVING = 0.15      # the share of an eager step's time a compiled step saves
DECIDE_AFTER_STEPS = 5  # eager steps timed before `auto` decides
CHECK_STEPS = 5         # compiled steps timed after the compiling one; auto goes back to eager unless they are
MIN_GAIN = 0.05         # at least this much faster than the eager steps
MIN_REMAINING_S = 2 * COMPILE_COST_S / STEP_SAVING  # auto compiles when at least this much training is left


@dataclass(frozen=True)
class CompileDecision:
    compile: bool
    reason: str


@functools.cache
def cxx_compiler_works() -> str | None:
    """The C++ compiler inductor would use, if one builds a trivial program here; None otherwise."""
    cxx = os.environ.get("CXX") or next((c for c in ("g++", "c++", "clang++") if shutil.which(c)), None)
    if cxx is None or shutil.which(cxx) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        src.write_text("int main() { return 0; }\n")
        try:
            ok = subprocess.run([cxx, str(src), "-o", str(Path(tmp) / "probe")], capture_output=True,
                                timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
    return cxx if ok else None


def decide(asked: bool | str, backend: str, remaining_s: float | None) -> CompileDecision:
    """`train.compile` (true | false | auto) -> compile or not, with the reason for the log.

    remaining_s: the estimated training time left after the first eager steps (None before they ran)."""
    if asked is False:
        return CompileDecision(False, "train.compile=false")
    if asked is True:
        return CompileDecision(True, "train.compile=true")
    if backend == "inductor" and cxx_compiler_works() is None:
        return CompileDecision(False, "auto: no working C++ compiler for inductor (install g++ or set CXX)")
    if remaining_s is None or remaining_s < MIN_REMAINING_S:
        left = ("an unknown time" if remaining_s is None else "under a minute" if remaining_s < 60
                else f"about {remaining_s / 60:.0f} min")
        return CompileDecision(False, f"auto: {left} of training left does not repay a compile "
                                      f"(it pays from {MIN_REMAINING_S / 60:.0f} min)")
    return CompileDecision(True, f"auto: about {remaining_s / 60:.0f} min of training left repays a compile")


def compile_modules(modules: Iterable[torch.nn.Module], mode: str, backend: str) -> None:
    """torch.compile each module in place (`nn.Module.compile`): state_dict keys, optimizers and gradient hooks see
    the same parameters, so checkpoints and resume do not change. Only `forward` is compiled; the EMA copies (which
    sample) stay eager, so a grid does not trigger a recompilation for its batch size."""
    for module in modules:
        module.compile(mode=None if mode == "default" else mode, backend=backend)


def cause(error: BaseException) -> str:
    """One line for a failed compilation: dynamo wraps the backend's own error, which is the informative one."""
    inner = getattr(error, "inner_exception", None) or error.__cause__ or error
    text = next((line for line in str(inner).splitlines() if line.strip()), "")
    return f"{type(inner).__name__}: {text[:160]}" if text else type(inner).__name__


def uncompile_modules(modules: Iterable[torch.nn.Module]) -> None:
    """Undo `compile_modules`: `nn.Module.compile` keeps the compiled callable in `_compiled_call_impl`."""
    for module in modules:
        module._compiled_call_impl = None
    torch._dynamo.reset()
