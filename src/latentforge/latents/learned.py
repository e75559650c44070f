"""Data-dependent latents: features that a network learned from the data, made into a distribution a generator
can be fed with new points of.

- `FeatureLatent` (kind `ssl`, or `dae`): features of the training images (SimCLR's, or an autoencoder's flattened
  latents), normalised, then drawn by a sampler (empirical + noise, or a fitted Gaussian mixture). The feature
  table and fitted sampler are stored with the run.
- `EncoderLatent` (kind `deae`): a trained DeAE's encoder applied to fresh dropout patterns. Its sampler is the
  DeAE itself (a new pattern is a new latent); only the normalisation is fitted, on a bank of fresh latents.
Both end with a fixed projection to the generator's input size when `dim` asks for one.
"""
from __future__ import annotations

from typing import Any, Callable, Literal

import torch

from latentforge.latents.base import LatentSource, Normalizer, fixed_projection
from latentforge.latents.samplers import EmpiricalSampler, GMMSampler


class _Projected(LatentSource):
    def __init__(self, normalize: Literal["none", "standardize", "whiten"], out_dim: int | None, seed: int):
        self.normalizer = Normalizer(normalize)
        self.out_dim, self.seed = out_dim, seed
        self.feature_dim: int | None = None
        self.projection: torch.Tensor | None = None

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.out_dim or self.feature_dim

    def _set_feature_dim(self, d: int) -> None:
        self.feature_dim = d
        self.projection = fixed_projection(d, self.out_dim, self.seed) if self.out_dim and self.out_dim != d else None

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.projection if self.projection is not None else z

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim, "feature_dim": self.feature_dim,
                "normalize": self.normalizer.mode, "projected": self.projection is not None}

    def _base_state(self) -> dict[str, Any]:
        return {"normalizer": self.normalizer.state_dict(), "feature_dim": torch.tensor(self.feature_dim)}

    def _load_base(self, state: dict[str, Any]) -> None:
        self.normalizer.load_state_dict(state["normalizer"])
        self._set_feature_dim(int(state["feature_dim"]))


class FeatureLatent(_Projected):
    kind = "ssl"

    def __init__(self, sampler: EmpiricalSampler | GMMSampler, normalize: Literal["none", "standardize", "whiten"],
                 out_dim: int | None, seed: int, network: str = "", kind: str = "ssl"):
        super().__init__(normalize, out_dim, seed)
        self.sampler, self.network, self.network_info, self.kind = sampler, network, {}, kind

    def fit(self, features: torch.Tensor, network: str = "", network_info: dict | None = None) -> None:
        """features: (N, D) of the training images, by the network named `network`."""
        self.network, self.network_info = network or self.network, network_info or {}
        self._set_feature_dim(features.shape[1])
        self.sampler.fit(self.normalizer.fit(features)(features), seed=self.seed)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self._project(self.sampler.sample(n, generator))

    def describe(self) -> dict[str, Any]:
        return super().describe() | self.sampler.describe() | {"network": self.network,
                                                              "network_info": self.network_info}

    def state_dict(self) -> dict[str, Any]:
        return self._base_state() | {"sampler": self.sampler.state_dict(), "network": self.network,
                                     "network_info": self.network_info}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.sampler.load_state_dict(state["sampler"])
        self.network, self.network_info = state.get("network", ""), state.get("network_info", {})


class EncoderLatent(_Projected):
    kind = "deae"

    def __init__(self, encode_fresh: Callable[[int, int], torch.Tensor], normalize: Literal["none", "standardize",
                 "whiten"], out_dim: int | None, seed: int, source: dict[str, Any] | None = None, bank: int = 4096):
        super().__init__(normalize, out_dim, seed)
        self.encode_fresh, self.source, self.bank = encode_fresh, source or {}, bank

    def fit(self) -> None:
        z = self.encode_fresh(self.bank, 10_007 + self.seed)
        self._set_feature_dim(z.shape[1])
        self.normalizer.fit(z)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return self._project(self.normalizer(self.encode_fresh(n, seed)))

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"sampler": "fresh DeAE patterns", "source": self.source}

    def state_dict(self) -> dict[str, Any]:
        """With the DeAE run's record (its checkpoint's sha256): a loaded GAN checks it samples through the same
        weights it was trained on."""
        return self._base_state() | {"source_step": int(self.source.get("step", -1)), "source": self.source}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        step = state.get("source_step")
        if step is not None and self.source.get("step") is not None and int(step) != int(self.source["step"]):
            from latentforge.errors import CheckpointError

            raise CheckpointError(f"this GAN was trained on the DeAE latent of {self.source.get('run')} at step "
                                  f"{int(step)}, but that run now loads step {self.source['step']}")
        self._load_base(state)
