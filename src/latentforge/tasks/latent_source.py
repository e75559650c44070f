"""What every model trained in the latent space of a frozen autoencoder run shares (the diffusion prior, the latent
DeAE): the source run, pinned and hash-checked; its training images encoded once (posterior means, from the latent
cache); the scale that brings those latents to unit standard deviation; images for everything a person sees
(sample grids, diagnostics, summaries); and decoding through the source run's decoder.

A task mixes `OnAutoencoderLatents` in before its model class and calls `_init_source(inputs)` first thing in its
constructor; its `build_inputs` adds `source_inputs(...)`.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from latentforge.config import RunConfig
from latentforge.data.dataset import ImageDataset, load_dataset
from latentforge.data.latent_cache import LatentDataset, cached_latents
from latentforge.data.protocol import TrainingData
from latentforge.errors import ConfigError, LatentforgeError
from latentforge.metrics.pixel import rms_distance
from latentforge.tasks.references import ResolvedRef, pinned, resolve_autoencoder


def resolve_source(cfg: RunConfig, device: torch.device | str, expect: dict[str, Any] | None = None) -> ResolvedRef:
    """The autoencoder run `model.source` names; `expect`: the record a loaded run was built on (same sha256)."""
    return resolve_autoencoder(cfg.model.source, device, "model.source", expect,
                               " that encodes images and decodes latents")


class OnAutoencoderLatents:
    """Mixin for a TrainTask whose training data are the latents of `model.source` (an ae or dae run)."""

    name: str
    cfg: RunConfig
    source: ResolvedRef
    latent_scale: float  # latents * latent_scale have unit standard deviation: what the model learns

    def _init_source(self, inputs: dict[str, Any]) -> None:
        self.source, self.latent_scale = inputs["source"], inputs["latent_scale"]
        self._images: dict[str, ImageDataset] = {}

    @classmethod
    def source_inputs(cls, cfg: RunConfig, device: torch.device, dataset: TrainingData | None = None,
                      state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The source run (its checkpoint checked against the one a loaded run was trained on) and the latent scale
        (from the cached latents, or a loaded run's checkpoint)."""
        if isinstance(dataset, LatentDataset):
            scale = 1.0 / max(dataset.std(), 1e-8)
        elif state is not None and "latent_scale" in state:
            scale = float(state["latent_scale"])
        else:
            raise ConfigError(f"a {cls.name} run is built from cached latents or from its checkpoint")
        return {"source": resolve_source(cfg, device, expect=(state or {}).get("source")), "latent_scale": scale}

    @classmethod
    def prepare(cls, cfg: RunConfig, progress: bool = True) -> tuple[RunConfig, TrainingData]:
        """Resolve the source run (pinning its step), take its data settings, and encode its training images once
        (or read them from the latent cache)."""
        resolved = resolve_source(cfg, "cpu")
        source_data = resolved.loaded.cfg.data
        if cfg.data.name != source_data.name and cfg.data != type(cfg.data)():
            raise ConfigError(f"a {cls.name} run trains on its source run's data ({source_data.name}); drop "
                              f"--data/data.*")
        cfg = cfg.model_copy(update={"data": source_data,
                                     "model": cfg.model.model_copy(update={"source": pinned(cfg.model.source,
                                                                                            resolved)})})
        images = load_dataset(source_data)
        if progress:
            print(f"latents: encoding {len(images):,} {images.name} images with {resolved.record['run']} "
                  f"(step {resolved.record['step']}), or reading them from the latent cache", flush=True)
        return cfg, cached_latents(images, resolved.task.encode, resolved.record)

    # --- images for what a person sees -----------------------------------------------------------------------------
    @property
    def image_shape(self) -> Any:
        return self.source.task.shape

    def image_data(self, dataset: TrainingData, split: str = "train") -> ImageDataset:
        """The images the latents were encoded from (`split` 'test': the held-out images)."""
        if split not in self._images:
            self._images[split] = load_dataset(self.cfg.data.model_copy(update={"split": split}))
        return self._images[split]

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from latents in the model's units (the source's latents times `latent_scale`)."""
        return self.source.task.decode(z.float() / self.latent_scale)

    def source_figures(self, n: int = 256) -> dict[str, Any]:
        """The source autoencoder's held-out reconstruction error (the floor under any model of its latents) and
        the latent scale."""
        try:
            held = self.image_data(None, "test")
            images = held.get(torch.arange(min(n, len(held))))
            codec = self.source.task
            floor = float(rms_distance(codec.decode(codec.encode(images)), images).mean())
        except LatentforgeError:
            floor = None
        return {"recon_rms_heldout": floor, "latent_scale": self.latent_scale}

    def source_description(self, latent_shape: list[int]) -> dict[str, Any]:
        return {"source": self.source.record,
                "source_parameters": self.source.loaded.info.get("task", {}).get("parameters"),
                "latent_shape": latent_shape, "latent_scale": self.latent_scale}

    # --- checkpoints -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()  # type: ignore[misc]
        return state | {"latent_scale": torch.tensor(self.latent_scale, dtype=torch.float64),
                        "source": self.source.record}

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        super().load_state_dict(state, weights_only)  # type: ignore[misc]
        if "latent_scale" in state:
            saved = float(state["latent_scale"])
            if not math.isclose(saved, self.latent_scale, rel_tol=1e-5):
                raise ConfigError(f"the cached latents' scale ({1 / self.latent_scale:.6g}) differs from the one "
                                  f"this run was trained with ({1 / saved:.6g}): the source encoder changed")
