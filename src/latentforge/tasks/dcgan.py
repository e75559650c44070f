"""DCGAN (Radford et al. 2016) on the shared Trainer, with the latent distribution as a choice ("Complexity
Matters", Hu et al. 2023): N(0, I), uniform, SimCLR features of the data, or a trained DeAE's latent.

One Trainer step is one discriminator update on the step's real batch; every `n_dis`-th step the generator is
updated too. Standard recipe: Adam 2e-4, betas (0.5, 0.999), batch norm in G (and D), the non-saturating loss;
hinge loss and spectral norm in D are options. All randomness of a step (latents) comes from (seed, step), so a
resumed run repeats the uninterrupted one.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentforge.config import LATENT_KINDS, RunConfig
from latentforge.data.dataset import ImageDataset
from latentforge.data.protocol import TrainingData, images_fingerprint
from latentforge.errors import ConfigError
from latentforge.latents import LatentSource, fit_latent, make_latent
from latentforge.models.batchnorm import BNMode, bn_mode
from latentforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from latentforge.models.diffaugment import diff_augment
from latentforge.tasks.references import ResolvedRef, pinned, resolve_reference
from latentforge.train.ema import EMA
from latentforge.train.optimizer_step import Update
from latentforge.train.task import Batch, DataShape, TrainTask, step_generator


def d_loss_fn(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # -log sigmoid(real) - log(1 - sigmoid(fake))


def g_loss_fn(kind: str, fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()  # non-saturating: -log sigmoid(D(G(z)))


class DCGANTask(TrainTask):
    name = "dcgan"
    lr_keys = ("model.g_optim.lr", "model.d_optim.lr")
    non_structural_keys = frozenset({"g_optim", "d_optim", "n_dis", "sample_bn", "loss", "diffaug"})

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        super().__init__(cfg, device, shape, inputs, for_training)
        m, t = cfg.model, cfg.train
        if m.n_dis < 1:
            raise ConfigError("model.n_dis must be at least 1")
        self.latent: LatentSource = inputs["latent"]
        try:
            self.G = DCGANGenerator(self.latent.dim, shape.channels, shape.resolution, m.width, m.g_channels).to(device)
            self.D = DCGANDiscriminator(shape.channels, shape.resolution, m.d_channels, m.d_norm).to(device)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        if m.g_ema:
            self.emas = {"G": EMA(self.G, t.ema_decay, t.ema_power, t.ema_start, t.ema_every)}
        self.updates = {  # the checkpoint's optimizer names
            "G": Update(torch.optim.Adam(self.G.parameters(), lr=m.g_optim.lr, betas=tuple(m.g_optim.betas)),
                        m.g_optim, emas=[(e, self.G) for e in self.emas.values()]),
            "D": Update(torch.optim.Adam(self.D.parameters(), lr=m.d_optim.lr, betas=tuple(m.d_optim.betas)),
                        m.d_optim)}

    @classmethod
    def prepare(cls, cfg: RunConfig, progress: bool = True) -> tuple[RunConfig, TrainingData]:
        """Pin `model.latent.source` (absolute folder, step, module) when the latent builds on another run."""
        cfg, data = super().prepare(cfg, progress)
        lc = cfg.model.latent
        if LATENT_KINDS[lc.kind].builds_on:
            source = pinned(lc.source, _latent_source(cfg, "cpu", DataShape.of(data)))
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={
                "latent": lc.model_copy(update={"source": source})})})
        return cfg, data

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The latent distribution: fitted to the training images (in a forked RNG, so that the networks'
        initialisation does not depend on whether, say, the SimCLR encoder was already cached), or restored from a
        loaded run's checkpoint. A DeAE latent samples through its DeAE run, so that run is loaded either way."""
        lc, seed, kind = cfg.model.latent, cfg.train.seed, LATENT_KINDS[cfg.model.latent.kind]
        saved = (state or {}).get("latent")
        encoder, record = None, None
        if kind.samples_through_run:
            resolved = _latent_source(cfg, device, shape, saved)
            fingerprint = images_fingerprint(resolved.loaded.info.get("dataset", {}))
            if dataset is not None and fingerprint != getattr(dataset, "fingerprint", fingerprint):
                warnings.warn(f"the {lc.kind} run {lc.source.run} was trained on other images than this run "
                              f"({dataset.name})", stacklevel=2)
            encoder, record = (lambda n, s: resolved.task.encode_fresh(n, s)), resolved.record
        latent = make_latent(lc, seed, encoder, record)
        if saved is not None:  # a loaded or resumed run: fitted when it began
            latent.load_state_dict(saved)
        elif dataset is not None and kind.fitted:
            with torch.random.fork_rng(devices=[]):
                if kind.builds_on and not kind.samples_through_run:  # an autoencoder's latents of the images
                    latent.fit(*_autoencoder_features(_latent_source(cfg, device, shape), dataset))
                else:
                    fit_latent(latent, lc, dataset, device=device)
        return {"latent": latent}

    # --- TrainTask ----------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def train_step(self, batch: Batch) -> dict[str, float]:
        m, g = self.cfg.model, step_generator(self.cfg.train.seed, batch.step)
        real = batch.images
        self.G.train()
        self.D.train()

        def augment(x: torch.Tensor) -> torch.Tensor:  # the same random transforms for real and fake, from (seed, step)
            if not m.diffaug:
                return x
            return diff_augment(x, m.diffaug, lambda *shape: batch.draw(
                lambda n: torch.rand((n, *shape), generator=g)).to(self.device))

        with torch.no_grad():
            fake = self.G(batch.draw(lambda n: self.latent.sample(n, g)).to(self.device))
        d_real, d_fake = self.D(augment(real)).float(), self.D(augment(fake)).float()
        d_loss = d_loss_fn(m.loss, d_real, d_fake)
        d_clip = self.optimize("D", d_loss, batch)
        logs = {"loss": d_loss.item(), "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item(),
                "d_acc": 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean()).item()}
        logs.update({f"d_{k}": v for k, v in d_clip.items()})

        if (batch.step + 1) % m.n_dis == 0:
            self.D.requires_grad_(False)
            z = batch.draw(lambda n: self.latent.sample(n, g)).to(self.device)
            g_loss = g_loss_fn(m.loss, self.D(augment(self.G(z))).float())
            g_clip = self.optimize("G", g_loss, batch)
            self.D.requires_grad_(True)
            logs["g_loss"] = g_loss.item()
            logs.update({f"g_{k}": v for k, v in g_clip.items()})
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


