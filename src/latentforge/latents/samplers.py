"""Samplers that turn a table of training features into *new* latents (a GAN fed only the training features
themselves could at best replay its training set).

- `EmpiricalSampler`: a training feature plus Gaussian noise of scale sigma; sigma -> 0 replays training features,
  which the evaluator's memorisation figures must then reveal.
- `GMMSampler`: a Gaussian mixture fitted once with scikit-learn, sampled in torch from its stored parameters so
  that sampling follows the run's (seed, step) generators and the fitted mixture lives in the run's checkpoint.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch


class EmpiricalSampler:
    def __init__(self, sigma: float):
        self.sigma = sigma
        self.table: torch.Tensor | None = None

    def fit(self, x: torch.Tensor, seed: int = 0) -> None:
        self.table = x.float().contiguous()

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(self.table), (n,), generator=g)
        return self.table[idx] + self.sigma * torch.randn(n, self.table.shape[1], generator=g)

    def describe(self) -> dict[str, Any]:
        return {"sampler": "empirical", "sigma": self.sigma, "table_size": len(self.table)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"table": self.table}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.table = state["table"].float()


class GMMSampler:
    def __init__(self, components: int, covariance: Literal["full", "diag"] = "full", reg_covar: float = 1e-4):
        self.components, self.covariance, self.reg_covar = components, covariance, reg_covar
        self.weights = self.means = self.scale = None  # scale: Cholesky factors (K, D, D) or std devs (K, D)
        self.fit_info: dict[str, Any] = {}

    def fit(self, x: torch.Tensor, seed: int = 0) -> None:
        from sklearn.mixture import GaussianMixture

        k = max(1, min(self.components, len(x) // 2))
        gmm = GaussianMixture(k, covariance_type=self.covariance, reg_covar=self.reg_covar, random_state=seed,
                              max_iter=200, n_init=1)
        data = x.double().numpy()
        gmm.fit(data)
        self.weights = torch.from_numpy(gmm.weights_).float()
        self.means = torch.from_numpy(gmm.means_).float()
        cov = gmm.covariances_
        self.scale = (torch.linalg.cholesky(torch.from_numpy(cov)).float() if self.covariance == "full"
                      else torch.from_numpy(np.sqrt(cov)).float())
        self.fit_info = {"converged": bool(gmm.converged_), "iterations": int(gmm.n_iter_),
                         "mean_log_likelihood": float(gmm.score(data)), "fitted_on": len(x)}

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        eps = torch.randn(n, self.means.shape[1], generator=g)
        if self.scale.dim() == 3:
            return self.means[k] + (self.scale[k] @ eps[:, :, None])[:, :, 0]
        return self.means[k] + self.scale[k] * eps

    def describe(self) -> dict[str, Any]:
        return {"sampler": "gmm", "components": len(self.weights), "covariance": self.covariance,
                "reg_covar": self.reg_covar, **self.fit_info}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights, "means": self.means, "scale": self.scale}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.weights, self.means, self.scale = state["weights"], state["means"], state["scale"]
