"""The Python API, mirroring the CLI: train a model into a run folder, load a run, sample from it."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentforge.config import DataConfig, RunConfig, build_config
from latentforge.data.dataset import ImageDataset, load_dataset
from latentforge.errors import CheckpointError, ConfigError, DataError
from latentforge.metrics.pixel import mean_pairwise_distance, nearest_neighbours, rms_distance
from latentforge.utils.checkpoint import load_checkpoint
from latentforge.train.deae_step import DeAETask
from latentforge.train.loop import FitResult, Trainer, check_compatible, resolve_device
from latentforge.train.run_dir import RunDir
from latentforge.train.task import TrainTask


def build_task(cfg: RunConfig, device: torch.device, dataset: ImageDataset | None = None,
               info: dict[str, Any] | None = None, with_loss: bool = True) -> TrainTask:
    """The model-specific task for cfg.model_type, sized from the dataset (training) or run.json (loading)."""
    if dataset is not None:
        shape = {"channels": dataset.channels, "resolution": dataset.resolution, "count": len(dataset)}
    else:
        shape = (info or {}).get("dataset", {})
    if cfg.model_type == "deae":
        images = None
        if cfg.model.mask_clusters > 0 and dataset is not None:
            images = dataset.images.numpy()
        return DeAETask(cfg, device, shape["channels"], shape["resolution"], shape["count"],
                        cluster_images=images, with_loss=with_loss)
    raise ConfigError(f"unknown model_type {cfg.model_type!r}")


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
) -> TrainResult:
    """Train `model` into the run folder `out`. With resume=True, continue the run found there exactly."""
    run = RunDir(Path(out))
    base: dict[str, Any] = {"model_type": model}
    if data is not None:
        base["data"] = {"name": data}
    if steps is not None:
        base["train"] = {"steps": steps}
    if resume:
        if not run.exists():
            raise CheckpointError(f"cannot resume: {run.root} holds no run (no config.yaml)")
        saved = run.load_config().model_dump(mode="json")
        if data is not None and data != saved["data"]["name"]:
            raise ConfigError(f"cannot resume on other data: the run used {saved['data']['name']!r}, got {data!r}")
        saved["train"].update(base.get("train", {}))  # only --steps may come from the command line; rest via --set
        cfg = build_config(None, None, overrides, base=saved)
    else:
        if run.exists():
            raise ConfigError(f"{run.root} already holds a run: pass --resume to continue it or choose another --out")
        cfg = build_config(preset, Path(config_file) if config_file else None, overrides, base=base)

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    dataset = load_dataset(cfg.data)
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)  # weight initialisation; everything later draws from (seed, step) generators
    task = build_task(cfg, device, dataset)
    run.create(cfg)
    trainer = Trainer(task, dataset, run, progress=progress)
    fit = trainer.fit(resume=resume, until_step=until_step)
    summary = summarize(task, dataset, run, fit)
    return TrainResult(run.root, fit.step, summary, fit.interrupted)


def summarize(task: TrainTask, dataset: ImageDataset, run: RunDir, fit: FitResult, n: int = 256) -> dict[str, Any]:
    """End-of-run figures that need no feature network: loss, reconstruction vs wrong-pattern error, diversity,
    nearest-training-image distances. Appended to metrics.jsonl as kind='summary'."""
    record: dict[str, Any] = {"kind": "summary", "step": fit.step, "wall_s": round(fit.seconds, 2), **fit.last}
    if isinstance(task, DeAETask):
        n_rec = min(n, len(dataset))
        idx = torch.arange(n_rec)
        rec = task.reconstruct(idx.numpy())
        target = dataset.get(idx)
        record["recon_rms_own_pattern"] = float(rms_distance(rec, target).mean())
        record["recon_rms_vs_other_image"] = float(rms_distance(rec, dataset.get(idx.roll(1))).mean())
        samples = task.sample(n, seed=task.cfg.train.seed + 1)
        d, _ = nearest_neighbours(samples, dataset.get(torch.arange(len(dataset))))
        record["sample_nn_rms_mean"] = float(d.mean())
        record["sample_nn_rms_min"] = float(d.min())
        record["sample_diversity_rms"] = mean_pairwise_distance(samples)
        record["train_diversity_rms"] = mean_pairwise_distance(target)
        record["metric_space"] = "pixel (RMS in [0,1] units)"
    run.append_metrics(record)
    return record


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
    step = step if step is not None else max(found)
    if step not in found:
        raise CheckpointError(f"{run.root} has no checkpoint at step {step} (have {sorted(found)})")
    state, ck_info = load_checkpoint(found[step])
    check_compatible(cfg.model_dump(mode="json"), ck_info.get("config", {}), found[step])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = build_task(cfg, resolve_device(device), info=info, with_loss=False)
    try:
        task.load_state_dict(state, weights_only=True)
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {found[step]} does not fit this model: {str(e).splitlines()[0]}") from None
    return LoadedRun(run, cfg, task, step, info)



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
                 feature_net_steps: int = 400) -> dict[str, Any]:
    """Sample n images from a run and score them against its dataset (held-out split for distribution metrics,
    train split for memorisation); the record is appended to the run's metrics.jsonl as kind='eval'."""
    from latentforge.metrics.evaluate import evaluate, resolve_features

    if n < 2:
        raise ConfigError("evaluation needs at least 2 samples (--n)")
    loaded = load_run(run_dir)
    train_set, heldout = _train_and_heldout(loaded.cfg.data)
    extractor = resolve_features(features, train_set, heldout, progress=progress, inception_path=inception_path,
                                 trained_steps=feature_net_steps)
    fake = loaded.task.sample(n, seed=seed, bn=bn)
    grid = loaded.run.root / "eval" / f"nearest_step_{loaded.step:07d}.png"
    record = {"kind": "eval", "step": loaded.step, "sample_seed": seed,
              "sample_bn": bn or getattr(loaded.cfg.model, "sample_bn", None),
              **evaluate(fake, train_set, heldout, extractor, grid_path=grid, seed=seed)}
    loaded.run.append_metrics(record)
    return record


def evaluate_images(fake: torch.Tensor | str | Path, data: str = "digits", resolution: int | None = None,
                    features: str = "auto", seed: int = 1, grid_path: str | Path | None = None,
                    progress: bool = True, feature_net_steps: int = 400) -> dict[str, Any]:
    """Score images that came from anywhere (a tensor in [-1, 1], an image folder, a .npy/.npz file) against a
    dataset (built-in name or path): the same record `latentforge eval` writes."""
    from latentforge.metrics.evaluate import evaluate, resolve_features

    if isinstance(fake, torch.Tensor):
        resolution = resolution or fake.shape[-1]
    resolution = resolution or 32
    train_set, heldout = _train_and_heldout(DataConfig(name=data, resolution=resolution))
    if not isinstance(fake, torch.Tensor):
        fake_set = load_dataset(DataConfig(name=str(fake), resolution=resolution, split="all",
                                           channels=train_set.channels, cache=False))
        fake = fake_set.get(torch.arange(len(fake_set)))
    extractor = resolve_features(features, train_set, heldout, progress=progress, trained_steps=feature_net_steps)
    return evaluate(fake.float(), train_set, heldout, extractor, seed=seed,
                    grid_path=Path(grid_path) if grid_path else None)
