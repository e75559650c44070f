"""The Python API, mirroring the CLI: train a model into a run folder, load a run, sample from it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentforge.config import DataConfig, RunConfig, build_config
from latentforge.data.dataset import ImageDataset, load_dataset
from latentforge.data.fetch import default_cache_dir
from latentforge.data.protocol import TrainingData
from latentforge.errors import CheckpointError, ConfigError, DataError
from latentforge.tasks import LoadedRun, build_task, load_run, task_class
from latentforge.train import distributed
from latentforge.train.loop import FitResult, Trainer, check_compatible, resolve_device
from latentforge.train.run_dir import ResumePoint, RunDir
from latentforge.train.task import DataShape, TrainTask
from latentforge.utils.io import ensure_writable

__all__ = ["train", "load_run", "LoadedRun", "TrainResult", "evaluate_run", "evaluate_images"]


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    summary: dict[str, Any]
    interrupted: bool


def train(
    model: str = "deae",
    data: str | None = None,
    steps: int | None = None,
    out: str | Path = "runs/deae",
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    until_step: int | None = None,
    bar: bool = True,
) -> TrainResult:
    """Train `model` into the run folder `out`. With resume=True, continue the run found there exactly.

    preset None: the model's reference recipe (`paper`) on a CUDA machine, its `cpu` preset otherwise (the
    reference DeAE is an 18M-parameter, batch-256 GPU recipe: over a minute per step on 2 CPU cores).
    progress=False trains silently; bar=False keeps the printed lines (start, estimate, diagnostics, a progress
    line every 30 s) without a progress bar."""
    run = RunDir(Path(out))
    chosen_note = None
    base: dict[str, Any] = {"model_type": model}
    if data is not None:
        base["data"] = {"name": data}
    if steps is not None:
        base["train"] = {"steps": steps}
    if resume:
        if not run.exists():
            raise CheckpointError(f"cannot resume: {run.root} holds no run (no config.yaml)")
        saved = run.load_config().model_dump(mode="json")
        if model != saved["model_type"]:
            raise ConfigError(f"{run.root} holds a {saved['model_type']} run; resume it with "
                              f"`train {saved['model_type']} --resume`")
        if data is not None and data != saved["data"]["name"]:
            raise ConfigError(f"cannot resume on other data: the run used {saved['data']['name']!r}, got {data!r}")
        if preset is not None and preset != saved.get("preset"):
            raise ConfigError(f"--preset cannot change on --resume: {run.root} keeps its preset "
                              f"{saved.get('preset')!r} and config; change single keys with --set")
        if config_file is not None:
            raise ConfigError("--config cannot be combined with --resume: the run keeps its config.yaml; "
                              "change single keys with --set")
        saved["train"].update(base.get("train", {}))  # only --steps may come from the command line; rest via --set
        cfg = build_config(None, None, overrides, base=saved, model_type=saved["model_type"])
    else:
        if run.exists():
            raise ConfigError(f"{run.root} already holds a run: pass --resume to continue it or choose another --out")
        chosen = preset or default_preset()
        cfg = build_config(chosen, Path(config_file) if config_file else None, overrides, base=base, model_type=model)
        chosen_note = (f"preset: {chosen} (chosen for this machine's {'GPU' if chosen == 'paper' else 'CPU'}; "
                       f"--preset names another)") if preset is None else None

    ensure_writable(run.root, "the run folder")
    ensure_writable(default_cache_dir(), "the dataset and feature cache (set LATENTFORGE_CACHE to a writable folder)",
                    create=True)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    world = distributed.setup(resolve_device(cfg.train.device).type)  # under torchrun: join the process group
    progress = progress and world.is_main
    device = resolve_device(cfg.train.device)
    if chosen_note and progress:  # after the device check: no preset line before a device error
        print(chosen_note, flush=True)
    cfg, dataset = task_class(cfg.model_type).prepare(cfg, progress=progress)
    check_enough_data(dataset, cfg.train.batch_size, progress)
    resume_from = resumed_checkpoint(run, cfg, dataset) if resume else None
    saved_state = resume_from.state if resume_from else None
    torch.manual_seed(cfg.train.seed)  # weight initialisation; everything later draws from (seed, step) generators
    note = task_class(cfg.model_type).setup_note(cfg, len(dataset))
    if note and progress and saved_state is None:
        print(note, flush=True)
    task = build_task(cfg, device, DataShape.of(dataset), dataset=dataset, state=saved_state)
    distributed.barrier()  # every rank has checked the folder before rank 0 creates it
    if world.is_main:
        run.create(None if resume else cfg)  # a resumed run's config is rewritten only once its checkpoint is accepted
    distributed.barrier()
    trainer = Trainer(task, dataset, run, progress=progress, bar=bar)
    fit = trainer.fit(resume_from, until_step=until_step)
    if not world.is_main:  # rank 0 writes the summary; the others only trained their shards
        return TrainResult(run.root, fit.step, {"kind": "summary", "step": fit.step, "rank": world.rank},
                           fit.interrupted)
    summary = summarize(task, dataset, run, fit)
    return TrainResult(run.root, fit.step, summary, fit.interrupted)


MIN_TRAINING_EXAMPLES = 8  # below this a generator can only copy, and batch statistics mean nothing
MIN_EVAL_REFERENCE = 10  # FID's covariance and the k=5 nearest-neighbour metrics need more reference images than k


def check_enough_data(dataset: TrainingData, batch_size: int, progress: bool) -> None:
    """Refuse a training set too small to learn a distribution from, before any work; say when the batch shrinks."""
    n = len(dataset)
    if n < MIN_TRAINING_EXAMPLES:
        raise DataError(f"{dataset.name} has {n} usable {dataset.kind} in its {dataset.split} split; training needs "
                        f"at least {MIN_TRAINING_EXAMPLES} (add images, or data.split=all to train on the held-out "
                        f"share too)")
    if n < batch_size and progress:
        print(f"note: the batch shrinks from {batch_size} to {n}: the data has only {n} {dataset.kind}", flush=True)


def resumed_checkpoint(run: RunDir, cfg: RunConfig, dataset: TrainingData) -> ResumePoint:
    """The checkpoint a run resumes from, loaded once and checked against the config and the data it began with
    before the task is built, so that what a task fitted to its data (a DeAE's k-means ids, a GAN's latent
    distribution) is read back rather than fitted again; the trainer restores from this same load."""
    began = run.read_info().get("dataset", {}).get("count")
    if began is not None and began != len(dataset):  # a DeAE's patterns and the data order are per example
        raise DataError(f"cannot resume {run.root}: it began on {began:,} {dataset.kind} of {dataset.name}, there are "
                        f"now {len(dataset):,} (added or removed?): restore them, or train a new run (--out NEW)")
    good = run.load_good_checkpoint()
    if good is not None:
        _, path, _, info = good
        check_compatible(cfg.model_dump(mode="json"), info.get("config", {}), path,
                         ignore=task_class(cfg.model_type).non_structural_keys)
    return ResumePoint(good)


def default_preset() -> str:
    """The preset a run gets when none is named: the reference recipe where a GPU can run it."""
    return "paper" if torch.cuda.is_available() else "cpu"


def summarize(task: TrainTask, dataset: ImageDataset, run: RunDir, fit: FitResult, n: int = 256) -> dict[str, Any]:
    """End-of-run figures that need no feature network (the task says which), appended to metrics.jsonl as
    kind='summary'."""
    record: dict[str, Any] = {"kind": "summary", "step": fit.step, "state": fit.state,
                              "wall_s": round(fit.seconds, 2), **fit.last}
    record.update(task.summarize(dataset, n))
    run.append_metrics(record)
    return record


def _train_and_heldout(data_cfg: DataConfig) -> tuple[ImageDataset, ImageDataset | None]:
    """The split a model trained on, and the held-out images it never saw (None when the config used all data)."""
    train_set = load_dataset(data_cfg)
    if data_cfg.split != "train":
        return train_set, None
    try:
        return train_set, load_dataset(data_cfg.model_copy(update={"split": "test", "limit": None}))
    except DataError:  # a split with no held-out images
        return train_set, None


def evaluate_run(run_dir: str | Path, n: int = 1000, features: str = "auto", seed: int = 1,
                 bn: str | None = None, inception_path: str | None = None, progress: bool = True,
                 feature_net_steps: int | None = None, avoid: tuple[str, ...] = ()) -> dict[str, Any]:
    """Sample n images from a run and score them against its dataset (held-out split for distribution metrics,
    train split for memorisation); the record is appended to the run's metrics.jsonl as kind='eval'.

    The feature network is never one the model was trained from (docs/evaluation.md): a GAN on SSL latents is scored by a
    SimCLR encoder of another architecture and seed, and the record names both. `avoid`: further SimCLR
    architectures not to score with (a sweep passes its ssl cells' one, so that all its cells share a network)."""
    from latentforge.metrics.evaluate import evaluate, resolve_features

    if n < 2:
        raise ConfigError("evaluation needs at least 2 samples (--n)")
    clock = _Clock()
    loaded = load_run(run_dir)
    train_set, heldout = _train_and_heldout(loaded.cfg.data)
    reference = heldout if heldout is not None and len(heldout) >= 2 else train_set
    if len(reference) < MIN_EVAL_REFERENCE:
        raise DataError(f"evaluation needs at least {MIN_EVAL_REFERENCE} reference images; {train_set.name} has "
                        f"{len(reference)} in its {reference.split} split")
    clock.lap("load_s")
    seen = loaded.task.networks_seen()
    avoid = tuple(avoid) + tuple(s["arch"] for s in seen if s.get("method") == "simclr" and "arch" in s)
    extractor = resolve_features(features, train_set, heldout, progress=progress, inception_path=inception_path,
                                 trained_steps=feature_net_steps, avoid=avoid)
    if extractor.label in {s["label"] for s in seen}:
        raise ConfigError(f"{extractor.label} is the network this model was trained from; choose other --features")
    clock.lap("feature_network_s")
    fake = loaded.task.sample(n, seed=seed, bn=bn)
    clock.lap("sampling_s")
    sample_bn = bn or getattr(loaded.cfg.model, "sample_bn", None)
    grid = loaded.run.root / "eval" / f"nearest_step_{loaded.step:07d}.png"
    record = {"kind": "eval", "step": loaded.step, "sample_seed": seed,
              "sample_bn": sample_bn, "model_trained_from": [s["label"] for s in seen],
              **evaluate(fake, train_set, heldout, extractor, grid_path=grid, seed=seed)}
    clock.lap("scoring_s")
    record.update(clock.record())
    loaded.run.append_metrics(record)
    loaded.run.close_events()
    return record


class _Clock:
    """Wall time of an evaluation and of its parts: the feature network's first training dominates a cold run."""

    def __init__(self) -> None:
        self.t0 = self.t = time.perf_counter()
        self.parts: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.parts[name] = round(now - self.t, 2)
        self.t = now

    def record(self) -> dict[str, Any]:
        return {"eval_seconds": round(time.perf_counter() - self.t0, 2), "eval_seconds_parts": self.parts}


def evaluate_images(fake: torch.Tensor | str | Path, data: str = "digits", resolution: int | None = None,
                    features: str = "auto", seed: int = 1, grid_path: str | Path | None = None,
                    progress: bool = True, feature_net_steps: int | None = None) -> dict[str, Any]:
    """Score images that came from anywhere (a tensor in [-1, 1], an image folder, a .npy/.npz file) against a
    dataset (built-in name or path): the same record `latentforge eval` writes."""
    from latentforge.metrics.evaluate import evaluate, resolve_features

    clock = _Clock()
    if isinstance(fake, torch.Tensor):
        resolution = resolution or fake.shape[-1]
    resolution = resolution or 32
    train_set, heldout = _train_and_heldout(DataConfig(name=data, resolution=resolution))
    if not isinstance(fake, torch.Tensor):
        fake_set = load_dataset(DataConfig(name=str(fake), resolution=resolution, split="all",
                                           channels=train_set.channels, cache=False))
        fake = fake_set.get(torch.arange(len(fake_set)))
    clock.lap("load_s")
    extractor = resolve_features(features, train_set, heldout, progress=progress, trained_steps=feature_net_steps)
    clock.lap("feature_network_s")
    record = evaluate(fake.float(), train_set, heldout, extractor, seed=seed,
                      grid_path=Path(grid_path) if grid_path else None)
    clock.lap("scoring_s")
    return record | clock.record()