def _latent_source(cfg: RunConfig, device: torch.device | str, shape: DataShape,
                   saved: dict[str, Any] | None = None) -> ResolvedRef:
    """The run `model.latent.source` names, resolved (pinned step, checkpoint hash checked against the one a loaded
    GAN was trained with) and checked to be the right kind of run on images of this run's shape."""
    from latentforge.train.task import EncodesImages, EncodesPatterns

    lc = cfg.model.latent
    kind = LATENT_KINDS[lc.kind]
    if not lc.source.run:
        raise ConfigError(f"a {lc.kind} latent needs {kind.builds_on}: set model.latent.source.run=RUNDIR")
    ref = lc.source
    if ref.step is None and saved and int(saved.get("source_step", -1)) >= 0:  # GANs saved before steps were pinned
        ref = ref.model_copy(update={"step": int(saved["source_step"])})
    ability = (EncodesPatterns, kind.builds_on) if kind.samples_through_run else (EncodesImages, kind.builds_on)
    resolved = resolve_reference(ref, device, "model.latent.source", (saved or {}).get("source"), ability,
                                 module=kind.module)
    theirs = resolved.task.image_shape
    if (theirs.channels, theirs.resolution) != (shape.channels, shape.resolution):
        raise ConfigError(f"the {lc.kind} latent's run {ref.run} was trained on {theirs.channels}x"
                          f"{theirs.resolution}px images, this run uses {shape.channels}x{shape.resolution}")
    return resolved


def _autoencoder_features(resolved: ResolvedRef, dataset: ImageDataset) -> tuple[torch.Tensor, str, dict[str, Any]]:
    """The training images' latents under a trained autoencoder run, flattened to (N, D), from the latent cache;
    with the name and record of the encoder they came from."""
    from latentforge.data.latent_cache import cached_latents

    latents = cached_latents(dataset, resolved.task.encode, resolved.record)
    label = f"{resolved.record['model_type']}-encoder@{resolved.record['sha256'][:12]}"
    return latents.latents.flatten(1), label, resolved.record
