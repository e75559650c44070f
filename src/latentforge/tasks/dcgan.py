"""DCGAN (Radford et al. 2016) on the shared Trainer, with the latent distribution as a choice ("Complexity
Matters", Hu et al. 2023): N(0, I), uniform, SimCLR features of the data, or a trained DeAE's latent.

One Trainer step is one discriminator update on the step's real batch; every `n_dis`-th step the generator is
updated too. Standard recipe: Adam 2e-4, betas (0.5, 0.999), batch norm in G (and D), the non-saturating loss;
hinge loss and spectral norm in D are options. All randomness of a step (latents) comes from (seed, step), so a
resumed run repeats the uninterrupted one.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentforge.config import RunConfig
from latentforge.data.dataset import ImageDataset
from latentforge.errors import ConfigError
from latentforge.latents import LatentSource, fit_latent, make_latent
from latentforge.models.batchnorm import BNMode, bn_mode
from latentforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from latentforge.models.diffaugment import diff_augment
from latentforge.train.ema import EMA
from latentforge.train.task import Batch, DataShape, TrainTask, apply_schedule, step_generator


def d_loss_fn(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # -log sigmoid(real) - log(1 - sigmoid(fake))


def g_loss_fn(kind: str, fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()  # non-saturating: -log sigmoid(D(G(z)))


class DCGANTask(TrainTask):
    name = "dcgan"
    non_structural_keys = frozenset({"g_optim", "d_optim", "n_dis", "sample_bn", "loss", "diffaug"})

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: ImageDataset | None = None,
                 for_training: bool = True, state: dict[str, Any] | None = None):
        super().__init__(cfg, device, shape)
        m, t = cfg.model, cfg.train
        if m.n_dis < 1:
            raise ConfigError("model.n_dis must be at least 1")
        self.latent = self._latent(dataset, (state or {}).get("latent", {}).get("source_step"))
        if state is not None and dataset is None:  # loading a run: the fitted latent fixes G's input size
            self.latent.load_state_dict(state.get("latent", {}))
        try:
            self.G = DCGANGenerator(self.latent.dim, shape.channels, shape.resolution, m.width, m.g_channels).to(device)
            self.D = DCGANDiscriminator(shape.channels, shape.resolution, m.d_channels, m.d_norm).to(device)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=m.g_optim.lr, betas=tuple(m.g_optim.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=m.d_optim.lr, betas=tuple(m.d_optim.betas))
        if m.g_ema:
            self.emas = {"G": EMA(self.G, t.ema_decay, t.ema_power, t.ema_start, t.ema_every)}

    def _latent(self, dataset: ImageDataset | None, deae_step: int | None = None) -> LatentSource:
        """Build the latent; fit it when training on data (in a forked RNG, so that the networks' initialisation
        does not depend on whether, say, the SimCLR encoder was already cached)."""
        lc, seed = self.cfg.model.latent, self.cfg.train.seed
        encoder, source = None, None
        if lc.kind == "deae":
            encoder, source = _deae_encoder(lc.deae_run, self.shape, self.device, deae_step, dataset)
        latent = make_latent(lc, seed, encoder, source)
        if dataset is not None and lc.kind in ("ssl", "deae", "dae"):
            with torch.random.fork_rng(devices=[]):
                if lc.kind == "dae":
                    latent.fit(*_autoencoder_features(lc.dae_run, self.shape, self.device, dataset))
                else:
                    fit_latent(latent, lc, dataset, device=self.device)
        return latent

    # --- TrainTask ----------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def _set_schedule(self, step: int) -> None:
        m, steps = self.cfg.model, self.cfg.train.steps
        for opt, oc in ((self.opt_g, m.g_optim), (self.opt_d, m.d_optim)):
            apply_schedule(opt, oc, step, steps)

    def _clip(self, net: nn.Module) -> None:
        if self.cfg.train.grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), self.cfg.train.grad_clip)

    def train_step(self, batch: Batch) -> dict[str, float]:
        m, g = self.cfg.model, step_generator(self.cfg.train.seed, batch.step)
        real = batch.images
        self.G.train()
        self.D.train()
        self._set_schedule(batch.step)

        def augment(x: torch.Tensor) -> torch.Tensor:  # the same random transforms for real and fake, from (seed, step)
            if not m.diffaug:
                return x
            return diff_augment(x, m.diffaug, lambda *shape: batch.draw(
                lambda n: torch.rand((n, *shape), generator=g)).to(self.device))

        with torch.no_grad():
            fake = self.G(batch.draw(lambda n: self.latent.sample(n, g)).to(self.device))
        d_real, d_fake = self.D(augment(real)).float(), self.D(augment(fake)).float()
        d_loss = d_loss_fn(m.loss, d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self._clip(self.D)
        self.opt_d.step()
        logs = {"loss": d_loss.item(), "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item(),
                "d_acc": 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean()).item()}

        if (batch.step + 1) % m.n_dis == 0:
            self.D.requires_grad_(False)
            z = batch.draw(lambda n: self.latent.sample(n, g)).to(self.device)
            g_loss = g_loss_fn(m.loss, self.D(augment(self.G(z))).float())
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self._clip(self.G)
            self.opt_g.step()
            self.D.requires_grad_(True)
            if "G" in self.emas:
                self.emas["G"].update(self.G, batch.step + 1)
            logs["g_loss"] = g_loss.item()
        return logs

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["generator_parameters"] = d["parameters"]["G"]
        d["discriminator_parameters"] = d["parameters"]["D"]
        d["width"] = self.cfg.model.width
        d["diffaug"] = self.cfg.model.diffaug or "off"
        d["latent"] = self.latent.describe()
        return d

    def networks_seen(self) -> list[dict[str, Any]]:
        """An SSL latent's encoder: the generator learned to map its feature space to images."""
        label = getattr(self.latent, "network", "")
        return [{"label": label, **getattr(self.latent, "network_info", {})}] if label else []

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"latent": self.latent.state_dict()}

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        super().load_state_dict(state, weights_only)
        self.latent.load_state_dict(state.get("latent", {}))

    # --- sampling -----------------------------------------------------------------------------------------------
    def _generator(self, use_ema: bool) -> DCGANGenerator:
        return self.emas["G"].model if (use_ema and "G" in self.emas) else self.G

    @torch.no_grad()
    def _decode(self, z: torch.Tensor, n: int, use_ema: bool, bn: BNMode | None, batch_size: int = 256
                ) -> torch.Tensor:
        """Decode the first n of z in chunks; with batch statistics every chunk is a full batch (z holds extra
        latents to fill it), so a small request sees the statistics of a full batch."""
        net, bn = self._generator(use_ema), bn or self.cfg.model.sample_bn
        out = []
        with bn_mode(net, bn):
            for start in range(0, n, batch_size):
                chunk = z[start:start + (batch_size if bn == "batch" else min(batch_size, n - start))]
                out.append(net(chunk.to(self.device))[: min(batch_size, n - start)].float().clamp(-1, 1).cpu())
        return torch.cat(out)

    def _latents(self, n: int, seed: int, bn: BNMode | None, batch_size: int = 256) -> torch.Tensor:
        padded = -(-n // batch_size) * batch_size if (bn or self.cfg.model.sample_bn) == "batch" else n
        return self.latent.sample(padded, torch.Generator().manual_seed(seed))

    def sample(self, n: int, seed: int = 0, *, use_ema: bool = True, bn: BNMode | None = None) -> torch.Tensor:
        return self._decode(self._latents(n, seed, bn), n, use_ema, bn)

    def interpolate(self, pairs: int = 4, steps: int = 8, seed: int = 0, *, use_ema: bool = True,
                    bn: BNMode | None = None) -> torch.Tensor:
        """Linear paths between pairs of latents drawn from the run's latent distribution, one pair per row."""
        n = pairs * steps
        padded = -(-n // 256) * 256 if (bn or self.cfg.model.sample_bn) == "batch" else n
        z = self.latent.sample(2 * pairs + padded - n, torch.Generator().manual_seed(seed + (1 << 20)))
        t = torch.linspace(0, 1, steps)
        za, zb = z[0:2 * pairs:2], z[1:2 * pairs:2]
        path = (za[:, None] + (zb - za)[:, None] * t[None, :, None]).reshape(n, -1)
        fill = z[2 * pairs:]  # fresh latents that fill the last batch, so every chunk has full-batch statistics
        return self._decode(torch.cat([path, fill]), n, use_ema, bn)


def _autoencoder_features(run_dir: str | None, shape: DataShape, device: torch.device, dataset: ImageDataset
                          ) -> tuple[torch.Tensor, str, dict[str, Any]]:
    """The training images' latents under a trained autoencoder run (dae or ae), flattened to (N, D), from the
    latent cache; with the name and record of the encoder they came from."""
    from latentforge.config import RunRef
    from latentforge.data.latent_cache import cached_latents
    from latentforge.tasks.references import resolve_autoencoder

    if not run_dir:
        raise ConfigError("a dae latent needs a trained autoencoder run: set model.latent.dae_run=RUNDIR")
    resolved = resolve_autoencoder(RunRef(run=run_dir), device, "model.latent.dae_run")
    theirs = resolved.task.shape
    if (theirs.channels, theirs.resolution) != (shape.channels, shape.resolution):
        raise ConfigError(f"the autoencoder run {run_dir} was trained on {theirs.channels}x{theirs.resolution}px "
                          f"images, this run uses {shape.channels}x{shape.resolution}")
    latents = cached_latents(dataset, resolved.task.encode, resolved.record)
    label = f"{resolved.record['model_type']}-encoder@{resolved.record['sha256'][:12]}"
    return latents.latents.flatten(1), label, resolved.record


def _deae_encoder(run_dir: str | None, shape: DataShape, device: torch.device, step: int | None,
                  dataset: ImageDataset | None):
    """The encoder half of a trained DeAE run (at `step`, the one a loaded GAN was trained with; else its latest
    checkpoint), as `(n, seed) -> latents`, checked to match this run's images."""
    from latentforge.tasks import load_run

    if not run_dir:
        raise ConfigError("a deae latent needs a trained DeAE run: set model.latent.deae_run=RUNDIR")
    loaded = load_run(run_dir, step=step if step is not None and step >= 0 else None, device=str(device))
    if loaded.cfg.model_type != "deae":
        raise ConfigError(f"model.latent.deae_run {run_dir} holds a {loaded.cfg.model_type} run, not a DeAE")
    if (loaded.task.shape.channels, loaded.task.shape.resolution) != (shape.channels, shape.resolution):
        raise ConfigError(f"the DeAE run {run_dir} was trained on {loaded.task.shape.channels}x"
                          f"{loaded.task.shape.resolution}px images, this run uses {shape.channels}x{shape.resolution}")
    fingerprint = loaded.info.get("dataset", {}).get("fingerprint")
    if dataset is not None and fingerprint != dataset.fingerprint:
        warnings.warn(f"the DeAE run {run_dir} was trained on other images ({loaded.info['dataset'].get('name')}, "
                      f"fingerprint {fingerprint}) than this run ({dataset.name}, {dataset.fingerprint})", stacklevel=2)
    source = {"run": str(Path(run_dir).resolve()), "step": loaded.step,
              "dataset": loaded.info.get("dataset", {}).get("fingerprint")}
    return (lambda n, seed: loaded.task.encode_fresh(n, seed)), source
