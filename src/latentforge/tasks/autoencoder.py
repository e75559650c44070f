"""Autoencoders behind a latent generative model ("Complexity Matters", Hu et al. 2023): `ae` trains encoder and
decoder jointly (the baseline), `dae` is the Decoupled Autoencoder.

DAE, per step s of S:
  stage 1 (s < stage2_start * S): encoder + a *weaker* auxiliary decoder (Dropout2d after every residual block,
          optionally narrower), reconstruction + KL. A weak decoder cannot undo a convoluted latent, so the encoder
          is pushed towards a latent that is simple to decode, and so simple for a prior to model.
  stage 2 (the rest): the encoder is frozen (no gradient, no optimizer, weights and latents bit-identical) and a
          freshly initialised full decoder (no dropout, full width, never trained in stage 1) learns to decode the
          frozen latents.
The joint baseline has no auxiliary decoder and trains one encoder + decoder for all S steps.

Until a prior is trained on its latents (a later run), sampling decodes N(0, I) latents: the KL term's prior. That
is a crude generator and the samples grids say what they are.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from latentforge.config import RunConfig
from latentforge.data.dataset import ImageDataset
from latentforge.data.protocol import TrainingData
from latentforge.errors import ConfigError, LatentforgeError
from latentforge.losses.reconstruction import build_reconstruction_loss
from latentforge.metrics.pixel import rms_distance
from latentforge.models.autoencoder import AEDecoder, AEEncoder, kl_to_standard_normal
from latentforge.train.optimizer_step import Update
from latentforge.train.task import Batch, DataShape, TrainTask, step_generator


class AETask(TrainTask):
    """Joint training: one encoder and one decoder, all steps."""

    name = "ae"
    reconstructs_from = "their latent means"
    non_structural_keys = frozenset({"loss", "optim", "kl_weight"})

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        super().__init__(cfg, device, shape, inputs, for_training)
        m = cfg.model
        try:
            self.encoder = AEEncoder(shape.channels, shape.resolution, m.latent_channels, m.latent_resolution,
                                     m.base_channels).to(device)
            self.decoder = self._decoder().to(device)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        self.loss_fn = build_reconstruction_loss(m.loss, shape.channels).to(device) if for_training else None
        self._data: dict[str, ImageDataset] = {"train": inputs["images"]} if "images" in inputs else {}
        self.reached_step = 0  # steps trained so far: which decoder a DAE samples with
        self._build_optimizers()

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The training images, kept for the reconstruction diagnostics (no copy)."""
        return {"images": dataset} if dataset is not None else {}

    def _decoder(self, width: float = 1.0, dropout: float = 0.0) -> AEDecoder:
        m, s = self.cfg.model, self.shape
        return AEDecoder(s.channels, s.resolution, m.latent_channels, m.latent_resolution, m.base_channels,
                         width=width, dropout=dropout)

    def _adam(self, *modules: nn.Module) -> Update:
        o = self.cfg.model.optim
        return Update(torch.optim.AdamW([p for mod in modules for p in mod.parameters()], lr=o.lr,
                                        betas=tuple(o.betas), weight_decay=0.0), o)

    def _build_optimizers(self) -> None:
        self.updates = {"joint": self._adam(self.encoder, self.decoder)}

    # --- TrainTask ----------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def stage(self, step: int) -> str:
        return "joint"

    def active_decoder(self, step: int) -> nn.Module:
        return self.decoder

    def _reconstruction_step(self, batch: Batch, decoder: nn.Module, update: str, train_encoder: bool
                             ) -> dict[str, float]:
        m, g = self.cfg.model, step_generator(self.cfg.train.seed, batch.step)
        x = batch.images
        self.encoder.train(train_encoder)
        decoder.train()
        with torch.set_grad_enabled(train_encoder):
            mean, logvar = self.encoder(x)
        eps = batch.draw(lambda n: torch.randn((n, *mean.shape[1:]), generator=g)).to(mean.device, mean.dtype)
        z = mean + (0.5 * logvar).exp() * eps
        y = decoder(z)
        rec, terms = self.loss_fn(y.float(), x)
        kl = kl_to_standard_normal(mean.float(), logvar.float())
        loss = rec.mean() + (m.kl_weight * kl.mean() if train_encoder else 0.0)
        return {"loss": float(loss.detach()), "kl": float(kl.mean().detach()),
                **{k: float(v.mean().detach()) for k, v in terms.items()}, **self.optimize(update, loss, batch)}

    def train_step(self, batch: Batch) -> dict[str, float]:
        self.reached_step = batch.step + 1
        return self._reconstruction_step(batch, self.decoder, "joint", train_encoder=True)

    # --- what the model can do ----------------------------------------------------------------------------------
    def _dataset(self, split: str) -> ImageDataset:
        if split not in self._data:
            from latentforge.data.dataset import load_dataset
            self._data[split] = load_dataset(self.cfg.data.model_copy(update={"split": split}))
        return self._data[split]

    def _images(self, split: str, index: np.ndarray) -> torch.Tensor:
        return self._dataset(split).get(torch.as_tensor(index))

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Posterior means (the latents a prior is trained on), on the CPU."""
        self.encoder.eval()
        return torch.cat([self.encoder(images[i:i + batch_size].to(self.device))[0].float().cpu()
                          for i in range(0, len(images), batch_size)])

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """With the decoder of the stage the run has reached (a DAE's auxiliary one while still in stage 1)."""
        dec = self.active_decoder(self.reached_step)
        dec.eval()
        return torch.cat([dec(z[i:i + batch_size].to(self.device)).float().clamp(-1, 1).cpu()
                          for i in range(0, len(z), batch_size)])

    def reconstruct(self, index: list[int] | np.ndarray, seed: int = 0, split: str = "train") -> torch.Tensor:
        """Images of the `split` decoded from their latent means."""
        return self.decode(self.encode(self._images(split, np.asarray(index, dtype=np.int64))))

    def sample(self, n: int, seed: int = 0, *, use_ema: bool = True, bn: str | None = None) -> torch.Tensor:
        """Decode N(0, I) latents: the KL term's prior, not a fitted one (train a prior on the latents for that)."""
        m = self.cfg.model
        z = torch.randn((n, m.latent_channels, m.latent_resolution, m.latent_resolution),
                        generator=torch.Generator().manual_seed(seed))
        return self.decode(z)

    def reconstruction_error(self, split: str, n: int = 256) -> float | None:
        """Mean pixel RMS (in [0, 1] units) of reconstructions of the first n images of a split."""
        try:
            images = self._images(split, np.arange(min(n, len(self._dataset(split)))))
        except LatentforgeError:  # e.g. a folder too small for a held-out split: report nothing
            return None
        return float(rms_distance(self.decode(self.encode(images)), images).mean())

    def diagnose(self, dataset: ImageDataset, samples: torch.Tensor) -> dict[str, Any]:
        return super().diagnose(dataset, samples) | {"recon_rms_train": self.reconstruction_error("train", 128),
                                                     "stage": self.stage(max(self.reached_step - 1, 0))}

    def summarize(self, dataset: ImageDataset, n: int = 256) -> dict[str, Any]:
        """Adds the reconstruction error on held-out images, the figure an autoencoder is judged by."""
        return {"recon_rms_heldout": self.reconstruction_error("test", n),
                "recon_rms_train": self.reconstruction_error("train", n)} | super().summarize(dataset, n)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"reached_step": torch.tensor(self.reached_step)}

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        super().load_state_dict(state, weights_only)
        if "reached_step" in state:
            self.reached_step = int(state["reached_step"])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        m = self.cfg.model
        d["latent_shape"] = [m.latent_channels, m.latent_resolution, m.latent_resolution]
        d["loss"] = self.loss_fn.describe() if self.loss_fn is not None else None
        return d


