"""The DeAE-specific part of training and sampling (Maeda 2023), plugged into the shared Trainer.

Per step: look up each example's fixed pattern from its index, flip images (and reverse the last mask) on odd epochs,
shift them horizontally by a random amount that the decoder is told about, feed fresh Gaussian noise through the
masked encoder, decode, and minimise the reconstruction loss. Nothing else: no discriminator, no prior.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentforge.config import OptimConfig, RunConfig
from latentforge.data.protocol import TrainingData
from latentforge.errors import ConfigError
from latentforge.latents.patterns import DropoutPatterns, PatternSpec, kmeans_clusters, kmeans_subclusters
from latentforge.losses.reconstruction import build_reconstruction_loss
from latentforge.metrics.pixel import rms_distance
from latentforge.models.batchnorm import BNMode, bn_mode
from latentforge.models.deae import SHIFT_CENTRE, DeAENet
from latentforge.train.ema import EMA
from latentforge.train.optimizer_step import Update
from latentforge.train.task import Batch, DataShape, TrainTask, step_generator


def random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator, batch: Batch | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each image horizontally by r in [-R, R] px with reflection; return images and the decoder's code
    100 * (r + R) / 2R in [0, 100] (50 = centre), as in the reference. With `batch`, r is drawn for its global
    batch (see `Batch.draw`)."""
    b = x.shape[0]
    if max_shift <= 0:
        return x, torch.full((b,), SHIFT_CENTRE, device=x.device)

    def draw(n: int) -> torch.Tensor:
        return torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
    r = batch.draw(draw) if batch is not None else draw(b)
    w = x.shape[-1]
    padded = F.pad(x, (max_shift, max_shift, 0, 0), mode="reflect")
    cols = (torch.arange(w)[None, :] - r[:, None] + max_shift).to(x.device)  # out[j] = x[j - r]
    idx = cols[:, None, None, :].expand(b, x.shape[1], x.shape[2], w)
    code = 100.0 * (r.float() + max_shift) / (2 * max_shift)
    return padded.gather(3, idx), code.to(x.device)


PLATEAU_RATIO = 0.9  # own-pattern error above 90 % of the other-image error: the patterns are not told apart


