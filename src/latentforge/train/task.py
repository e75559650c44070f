"""What a model contributes to training: its modules, optimizers, one step and how it samples. The Trainer does
the rest.

Every model (DeAE, DCGAN, and those to come) is a TrainTask found through `latentforge.tasks`, so all of them share
one loop, one run-folder layout, checkpointing, resume, logging and sample grids. Abilities that only some models
have (reconstructing a training example, interpolating) are protocols the CLI asks for instead of assuming.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from latentforge.config import RunConfig
from latentforge.data.dataset import ImageDataset
from latentforge.data.protocol import TrainingData
from latentforge.metrics.pixel import mean_pairwise_distance, nearest_neighbours
from latentforge.train.ema import EMA
from latentforge.train.optimizer_step import Update, optimizer_step
from latentforge.utils.rng import step_generator  # noqa: F401  (tasks import it from here)


@dataclass
class Batch:
    images: torch.Tensor  # the training data's batch on the task's device: images in [-1, 1] (or a prior's latents)
    index: torch.Tensor  # dataset indices (int64, CPU): per-example identities such as DeAE patterns
    epoch: int
    step: int  # 0-based index of the optimizer step this batch feeds
    rows: torch.Tensor | None = None  # under torchrun: this process's rows of the global batch (None: all of it)
    global_size: int | None = None  # the global batch size (None: this batch's own size)

    def draw(self, fn: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """Per-example randomness: `fn(n)` draws n rows for the whole global batch, and this process keeps its
        own rows, so N processes draw exactly what one process would (the same stream, whatever the world size)."""
        if self.rows is None:
            return fn(self.images.shape[0])
        return fn(self.global_size)[self.rows]


@dataclass(frozen=True)
class DataShape:
    """What a model must know about its data to be built: from the dataset when training, from run.json when
    a run is loaded without its data."""

    channels: int
    resolution: int
    count: int

    @classmethod
    def of(cls, dataset: TrainingData) -> "DataShape":
        return cls(dataset.channels, dataset.resolution, len(dataset))

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> "DataShape":
        d = info.get("dataset", {})
        return cls(int(d["channels"]), int(d["resolution"]), int(d["count"]))


class TrainTask(ABC):
    name: ClassVar[str] = "task"
    lr_keys: ClassVar[tuple[str, ...]] = ("model.optim.lr",)  # what to lower when training diverges
    non_structural_keys: ClassVar[frozenset[str]] = frozenset()  # model config keys that may change on resume

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        """Builds networks, optimizers and EMA copies only; everything that needs the data or other runs arrives
        in `inputs` (from `build_inputs`). for_training=False: for sampling (no loss networks)."""
        self.cfg, self.device, self.shape = cfg, device, shape
        self.emas: dict[str, EMA] = {}
        self.updates: dict[str, Update] = {}  # the task's optimizers by name, each with its schedule and EMAs

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Trained networks by name; their EMA copies live in self.emas under the same names."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {name: u.optimizer for name, u in self.updates.items()}

    def optimize(self, name: str, loss: torch.Tensor, batch: Batch) -> dict[str, float]:
        """Take optimizer `name`'s step on `loss`: schedule, backward, the gradient averaged over processes and
        clipped, the step and its EMAs (`train/optimizer_step.py`). Returns `grad_norm` when clipping is on."""
        return optimizer_step(self.updates[name], loss, batch.step, self.cfg.train)

    @abstractmethod
    def train_step(self, batch: Batch) -> dict[str, float]:
        """Compute this step's losses and take them through `self.optimize`; return scalars to log (the first,
        'loss', drives the progress bar). A key may be missing on some steps (a GAN's generator loss when it
        updates every n_dis steps)."""

    @abstractmethod
    def sample(self, n: int, seed: int = 0, *, use_ema: bool = True, bn: str | None = None) -> torch.Tensor:
        """n new images in [-1, 1], reproducible from seed. `bn` ('batch' | 'running') overrides the config's
        batch-norm statistics for models with batch norm in their generator."""

    @classmethod
    def prepare(cls, cfg: RunConfig, progress: bool = True) -> tuple[RunConfig, TrainingData]:
        """The data this model trains on, and its config with anything resolved on the way pinned (a run it
        builds on, fixed to a step). Default: the images `cfg.data` names, config unchanged."""
        from latentforge.data.dataset import load_dataset

        return cfg, load_dataset(cfg.data)

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the task is built from besides its config and data shape, made before it is constructed: runs it
        builds on (resolved, their checkpoints hash-checked) and what is fitted to the training images (k-means
        cluster ids, a generator's latent distribution). A new run fits on `dataset`; a loaded or resumed run reads the
        fitted values back from its checkpoint's `state` (when both are given, `state` wins). Default: nothing."""
        return {}

    @classmethod
    def setup_note(cls, cfg: RunConfig, n_images: int) -> str | None:
        """A line to print before the task is built when building it takes a while (fitting something to the
        data), so a person does not face a silent pause. Default: none."""
        return None

    @property
    def image_shape(self) -> DataShape:
        """The images this model draws (its data's shape, unless it learns an autoencoder's latents)."""
        return self.shape

    def image_data(self, dataset: TrainingData) -> ImageDataset:
        """The images the training data stand for, which samples are compared with: the data themselves, or, for a
        model trained on an autoencoder's latents, the images they encode."""
        return dataset  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """Facts about this task worth recording in run.json (parameter counts, loss networks)."""
        return {"parameters": {k: sum(p.numel() for p in m.parameters()) for k, m in self.modules().items()}}

    def networks_seen(self) -> list[dict[str, Any]]:
        """Feature networks whose space this model was trained from (an SSL latent's encoder), each a dict with at
        least `label` (name@hash) and, for SimCLR encoders, `method` and `arch`. The evaluator must score the model
        with another network (docs/evaluation.md); default: none."""
        return []

    def diagnose(self, dataset: ImageDataset, samples: torch.Tensor) -> dict[str, Any]:
        """Cheap figures on where training stands, computed with every sample grid: logged (kind='diagnostic'),
        printed, and written beside the grid as its caption, so an early grid of blobs reads as a stage, not a
        failure. Default: the samples' pixel diversity relative to the data's. A `note` key, when present, is a
        sentence for the person watching."""
        dataset = self.image_data(dataset)
        ref = dataset.get(torch.arange(min(len(dataset), 256)))
        return {"sample_diversity_ratio": mean_pairwise_distance(samples) / max(mean_pairwise_distance(ref), 1e-12)}

    def summarize(self, dataset: ImageDataset, n: int = 256) -> dict[str, Any]:
        """End-of-run figures that need no feature network (pixel RMS in [0, 1] units): sample diversity against
        the data's, and each sample's distance to its nearest training image (memorisation)."""
        samples = self.sample(n, seed=self.cfg.train.seed + 1)
        dataset = self.image_data(dataset)
        train = dataset.get(torch.arange(len(dataset)))
        d, _ = nearest_neighbours(samples, train)
        return {"sample_nn_rms_mean": float(d.mean()), "sample_nn_rms_min": float(d.min()),
                "sample_diversity_rms": mean_pairwise_distance(samples),
                "train_diversity_rms": mean_pairwise_distance(train[:n]),
                "metric_space": "pixel (RMS in [0,1] units)"}

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "ema": {k: e.model.state_dict() for k, e in self.emas.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
        }

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, e in self.emas.items():
            e.model.load_state_dict(state["ema"][k])
        if not weights_only:
            for k, o in self.optimizers().items():
                o.load_state_dict(state["optimizers"][k])


@runtime_checkable
class Reconstructs(Protocol):
    """Models that can decode training example i from what identifies it (DeAE: its own pattern)."""

    reconstructs_from: str  # what a reconstruction is decoded from, for captions: "their own patterns"

    def reconstruct(self, index: list[int] | np.ndarray, seed: int = 0) -> torch.Tensor: ...


@runtime_checkable
class EncodesImages(Protocol):
    """Autoencoders: images to latents and back, so a prior can be trained on their latents and decoded by them."""

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class EncodesPatterns(Protocol):
    """DeAE: the latents of fresh patterns, a latent distribution another generator can be fed."""

    def encode_fresh(self, n: int, seed: int) -> torch.Tensor: ...


@runtime_checkable
class Interpolates(Protocol):
    """Models with a latent space to walk: `pairs` rows of `steps` images between two fresh latents."""

    def interpolate(self, pairs: int = 4, steps: int = 8, seed: int = 0) -> torch.Tensor: ...
