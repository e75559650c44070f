"""DeAE as the prior of a frozen autoencoder: the dropout-pattern generator learns an `ae` or `dae` run's latents
instead of images, and that run's decoder turns what it draws into images.

Where the two papers meet: Complexity Matters freezes the autoencoder and fits a prior on its latents; a DeAE is a
prior of another kind (fixed random patterns mapped to the examples, fresh patterns give new examples), and its
plateau counts epochs, which cost far less on 4x8x8 latents than on 32x32 images.

Training examples: the source run's cached latents times `latent_scale` (unit standard deviation, as the diffusion
prior's). The pattern code and its encoder are the pixel DeAE's (`pattern_resolution` fixes the masked levels);
the decoder draws a latent from 2x2 up to the latent's size. Loss: latent MSE (or L1), plus, when `model.loss`
names one, an image term on the latent decoded by the frozen source decoder. No shift or flip: those augment
images, and these examples are fixed latents. The clustered pattern code clusters the latents.

The plateau diagnostic is measured in latent space (what the loss sees: `pattern_discrimination_ratio`, which the
plateau rule reads) and in pixels after decoding (`pattern_discrimination_ratio_pixels`; its errors are the
`recon_rms_*` figures, in [0, 1] pixel units as for every model).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from latentforge.config import RunConfig
from latentforge.data.protocol import TrainingData
from latentforge.losses.reconstruction import build_reconstruction_loss
from latentforge.models.deae import DeAENet
from latentforge.tasks.deae import PLATEAU_RATIO, DeAETask
from latentforge.tasks.latent_source import OnAutoencoderLatents
from latentforge.train.task import Batch, DataShape


class LatentDeAETask(OnAutoencoderLatents, DeAETask):
    name = "latent-deae"
    reconstructs_from = "their own patterns, through the source autoencoder's decoder"
    clustered_examples = "autoencoder latents"
    # `source` may be re-pointed (a moved run folder): the recorded sha256 of its checkpoint is the real guard
    non_structural_keys = DeAETask.non_structural_keys | {"source", "latent_loss", "latent_loss_weight"}

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        self._init_source(inputs)
        super().__init__(cfg, device, shape, inputs, for_training)

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The pattern code's cluster ids (k-means of the latents) and the source run with its latent scale."""
        return super().build_inputs(cfg, device, shape, dataset, state) | cls.source_inputs(cfg, device, dataset,
                                                                                            state)

    @classmethod
    def cluster_features(cls, dataset: TrainingData) -> np.ndarray:
        return dataset.latents.numpy()

    def _build_net(self) -> DeAENet:
        """The pixel DeAE's pattern encoder (at `pattern_resolution`), decoding to the latent's shape."""
        m = self.cfg.model
        return DeAENet(self.shape.channels, m.pattern_resolution, tuple(m.enc_widths), m.latent_dim,
                       m.encoder_input, m.encoder_norm, out_channels=self.shape.channels,
                       out_resolution=self.shape.resolution, dec_widths=m.dec_widths)

    def _build_loss(self) -> nn.Module | None:
        """The image term through the frozen source decoder, when `model.loss` names one (None: latents only)."""
        m = self.cfg.model
        if m.loss.pixel == "none" and m.loss.perceptual == "none":
            return None
        codec = self.source.task
        self._decoder = codec.active_decoder(codec.reached_step).eval().requires_grad_(False)
        return build_reconstruction_loss(m.loss, codec.shape.channels).to(self.device)

    # --- what the network learns -------------------------------------------------------------------------------------
    def targets(self, examples: torch.Tensor) -> torch.Tensor:
        """The examples' latents at unit scale."""
        return examples.float() * self.latent_scale

    def objective(self, y: torch.Tensor, x: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = self.cfg.model
        diff = (y - x).flatten(1)
        latent = diff.pow(2).mean(1) if m.latent_loss == "mse" else diff.abs().mean(1)
        terms = {f"latent_{m.latent_loss}": latent}
        total = m.latent_loss_weight * latent
        if self.loss_fn is not None:
            images = self.image_data(None).get(batch.index, self.device)
            image_total, image_terms = self.loss_fn(self._decoder(y / self.latent_scale).float(), images)
            terms |= {f"image_{k}": v for k, v in image_terms.items()}
            total = total + image_total
        return total, terms

    def to_images(self, y: torch.Tensor) -> torch.Tensor:
        return self.decode_latents(y)

    def discrimination(self, dataset: TrainingData, n: int = 256) -> dict[str, Any]:
        """Pattern discrimination in latent space (the plateau rule's figure) and in pixels after decoding."""
        idx = torch.arange(min(n, len(dataset)))
        rec = self.reconstruct_outputs(idx.numpy())
        latents = self.targets(dataset.get(idx))
        _, _, ratio = self.discrimination_ratio(rec, latents, latents.roll(1, 0))
        images = self.image_data(dataset).get(idx)
        own, other, ratio_px = self.discrimination_ratio(self.to_images(rec), images, images.roll(1, 0))
        out = {"recon_rms_own_pattern": own, "recon_rms_vs_other_image": other, "pattern_discrimination_ratio": ratio,
               "pattern_discrimination_ratio_pixels": ratio_px, "discrimination_space": "latent",
               "on_plateau": ratio > PLATEAU_RATIO}
        return out | self.plateau_note(ratio, f" in latent space ({ratio_px:.2f} in pixels)")

    # --- what a person sees ------------------------------------------------------------------------------------------
    def summarize(self, dataset: TrainingData, n: int = 256) -> dict[str, Any]:
        return super().summarize(dataset, n) | self.source_figures(n)

    def describe(self) -> dict[str, Any]:
        m = self.cfg.model
        return super().describe() | self.source_description(
            [self.shape.channels, self.shape.resolution, self.shape.resolution]) | {
            "latent_loss": {"kind": m.latent_loss, "weight": m.latent_loss_weight}}
