"""Runs that build on other runs: a prior on an autoencoder's latents needs that autoencoder's encoder (to make its
training data) and its decoder (to turn sampled latents into images); a DAE's stage 2 starts from another run's
encoder; a GAN's latent can be a DeAE's or an autoencoder's.

A `RunRef` in the config names the other run, module, step and EMA choice. Resolving it loads that run at a fixed
step and records what was used (absolute folder, step, the checkpoint file's sha256); the record goes into the new
run's checkpoints and run.json, and a later load refuses a checkpoint that changed under the same name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentforge.config import RunRef
from latentforge.data.fetch import sha256_of
from latentforge.errors import CheckpointError, ConfigError


@dataclass
class ResolvedRef:
    loaded: Any  # latentforge.tasks.LoadedRun of the referenced run
    record: dict[str, Any]  # run (absolute), module, step, ema, model_type, checkpoint, sha256

    @property
    def task(self) -> Any:
        return self.loaded.task


def resolve_reference(ref: RunRef, device: torch.device | str = "cpu", what: str = "model.source",
                      expect: dict[str, Any] | None = None, ability: tuple[type, str] | None = None,
                      module: str | None = None) -> ResolvedRef:
    """Load the referenced run at its step (latest when unset) and check the module exists. `expect` is the record
    written when this run was built: the checkpoint found now must be the same file (same sha256). `ability`:
    (protocol the run's task must satisfy, what kind of run that is, in words). `module`: the module this use
    needs (`ref.module`, when set, must name it)."""
    from latentforge.tasks import load_run

    if not ref.run:
        raise ConfigError(f"{what}.run is not set: name the run folder to build on (`--from RUNDIR`)")
    loaded = load_run(ref.run, step=ref.step, device=str(device))
    if ability is not None and not isinstance(loaded.task, ability[0]):
        raise ConfigError(f"{what} {ref.run} is a {loaded.cfg.model_type} run: this needs {ability[1]}")
    if module is not None and ref.module not in (None, module):
        raise ConfigError(f"{what}.module must be {module!r} here (or unset), got {ref.module!r}")
    name = ref.module or module or "encoder"
    modules = loaded.task.modules()
    if name not in modules:
        raise ConfigError(f"{what}.module {name!r} is not a module of the {loaded.cfg.model_type} run "
                          f"{ref.run} (it has {', '.join(modules)})")
    if ref.ema and name not in loaded.task.emas:
        raise ConfigError(f"{what}.ema is set but the run {ref.run} keeps no EMA of {name!r}")
    path = loaded.run.checkpoint_path(loaded.step)
    record = {"run": str(Path(ref.run).resolve()), "module": name, "step": loaded.step, "ema": ref.ema,
              "model_type": loaded.cfg.model_type, "checkpoint": path.name, "sha256": sha256_of(path)}
    if expect and expect.get("sha256") and expect["sha256"] != record["sha256"]:
        raise CheckpointError(f"{what}: the checkpoint {path} is not the one this run was built on (its sha256 "
                              f"changed since; was {ref.run} retrained into the same folder?)")
    return ResolvedRef(loaded, record)


def resolve_autoencoder(ref: RunRef, device: torch.device | str = "cpu", what: str = "model.source",
                        expect: dict[str, Any] | None = None, purpose: str = "") -> ResolvedRef:
    """A reference that must be an autoencoder run (ae or dae): one that encodes images and decodes latents."""
    from latentforge.train.task import EncodesImages

    return resolve_reference(ref, device, what, expect,
                             ability=(EncodesImages, f"an autoencoder run (ae or dae){purpose}"), module="encoder")


def pinned(ref: RunRef, resolved: ResolvedRef) -> RunRef:
    """The reference with its folder made absolute and its step and module fixed, as the new run's config stores
    it."""
    return ref.model_copy(update={"run": resolved.record["run"], "step": resolved.record["step"],
                                  "module": resolved.record["module"]})
