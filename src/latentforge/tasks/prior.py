"""A diffusion prior on the frozen latents of a trained autoencoder run: the generative half of a latent model
("Complexity Matters", Hu et al. 2023: the DAE is judged by how easy its latent is for a prior).

Data: the source run's encoder applied once to its training images (posterior means), cached by checkpoint hash and
image fingerprint (`data.latent_cache`); the prior never sees images. Latents are divided by their standard
deviation (recomputed for every encoder) so the noise schedule meets unit-scale data. Training is the DDPM
objective (predict the noise, or v) at a uniformly drawn timestep; sampling runs DDIM (or DDPM) from N(0, I) and
decodes with the source run's decoder. All randomness of a step comes from (seed, step): resume is exact.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentforge.config import RunConfig
from latentforge.data.dataset import ImageDataset, load_dataset
from latentforge.data.latent_cache import LatentDataset, cached_latents
from latentforge.data.protocol import TrainingData
from latentforge.errors import ConfigError, LatentforgeError
from latentforge.metrics.pixel import rms_distance
from latentforge.models.prior import build_latent_unet, build_schedulers
from latentforge.tasks.references import ResolvedRef, pinned, resolve_autoencoder
from latentforge.train.ema import EMA
from latentforge.train.optimizer_step import Update
from latentforge.train.task import Batch, DataShape, TrainTask, step_generator


def _source(cfg: RunConfig, device: torch.device | str, expect: dict[str, Any] | None = None) -> ResolvedRef:
    return resolve_autoencoder(cfg.model.source, device, "model.source", expect,
                               " that encodes images and decodes latents")


class PriorTask(TrainTask):
    name = "prior"
    # `source` may be re-pointed (a moved run folder): the recorded sha256 of its checkpoint is the real guard
    non_structural_keys = frozenset({"optim", "sampler", "sample_steps", "eta", "source"})

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        super().__init__(cfg, device, shape, inputs, for_training)
        m, t = cfg.model, cfg.train
        self.source: ResolvedRef = inputs["source"]
        self.latent_scale: float = inputs["latent_scale"]
        try:
            self.unet = build_latent_unet(shape.channels, shape.resolution, m.widths, m.layers_per_block,
                                          m.attention).to(device)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        self.train_scheduler, self.sample_scheduler = build_schedulers(m.train_timesteps, m.beta_schedule,
                                                                       m.prediction, m.sampler)
        self.emas = {"unet": EMA(self.unet, t.ema_decay, t.ema_power, t.ema_start, t.ema_every)}
        opt = torch.optim.AdamW(self.unet.parameters(), lr=m.optim.lr, betas=tuple(m.optim.betas), weight_decay=0.0)
        self.updates = {"unet": Update(opt, m.optim, emas=[(self.emas["unet"], self.unet)])}
        self._images: dict[str, ImageDataset] = {}

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The source run (its checkpoint checked against the one a loaded prior was trained on) and the scale that
        brings its latents to unit standard deviation (from the cached latents, or a loaded prior's checkpoint)."""
        if isinstance(dataset, LatentDataset):
            scale = 1.0 / max(dataset.std(), 1e-8)
        elif state is not None and "latent_scale" in state:
            scale = float(state["latent_scale"])
        else:
            raise ConfigError("a prior is built from cached latents or from its checkpoint")
        return {"source": _source(cfg, device, expect=(state or {}).get("source")), "latent_scale": scale}

    @classmethod
    def prepare(cls, cfg: RunConfig, progress: bool = True) -> tuple[RunConfig, TrainingData]:
        """Resolve the source run (pinning its step), take its data settings, and encode its training images once
        (or read them from the latent cache)."""
        resolved = _source(cfg, "cpu")
        source_data = resolved.loaded.cfg.data
        if cfg.data.name != source_data.name and cfg.data != type(cfg.data)():
            raise ConfigError(f"a prior trains on its source run's data ({source_data.name}); drop --data/data.*")
        cfg = cfg.model_copy(update={"data": source_data,
                                     "model": cfg.model.model_copy(update={"source": pinned(cfg.model.source,
                                                                                            resolved)})})
        images = load_dataset(source_data)
        if progress:
            print(f"latents: encoding {len(images):,} {images.name} images with {resolved.record['run']} "
                  f"(step {resolved.record['step']}), or reading them from the latent cache", flush=True)
        return cfg, cached_latents(images, resolved.task.encode, resolved.record)

    # --- TrainTask ----------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"unet": self.unet}

    def train_step(self, batch: Batch) -> dict[str, float]:
        m, g = self.cfg.model, step_generator(self.cfg.train.seed, batch.step)
        x0 = batch.images.float() * self.latent_scale
        noise = batch.draw(lambda n: torch.randn((n, *x0.shape[1:]), generator=g)).to(self.device)
        t = batch.draw(lambda n: torch.randint(0, m.train_timesteps, (n,), generator=g)).to(self.device)
        x_t = self.train_scheduler.add_noise(x0, noise, t)
        target = noise if m.prediction == "epsilon" else self.train_scheduler.get_velocity(x0, noise, t)
        self.unet.train()
        loss = F.mse_loss(self.unet(x_t, t).sample.float(), target)
        return {"loss": float(loss.detach()), **self.optimize("unet", loss, batch)}

    # --- sampling -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def denoise(self, noise: torch.Tensor, seed: int = 0, use_ema: bool = True, batch_size: int = 256
                ) -> torch.Tensor:
        """Latents (in the encoder's units) from starting noise, by the configured sampler and number of steps."""
        m = self.cfg.model
        net = self.emas["unet"].model if use_ema else self.unet
        net.eval()
        sched = self.sample_scheduler
        sched.set_timesteps(min(m.sample_steps, m.train_timesteps))
        g = torch.Generator().manual_seed(seed + 7919)  # the stochastic part of DDPM / DDIM(eta > 0) steps
        out = []
        for start in range(0, len(noise), batch_size):
            x = noise[start:start + batch_size].to(self.device)
            for t in sched.timesteps:
                eps = net(x, t).sample.float()
                kw = {"eta": m.eta} if m.sampler == "ddim" else {}
                x = sched.step(eps, t, x, generator=g, **kw).prev_sample
            out.append((x / self.latent_scale).cpu())
        return torch.cat(out)

    def _noise(self, n: int, seed: int) -> torch.Tensor:
        return torch.randn((n, self.shape.channels, self.shape.resolution, self.shape.resolution),
                           generator=torch.Generator().manual_seed(seed))

    def sample_latents(self, n: int, seed: int = 0, use_ema: bool = True) -> torch.Tensor:
        return self.denoise(self._noise(n, seed), seed, use_ema)

    def sample(self, n: int, seed: int = 0, *, use_ema: bool = True, bn: str | None = None) -> torch.Tensor:
        return self.source.task.decode(self.sample_latents(n, seed, use_ema))

    def interpolate(self, pairs: int = 4, steps: int = 8, seed: int = 0, *, use_ema: bool = True) -> torch.Tensor:
        """Spherical paths between pairs of starting noises (which keeps each point at the noise's norm), denoised
        deterministically (DDIM, eta 0 recommended) and decoded: one row per pair."""
        z = self._noise(2 * pairs, seed + (1 << 20)).flatten(1)
        a, b = z[0::2], z[1::2]
        omega = torch.acos((F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).clamp(-1, 1))[:, None]
        ts = torch.linspace(0, 1, steps)[None, :, None]
        so = torch.sin(omega)[:, None]
        path = (torch.sin((1 - ts) * omega[:, None]) * a[:, None] + torch.sin(ts * omega[:, None]) * b[:, None]) / so
        noise = path.reshape(pairs * steps, self.shape.channels, self.shape.resolution, self.shape.resolution)
        return self.source.task.decode(self.denoise(noise, seed, use_ema))

    # --- what a person sees -------------------------------------------------------------------------------------
    def _image_data(self, split: str = "train") -> ImageDataset:
        if split not in self._images:
            self._images[split] = load_dataset(self.cfg.data.model_copy(update={"split": split}))
        return self._images[split]

    def diagnose(self, dataset: TrainingData, samples: torch.Tensor) -> dict[str, Any]:
        """Sample diversity against the images' (the training data here are latents)."""
        return super().diagnose(self._image_data(), samples)

    def summarize(self, dataset: TrainingData, n: int = 256) -> dict[str, Any]:
        """Image-space figures of the prior's samples, plus the source autoencoder's held-out reconstruction error
        (the floor under any prior on its latents)."""
        record = super().summarize(self._image_data(), n)
        try:
            held = self._image_data("test")
            images = held.get(torch.arange(min(n, len(held))))
            codec = self.source.task
            record["recon_rms_heldout"] = float(rms_distance(codec.decode(codec.encode(images)), images).mean())
        except LatentforgeError:
            record["recon_rms_heldout"] = None
        return record | {"latent_scale": self.latent_scale}

    def describe(self) -> dict[str, Any]:
        m = self.cfg.model
        src = self.source.loaded.info.get("task", {})
        return super().describe() | {
            "source": self.source.record, "source_parameters": src.get("parameters"),
            "latent_shape": [self.shape.channels, self.shape.resolution, self.shape.resolution],
            "latent_scale": self.latent_scale,
            "diffusion": {"train_timesteps": m.train_timesteps, "beta_schedule": m.beta_schedule,
                          "prediction": m.prediction, "sampler": m.sampler, "sample_steps": m.sample_steps,
                          "eta": m.eta, "network": "diffusers UNet2DModel"}}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"latent_scale": torch.tensor(self.latent_scale, dtype=torch.float64),
                                       "source": self.source.record}

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        super().load_state_dict(state, weights_only)
        if "latent_scale" in state:
            saved = float(state["latent_scale"])
            if not math.isclose(saved, self.latent_scale, rel_tol=1e-5):
                raise ConfigError(f"the cached latents' scale ({1 / self.latent_scale:.6g}) differs from the one "
                                  f"this prior was trained with ({1 / saved:.6g}): the source encoder changed")
