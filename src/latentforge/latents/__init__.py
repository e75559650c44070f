"""What generators are fed: DeAE's dropout patterns (`patterns`), fixed distributions (`simple`), and latents
learned from the data (`learned`: SimCLR features, a DeAE encoder), with samplers that make new points.

`make_latent` builds the (unfitted) source a config asks for; `fit_latent` fits it on a training set.
"""
from __future__ import annotations

from typing import Callable

import torch

from latentforge.config import LatentConfig
from latentforge.errors import ConfigError
from latentforge.latents.base import LatentSource
from latentforge.latents.learned import EncoderLatent, FeatureLatent
from latentforge.latents.samplers import EmpiricalSampler, GMMSampler
from latentforge.latents.simple import GaussianLatent, UniformLatent

__all__ = ["LatentSource", "make_latent", "fit_latent", "GaussianLatent", "UniformLatent", "FeatureLatent",
           "EncoderLatent"]


def make_latent(cfg: LatentConfig, seed: int, deae_encoder: Callable[[int, int], torch.Tensor] | None = None,
                deae_source: dict | None = None) -> LatentSource:
    if cfg.kind in ("gaussian", "uniform"):
        if not cfg.dim:
            raise ConfigError(f"model.latent.dim must be set for a {cfg.kind} latent")
        return GaussianLatent(cfg.dim) if cfg.kind == "gaussian" else UniformLatent(cfg.dim)
    if cfg.kind in ("ssl", "dae"):
        sampler = (GMMSampler(cfg.gmm_components, cfg.gmm_covariance) if cfg.sampler == "gmm"
                   else EmpiricalSampler(cfg.sigma))
        return FeatureLatent(sampler, cfg.normalize, cfg.dim, seed, kind=cfg.kind)
    if deae_encoder is None:
        raise ConfigError("a deae latent needs a trained DeAE run: set model.latent.source.run=RUNDIR")
    return EncoderLatent(deae_encoder, cfg.normalize, cfg.dim, seed, source=deae_source)


def fit_latent(latent: LatentSource, cfg: LatentConfig, train, progress: bool = True,
               device: torch.device | str = "cpu") -> None:
    """Fit a data-dependent latent on the training split `train` (an ImageDataset). SSL features come from a
    SimCLR network trained on `train` and cached (never the evaluation network: docs/evaluation.md). An autoencoder's
    latents (kind dae) are fitted by the task that resolves the run: `FeatureLatent.fit(features, ...)`."""
    if isinstance(latent, FeatureLatent) and latent.kind == "ssl":
        from latentforge.models.simclr import load_or_train_simclr

        encoder = load_or_train_simclr(train, arch=cfg.ssl_arch, steps=cfg.ssl_steps, seed=cfg.ssl_seed,
                                       progress=progress, device=device)
        features = encoder.encode(train.get(torch.arange(len(train))))
        latent.fit(features, network=encoder.label, network_info=encoder.info)
    elif isinstance(latent, EncoderLatent):
        latent.fit()
