"""Every trainable model, found by name: one module per model, each defining a TrainTask, and its entry in the
model table (`latentforge.config.models.MODELS`), which says where the task lives. Nothing else in the toolkit
branches on the model type.
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentforge.config import MODELS, RunConfig
from latentforge.data.protocol import TrainingData
from latentforge.errors import CheckpointError, ConfigError
from latentforge.train.loop import check_compatible, resolve_device
from latentforge.train.run_dir import RunDir
from latentforge.train.task import DataShape, TrainTask


def task_class(model_type: str) -> type[TrainTask]:
    if model_type not in MODELS:
        raise ConfigError(f"unknown model {model_type!r}; choose from {', '.join(MODELS)}")
    module, name = MODELS[model_type].task.split(":")
    return getattr(importlib.import_module(module), name)


def build_task(cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
               for_training: bool = True, state: dict[str, Any] | None = None) -> TrainTask:
    """The task for cfg.model_type: its inputs first (fitted to `dataset` when training, read from the checkpoint's
    `state` when loading a run without its data), then the networks built from them."""
    cls = task_class(cfg.model_type)
    return cls(cfg, device, shape, cls.build_inputs(cfg, device, shape, dataset, state), for_training=for_training)


@dataclass
class LoadedRun:
    run: RunDir
    cfg: RunConfig
    task: TrainTask
    step: int
    info: dict[str, Any]


def load_run(run_dir: str | Path, step: int | None = None, device: str = "auto") -> LoadedRun:
    """Rebuild a run's model from its folder (config.yaml + run.json + a checkpoint) without loading its data."""
    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise CheckpointError(f"run folder not found: {run.root}")
    cfg = run.load_config()
    info = run.read_info()
    if not info.get("dataset"):
        raise CheckpointError(f"{run.root} has no run.json: was the run started?")
    found = dict(run.list_checkpoints())
    if not found:
        raise CheckpointError(f"{run.root} has no checkpoint yet")
    if step is not None and step not in found:
        raise CheckpointError(f"{run.root} has no checkpoint at step {step} (have {sorted(found)})")
    step, path, state, ck_info = run.load_good_checkpoint(step)
    check_compatible(cfg.model_dump(mode="json"), ck_info.get("config", {}), path,
                     ignore=task_class(cfg.model_type).non_structural_keys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = build_task(cfg, resolve_device(device, "--device"), DataShape.from_info(info), for_training=False,
                          state=state)
    try:
        task.load_state_dict(state, weights_only=True)
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {str(e).splitlines()[0]}"
                              + run.version_note()) from None
    return LoadedRun(run, cfg, task, step, info)