class DAETask(AETask):
    """Decoupled Autoencoder: stage 1 with the weak auxiliary decoder, stage 2 with the encoder frozen and a fresh
    full decoder (module `decoder`, untouched in stage 1, so it starts from its initial weights).

    With `model.encoder_from` set, the run is stage 2 only: it starts from another autoencoder run's encoder (a DAE's
    stage 1, or a jointly trained encoder: the ablation "fresh decoder on a frozen joint encoder")."""

    name = "dae"
    non_structural_keys = frozenset({"loss", "optim", "kl_weight"})

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        self.aux_decoder: nn.Module | None = None
        super().__init__(cfg, device, shape, inputs, for_training)
        self.encoder_source: dict[str, Any] | None = inputs.get("encoder_record")
        if "encoder_from" in inputs:  # a new run: stage 2 starts from the other run's encoder
            self._take_encoder(inputs["encoder_from"])

    @property
    def borrowed_encoder(self) -> bool:
        return bool(self.cfg.model.encoder_from.run)

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """With `model.encoder_from`: the other run, resolved, for a new run; a loaded run has the encoder's weights
        in its checkpoint and only keeps the record of where they came from."""
        inputs = super().build_inputs(cfg, device, shape, dataset, state)
        if state is not None:
            return inputs | ({"encoder_record": state["encoder_source"]} if "encoder_source" in state else {})
        if cfg.model.encoder_from.run:
            inputs["encoder_from"] = _encoder_source(cfg.model.encoder_from)
        return inputs

    @classmethod
    def prepare(cls, cfg: RunConfig, progress: bool = True):
        """Pin `model.encoder_from` (absolute folder, step) before the run's config is written."""
        cfg, data = super().prepare(cfg, progress)
        ref = cfg.model.encoder_from
        if ref.run:
            from latentforge.tasks.references import pinned

            resolved = _encoder_source(ref)
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"encoder_from": pinned(ref, resolved)})})
        return cfg, data

    def _take_encoder(self, resolved: Any) -> None:
        try:
            self.encoder.load_state_dict(resolved.task.encoder.state_dict())
        except RuntimeError as e:
            raise ConfigError(f"model.encoder_from: the encoder of {resolved.record['run']} does not fit this model "
                              f"(use its model.latent_* and base_channels): {str(e).splitlines()[0]}") from None
        self.encoder_source = resolved.record

    def _build_optimizers(self) -> None:
        m = self.cfg.model
        if self.borrowed_encoder:
            self.updates = {"stage2": self._adam(self.decoder)}
            return
        try:
            self.aux_decoder = self._decoder(width=m.aux_width, dropout=m.aux_dropout).to(self.device)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        self.updates = {"stage1": self._adam(self.encoder, self.aux_decoder), "stage2": self._adam(self.decoder)}

    @property
    def stage2_step(self) -> int:
        return 0 if self.borrowed_encoder else int(round(self.cfg.model.stage2_start * self.cfg.train.steps))

    def modules(self) -> dict[str, nn.Module]:
        if self.aux_decoder is None:
            return {"encoder": self.encoder, "decoder": self.decoder}
        return {"encoder": self.encoder, "aux_decoder": self.aux_decoder, "decoder": self.decoder}

    def stage(self, step: int) -> str:
        return "stage1" if step < self.stage2_step else "stage2"

    def active_decoder(self, step: int) -> nn.Module:
        return self.aux_decoder if self.stage(step) == "stage1" else self.decoder

    def train_step(self, batch: Batch) -> dict[str, float]:
        self.reached_step = batch.step + 1
        if self.stage(batch.step) == "stage1":
            logs = self._reconstruction_step(batch, self.aux_decoder, "stage1", train_encoder=True)
        else:
            self.encoder.requires_grad_(False)  # frozen: no gradient, and no optimizer holds its weights
            logs = self._reconstruction_step(batch, self.decoder, "stage2", train_encoder=False)
        return logs | {"stage": 1.0 if self.stage(batch.step) == "stage1" else 2.0}

    def describe(self) -> dict[str, Any]:
        m = self.cfg.model
        aux = None if self.borrowed_encoder else {"dropout": m.aux_dropout, "width": m.aux_width}
        return super().describe() | {"stage2_step": self.stage2_step, "aux_decoder": aux,
                                     "encoder_from": self.encoder_source}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | ({"encoder_source": self.encoder_source} if self.encoder_source else {})


def _encoder_source(ref):
    from latentforge.tasks.references import resolve_autoencoder

    return resolve_autoencoder(ref, "cpu", "model.encoder_from", purpose=" whose encoder stage 2 starts from")