class DeAETask(TrainTask):
    name = "deae"
    reconstructs_from = "their own patterns"
    clustered_examples = "images"  # what `cluster_features` groups, in words
    non_structural_keys = frozenset({"sample_bn", "shift_lr_scale", "shift_range", "flip", "loss", "optim",
                                     "mask_sampling"})
    # encoder_lr_scale is structural: it decides whether the optimizer has an encoder group

    def __init__(self, cfg: RunConfig, device: torch.device, shape: DataShape, inputs: dict[str, Any],
                 for_training: bool = True):
        super().__init__(cfg, device, shape, inputs, for_training)
        try:
            self.net = self._build_net().to(device)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        self.n_examples = shape.count
        self._build_patterns(inputs.get("clusters"), inputs.get("subclusters"))
        t = cfg.train
        self.emas = {"net": EMA(self.net, t.ema_decay, t.ema_power, t.ema_start, t.ema_every)}
        self.updates = {"opt": Update(*self._optimizer(), emas=[(self.emas["net"], self.net)])}
        self.loss_fn = self._build_loss() if for_training else None

    def _build_net(self) -> DeAENet:
        """The network at the images' size: the pattern code and the decoder's output both follow it."""
        m = self.cfg.model
        return DeAENet(self.shape.channels, self.shape.resolution, tuple(m.enc_widths), m.latent_dim, m.encoder_input,
                       m.encoder_norm)

    def _build_loss(self) -> nn.Module | None:
        return build_reconstruction_loss(self.cfg.model.loss, self.shape.channels).to(self.device)

    @classmethod
    def build_inputs(cls, cfg: RunConfig, device: torch.device, shape: DataShape, dataset: TrainingData | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The clustered pattern code's cluster ids per example: k-means of the training images, or the ids saved
        with a loaded run's weights (zeros as placeholders when neither is given)."""
        m = cfg.model
        if m.mask_subclusters > 0 and m.mask_clusters <= 0:
            raise ConfigError("model.mask_subclusters needs model.mask_clusters > 0 (sub-clusters split clusters)")
        if m.mask_clusters <= 0:
            return {}
        if state is not None and "clusters" in state:
            sub = state.get("subclusters")
            return {"clusters": state["clusters"].numpy(), "subclusters": None if sub is None else sub.numpy()}
        if dataset is None:
            zeros = np.zeros(shape.count, dtype=np.int64)
            return {"clusters": zeros, "subclusters": zeros if m.mask_subclusters > 0 else None}
        examples = cls.cluster_features(dataset)
        clusters = kmeans_clusters(examples, m.mask_clusters, seed=cfg.train.seed)
        subclusters = (kmeans_subclusters(examples, clusters, m.mask_subclusters, seed=cfg.train.seed)
                       if m.mask_subclusters > 0 else None)
        return {"clusters": clusters, "subclusters": subclusters}

    @classmethod
    def cluster_features(cls, dataset: TrainingData) -> np.ndarray:
        """What k-means groups to pick each example's block of pattern channels: the training images' pixels."""
        return dataset.images.numpy()

    @classmethod
    def setup_note(cls, cfg: RunConfig, n_images: int) -> str | None:
        m = cfg.model
        if m.mask_clusters <= 0:
            return None
        sub = f" x {m.mask_subclusters} sub-clusters" if m.mask_subclusters > 0 else ""
        fresh = ("drawn over all channels (mask_sampling=uniform)" if m.mask_sampling == "uniform"
                 else "kept to a cluster's block, drawn by cluster frequency (mask_sampling=frequency)")
        return (f"patterns: k-means of {n_images:,} {cls.clustered_examples} into {m.mask_clusters} clusters{sub} "
                f"for the pattern code (once per run, before the first step); fresh patterns {fresh}")

    def _optimizer(self) -> tuple[torch.optim.Optimizer, OptimConfig, tuple[float, ...]]:
        """AdamW over (shift MLP, decoder and the rest, encoder) with their lr scales. The encoder only gets a group
        of its own when its scale differs from 1, so checkpoints of two-group runs stay loadable."""
        m = self.cfg.model
        encoder = [*self.net.encoder.parameters(), *self.net.to_latent.parameters()]
        if self.net.constant is not None:
            encoder.append(self.net.constant)
        groups = [list(self.net.shift_mlp.parameters()), [], encoder if m.encoder_lr_scale != 1.0 else []]
        taken = {id(p) for p in groups[0] + groups[2]}
        groups[1] = [p for p in self.net.parameters() if id(p) not in taken]
        scales = [m.shift_lr_scale, 1.0, m.encoder_lr_scale][: 3 if groups[2] else 2]
        opt = torch.optim.AdamW([{"params": ps, "lr": m.optim.lr * sc} for ps, sc in zip(groups, scales)],
                                betas=tuple(m.optim.betas), weight_decay=0.0)
        return opt, m.optim, tuple(scales)

    def _build_patterns(self, clusters: np.ndarray | None, subclusters: np.ndarray | None = None) -> None:
        m = self.cfg.model
        active = tuple(m.mask_active)
        if m.mask_kind == "khot" and len(active) != len(self.net.mask_channels):
            raise ConfigError(f"model.mask_active {list(active)} needs one count per masked encoder level "
                              f"{list(self.net.mask_channels)}")
        try:
            spec = PatternSpec(self.net.mask_channels, m.mask_kind, active, tuple(m.mask_keep_prob), self.cfg.train.seed)
            self.patterns = DropoutPatterns(spec, clusters, m.mask_clusters, subclusters, m.mask_subclusters,
                                            m.mask_sampling)
        except ValueError as e:
            raise ConfigError(f"model masks: {e}") from None

    # --- TrainTask ----------------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def masks_for(self, index: torch.Tensor, flipped: bool) -> list[torch.Tensor]:
        masks = [mk.to(self.device) for mk in self.patterns.for_examples(index)]
        if flipped:
            masks[-1] = masks[-1].flip(1)
        return masks

    def train_step(self, batch: Batch) -> dict[str, float]:
        m, g = self.cfg.model, step_generator(self.cfg.train.seed, batch.step)
        flipped = m.flip and batch.epoch % 2 == 1
        x = self.targets(batch.images)
        x = x.flip(-1) if flipped else x
        masks = self.masks_for(batch.index, flipped)
        x, shift = random_shift(x, m.shift_range, g, batch)
        noise = batch.draw(lambda n: torch.randn((n, *self.noise_shape), generator=g)).to(self.device)

        self.net.train()
        y = self.net(noise, masks, shift)
        per_example, terms = self.objective(y.float(), x, batch)
        loss = per_example.mean()

        logs = {"loss": loss.item(), **self.optimize("opt", loss, batch)}
        logs.update({k: v.mean().item() for k, v in terms.items()})
        logs["weight_decay"] = m.optim.weight_decay_at(batch.step, self.cfg.train.steps)
        return logs

    # --- what the network learns: overridden by a DeAE on other examples than images ---------------------------------
    @property
    def noise_shape(self) -> tuple[int, int, int]:
        """One example's encoder input noise (the masks carry the identity)."""
        return self.net.channels, self.net.resolution, self.net.resolution

    def targets(self, examples: torch.Tensor) -> torch.Tensor:
        """What the decoder must draw for these training examples: the images themselves."""
        return examples

    def objective(self, y: torch.Tensor, x: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-example loss of the decoded batch y against its targets x, and its terms by name."""
        return self.loss_fn(y, x)

    def to_images(self, y: torch.Tensor) -> torch.Tensor:
        """Network outputs as images in [-1, 1] (the decoder has no tanh, as in the reference)."""
        return y.clamp(-1, 1)

    @staticmethod
    def discrimination_ratio(rec: torch.Tensor, own: torch.Tensor, other: torch.Tensor) -> tuple[float, float, float]:
        """(error against the own example, error against another example, their ratio): RMS over the elements."""
        e_own = float(rms_distance(rec, own).mean())
        e_other = float(rms_distance(rec, other).mean())
        return e_own, e_other, e_own / max(e_other, 1e-12)

    def discrimination(self, dataset: TrainingData, n: int = 256) -> dict[str, Any]:
        """Does the decoder tell the patterns apart? Reconstruction error of the first n training images from their
        own patterns, against the error of the same reconstructions scored against other images. Their ratio is
        1 on the plateau (every pattern decodes to the same average image) and falls as training leaves it."""
        idx = torch.arange(min(n, len(dataset)))
        rec, images = self.reconstruct(idx.numpy()), dataset.get(idx)
        own, other, ratio = self.discrimination_ratio(rec, images, images.roll(1, 0))
        out = {"recon_rms_own_pattern": own, "recon_rms_vs_other_image": other,
               "pattern_discrimination_ratio": ratio, "on_plateau": ratio > PLATEAU_RATIO}
        return out | self.plateau_note(ratio)

    @staticmethod
    def plateau_note(ratio: float, where: str = "") -> dict[str, Any]:
        """The sentence for the person watching; `where` qualifies the ratio (" in latent space")."""
        if ratio > PLATEAU_RATIO:
            return {"note": f"on the plateau: pattern discrimination {ratio:.2f}{where} (1 = every pattern decodes "
                            f"to the same average; it falls once training leaves the plateau, see docs/deae.md)"}
        return {"note": f"off the plateau: pattern discrimination {ratio:.2f}{where}", "note_level": "ok"}

    def diagnose(self, dataset: TrainingData, samples: torch.Tensor) -> dict[str, Any]:
        return super().diagnose(dataset, samples) | self.discrimination(dataset)

    def summarize(self, dataset: TrainingData, n: int = 256) -> dict[str, Any]:
        """Adds the pattern-discrimination figures (see `discrimination`)."""
        return self.discrimination(dataset, n) | super().summarize(dataset, n)

    def encode_fresh(self, n: int, seed: int, *, use_ema: bool = True, bn: BNMode | None = None,
                     batch_size: int = 256) -> torch.Tensor:
        """Latents of n fresh patterns (the encoder half of sampling): DeAE's learned latent, as a latent option
        for other generators. (n, latent_dim) float32 on the CPU."""
        def make(counter: np.ndarray, take: int):
            return self.patterns.fresh(counter + seed * (1 << 32) + (1 << 30)), self._noise(seed, counter)
        return self._decode_batches(make, n, bn, use_ema, batch_size, encode_only=True)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["loss"] = self.loss_fn.describe() if self.loss_fn is not None else None
        d["patterns"] = {"channels": list(self.net.mask_channels), "kind": self.cfg.model.mask_kind,
                         "active": list(self.cfg.model.mask_active), "clusters": self.cfg.model.mask_clusters,
                         "subclusters": self.cfg.model.mask_subclusters,
                         "sampling": self.cfg.model.mask_sampling if self.cfg.model.mask_clusters > 0 else "uniform",
                         "seed": self.cfg.train.seed}
        return d

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.patterns.clusters is not None:  # the k-means variant: one int per example, kept with the weights
            state["clusters"] = torch.from_numpy(self.patterns.clusters)
        if self.patterns.subclusters is not None:
            state["subclusters"] = torch.from_numpy(self.patterns.subclusters)
        return state

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        super().load_state_dict(state, weights_only)
        if "clusters" in state:
            sub = state.get("subclusters")
            self._build_patterns(state["clusters"].numpy(), None if sub is None else sub.numpy())

    # --- sampling -----------------------------------------------------------------------------------------------
    def _net(self, use_ema: bool) -> DeAENet:
        return self.emas["net"].model if use_ema else self.net

    @torch.no_grad()
    def _decode_batches(self, make: Any, n: int, bn: BNMode | None, use_ema: bool, batch_size: int,
                        encode_only: bool = False) -> torch.Tensor:
        """Run `make(counter) -> (masks, noise)` in chunks through the network (or only its encoder). With batch
        statistics every chunk is filled up to batch_size with extra fresh patterns, so small requests see the
        statistics of a full batch."""
        net, bn = self._net(use_ema), bn or self.cfg.model.sample_bn
        out = []
        with bn_mode(net, bn):
            for start in range(0, n, batch_size):
                take = min(batch_size, n - start)
                counter = np.arange(start, start + (batch_size if bn == "batch" else take))
                masks, noise = make(counter, take)
                masks = [mk.to(self.device) for mk in masks]
                y = net.encode(noise.to(self.device), masks) if encode_only else net(noise.to(self.device), masks)
                out.append(y[:take].float().cpu())
        return torch.cat(out)

    def _noise(self, seed: int, counter: np.ndarray) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + int(counter[0]))
        return torch.randn((len(counter), *self.noise_shape), generator=g)

    def sample(self, n: int, seed: int = 0, *, use_ema: bool = True, bn: BNMode | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """n new images from fresh patterns of the training distribution."""
        def make(counter: np.ndarray, take: int):
            return self.patterns.fresh(counter + seed * (1 << 32)), self._noise(seed, counter)
        return self.to_images(self._decode_batches(make, n, bn, use_ema, batch_size))

    def reconstruct(self, index: list[int] | np.ndarray, seed: int = 0, bn: BNMode | None = None,
                    use_ema: bool = True, batch_size: int = 256) -> torch.Tensor:
        """Training image i decoded from its own pattern (unflipped, unshifted)."""
        return self.to_images(self.reconstruct_outputs(index, seed, bn, use_ema, batch_size))

    def reconstruct_outputs(self, index: list[int] | np.ndarray, seed: int = 0, bn: BNMode | None = None,
                            use_ema: bool = True, batch_size: int = 256) -> torch.Tensor:
        """The network's output for training example i's own pattern (unflipped, unshifted)."""
        index = np.asarray(index, dtype=np.int64)
        if len(index) and (index.min() < 0 or index.max() >= self.n_examples):
            raise ConfigError(f"example index out of range: the training set has {self.n_examples} images")

        def make(counter: np.ndarray, take: int):
            chunk = index[counter[:take]]
            pad = (np.arange(len(counter) - take) * 7919 + int(counter[0])) % self.n_examples
            masks = self.patterns.for_examples(np.concatenate([chunk, pad]))
            return masks, self._noise(seed, counter)
        return self._decode_batches(make, len(index), bn, use_ema, batch_size)

    @torch.no_grad()
    def interpolate(self, pairs: int = 4, steps: int = 8, seed: int = 0, bn: BNMode | None = None,
                    use_ema: bool = True, batch_size: int = 256) -> torch.Tensor:
        """Latent interpolation between pairs of fresh patterns: (pairs * steps) images, one pair per row."""
        net, bn = self._net(use_ema), bn or self.cfg.model.sample_bn
        n_enc = max(2 * pairs, batch_size) if bn == "batch" else 2 * pairs
        counter = np.arange(n_enc)
        with bn_mode(net, bn):
            masks = [mk.to(self.device) for mk in self.patterns.fresh(counter + seed * (1 << 32) + (1 << 31))]
            z = net.encode(self._noise(seed, counter).to(self.device), masks)
            t = torch.linspace(0, 1, steps, device=self.device)
            za, zb = z[0:2 * pairs:2], z[1:2 * pairs:2]
            zs = (za[:, None] + (zb - za)[:, None] * t[None, :, None]).reshape(pairs * steps, -1)
            fill = z[: max(0, n_enc - len(zs))] if bn == "batch" else z[:0]
            y = net.decode(torch.cat([zs, fill]))[: pairs * steps]
        return self.to_images(y.float().cpu())
