"""A diffusion prior on the frozen latents of a trained autoencoder run: the generative half of a latent model
("Complexity Matters", Hu et al. 2023: the DAE is judged by how easy its latent is for a prior).

Data: the source run's encoder applied once to its training images (posterior means), cached by checkpoint hash and
image fingerprint (`data.latent_cache`); the prior never sees images. Latents are divided by their standard
deviation (recomputed for every encoder) so the noise schedule meets unit-scale data. Training is the DDPM
objective (predict the noise, or v) at a uniformly drawn timestep; sampling runs DDIM (or DDPM) from N(0, I) and
decodes with the source run's decoder. All randomness of a step comes from (seed, step): resume is exact.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentforge.config import RunConfig
from latentforge.data.protocol import TrainingData
from latentforge.errors import ConfigError
from latentforge.models.prior import build_latent_unet, build_schedulers
from latentforge.tasks.latent_source import OnAutoencoderLatents
from latentforge.train.ema import EMA
from latentforge.train.optimizer_step import Update
from latentforge.train.task import Batch, DataShape, TrainTask, step_generator


class PriorTask(OnAutoencoderLatents, TrainTask):
    name = "prior"
    # `source` may be re-pointed (a moved run folder): the recorded sha256 of its checkpoint is the real guard
    non_structural_keys = frozenset({"optim", "sampler", "sample_steps", "eta", "source"})

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        self._init_source(inputs)
        super().__init__(cfg, device, shape, inputs, for_training)
        m, t = cfg.model, cfg.train
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

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The source run and the latent scale (`OnAutoencoderLatents.source_inputs`)."""
        return cls.source_inputs(cfg, device, dataset, state)

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
        """Latents in the prior's units (the encoder's times `latent_scale`) from starting noise, by the configured
        sampler and number of steps."""
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
            out.append(x.cpu())
        return torch.cat(out)

    def _noise(self, n: int, seed: int) -> torch.Tensor:
        return torch.randn((n, self.shape.channels, self.shape.resolution, self.shape.resolution),
                           generator=torch.Generator().manual_seed(seed))

    def sample_latents(self, n: int, seed: int = 0, use_ema: bool = True) -> torch.Tensor:
        """n sampled latents in the encoder's units (what its decoder takes)."""
        return self.denoise(self._noise(n, seed), seed, use_ema) / self.latent_scale

    def sample(self, n: int, seed: int = 0, *, use_ema: bool = True, bn: str | None = None) -> torch.Tensor:
        return self.decode_latents(self.denoise(self._noise(n, seed), seed, use_ema))

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
        return self.decode_latents(self.denoise(noise, seed, use_ema))

    # --- what a person sees -------------------------------------------------------------------------------------
    def summarize(self, dataset: TrainingData, n: int = 256) -> dict[str, Any]:
        """Image-space figures of the prior's samples, plus the source autoencoder's held-out reconstruction error
        (the floor under any prior on its latents)."""
        return super().summarize(dataset, n) | self.source_figures(n)

    def describe(self) -> dict[str, Any]:
        m = self.cfg.model
        return super().describe() | self.source_description(
            [self.shape.channels, self.shape.resolution, self.shape.resolution]) | {
            "diffusion": {"train_timesteps": m.train_timesteps, "beta_schedule": m.beta_schedule,
                          "prediction": m.prediction, "sampler": m.sampler, "sample_steps": m.sample_steps,
                          "eta": m.eta, "network": "diffusers UNet2DModel"}}
