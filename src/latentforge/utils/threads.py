"""How CPU threads wait: OpenMP's default spin-waiting makes a multi-thread training step many times slower when a
core is busy with something else, while PASSIVE waiting costs a little on an idle machine (figures in
docs/training.md). The policy is read once, when torch loads its OpenMP runtime, so `import latentforge` chooses
it first thing (when torch is not loaded yet).
"""
from __future__ import annotations

import os
import sys
from typing import MutableMapping

_note = "default (spin-wait)"


def choose_wait_policy(env: MutableMapping[str, str] | None = None, torch_loaded: bool | None = None,
                       load: float | None = None, cpus: int | None = None) -> str:
    """PASSIVE when the machine is already busy (1-minute load >= half its cores), unless OMP_WAIT_POLICY is set;
    sets it in `env` (default: this process's environment) and returns the line that the start line shows."""
    global _note
    env = os.environ if env is None else env
    torch_loaded = "torch" in sys.modules if torch_loaded is None else torch_loaded
    cpus = cpus or os.cpu_count() or 1
    if "OMP_WAIT_POLICY" in env:
        _note = f"{env['OMP_WAIT_POLICY'].upper()} (set by OMP_WAIT_POLICY)"
    elif torch_loaded:
        _note = "default (spin-wait; torch was imported before a policy could be chosen)"
    else:
        load = os.getloadavg()[0] if load is None else load
        if load >= 0.5 * cpus:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
            _note = f"PASSIVE (busy: load {load:.1f} on {cpus} cores; OMP_WAIT_POLICY=ACTIVE overrides)"
        else:
            _note = f"default (idle: load {load:.1f} on {cpus} cores)"
    return _note


def wait_policy_note() -> str:
    return _note


class SlowdownWatch:
    """The machine got busy after training started: the policy chosen at import no longer fits, and OpenMP reads it
    only once. Watches the throughput of each logging interval and, once, returns a line that says so and how to
    continue (stop, set OMP_WAIT_POLICY=PASSIVE, --resume: the run continues exactly where it was)."""

    def __init__(self, factor: float = 3.0, warmup: int = 3, cpus: int | None = None):
        self.factor, self.warmup, self.cpus = factor, warmup, cpus or os.cpu_count() or 1
        self.best, self.seen, self.said = 0.0, 0, False

    def observe(self, img_per_s: float, load: float | None = None, spinning: bool | None = None) -> str | None:
        self.seen += 1
        if self.seen <= self.warmup:  # the first intervals include warm-up and the first sample grid
            return None
        self.best = max(self.best, img_per_s)
        spinning = (not _note.startswith("PASSIVE")) if spinning is None else spinning
        if self.said or not spinning or img_per_s * self.factor > self.best:
            return None
        load = os.getloadavg()[0] if load is None else load
        if load < self.cpus:  # slower, but not because the cores are shared: nothing to advise
            return None
        self.said = True
        return (f"training slowed to {img_per_s:.0f} img/s from {self.best:.0f} while the machine is busy (load "
                f"{load:.1f} on {self.cpus} cores); with OpenMP spin-waiting that can cost 10x. Stop (Ctrl-C saves), "
                f"then continue with OMP_WAIT_POLICY=PASSIVE latentforge train ... --resume")
