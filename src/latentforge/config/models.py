"""The model table: every trainable model, one entry each, and nothing else in the toolkit lists models.

An entry is torch-free: the model's config class (its `model` section: architecture, objective, optimizers), its
presets, where its TrainTask lives, and a line for `--help`. The config union, the preset table, the CLI's choices
and `latentforge.tasks` are all read from `MODELS`. A new model is its module in `tasks/` and its block here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from latentforge.config.sections import LatentConfig, LossConfig, OptimConfig, RunRef, Strict


@dataclass(frozen=True)
class ModelEntry:
    config: type[Strict]  # the `model` section's class
    task: str  # "module:Class" of its TrainTask, imported when a run is built (so this table needs no torch)
    presets: dict[str, dict[str, Any]]  # named partial configs: `paper` (the reference recipe) and those merged onto it
    summary: str  # one line for `latentforge train --help`

    @property
    def builds_on_a_run(self) -> bool:
        """Whether the model learns from another run (its `source`: `train MODEL --from RUN`)."""
        return "source" in self.config.model_fields


_CPU_LOSS = {"pixel": "mse", "perceptual": "laplacian"}  # no LPIPS weights needed, a fraction of its cost


# --- DeAE ---------------------------------------------------------------------------------------------------------
class DeAEConfig(Strict):
    """Deciphering Autoencoder; defaults are the reference recipe at 32x32 (shuntama/deciphering-autoencoders)."""

    enc_widths: tuple[int, ...] = (128, 256, 512, 1024)
    latent_dim: int = 128
    mask_kind: Literal["khot", "bernoulli"] = "khot"
    mask_active: tuple[int, ...] = (1, 4, 16)  # k-hot: channels kept before encoder blocks 2, 3, 4
    mask_keep_prob: tuple[float, ...] = (0.5,)  # Bernoulli alternative
    # >0: the clustered pattern code: k-means of the images picks the block of first-level channels an example's
    # pattern draws from (the reference trains with 32: `paper` preset); 0: every channel open to every example
    mask_clusters: int = 0
    mask_subclusters: int = 0  # >0 (not in the reference): k-means within each cluster picks the 2nd level's block
    # fresh patterns of a clustered code: uniform = channels drawn over all of each level, as the reference's
    # sample.py does; frequency = a cluster (and sub-cluster) drawn with its training frequency, then its block
    mask_sampling: Literal["uniform", "frequency"] = "frequency"
    shift_range: int = 8  # random horizontal shift (px), fed to the decoder; 0 disables
    flip: bool = True  # horizontal flip on odd epochs, last mask reversed with it
    shift_lr_scale: float = 0.1  # the shift-embedding MLP trains at lr * this
    encoder_lr_scale: float = 1.0  # the encoder (pattern -> latent) trains at lr * this; the decoder at lr
    # Not in the reference (which is "noise" + "batch"): a learned constant in place of the first encoder stage
    # makes the latent a deterministic function of the pattern; GroupNorm/none replace the encoder's batch norm.
    encoder_input: Literal["noise", "constant"] = "noise"
    encoder_norm: Literal["batch", "group", "none"] = "batch"
    sample_bn: Literal["batch", "running"] = "batch"  # reference samples with batch statistics
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig(lr=2e-3, betas=(0.9, 0.999), weight_decay=0.08, wd_ramp_fraction=0.4)


_DEAE_CPU_TRAIN = {"batch_size": 64, "ema_every": 1, "ema_start": 50, "sample_every": 250, "checkpoint_every": 250}
DEAE = ModelEntry(DeAEConfig, "latentforge.tasks.deae:DeAETask", {
    # the reference's training default: gen_masks.py clusters into 32 before train.py; sample.py draws uniformly
    "paper": {"model": {"mask_clusters": 32, "mask_sampling": "uniform"}},
    "cpu": {  # plus the plateau remedy (docs/deae.md): a learned constant encoder input and a coarse-to-fine
        # pattern code (32 k-means clusters x 16 sub-clusters on levels 1-2)
        "model": {"enc_widths": (32, 64, 128, 256), "latent_dim": 64, "mask_active": (1, 4, 16), "shift_range": 2,
                  "encoder_input": "constant", "mask_clusters": 32, "mask_subclusters": 16,
                  "mask_sampling": "frequency", "loss": _CPU_LOSS},
        # NHWC convolutions pay on these widths on a CPU (benchmarks/cpu_efficiency.py)
        "train": {**_DEAE_CPU_TRAIN, "memory_format": "channels_last"},
    },
    "cpu16": {  # the README's main job: digits/MNIST at 16x16, recognisable digits in minutes on 2 cores
        "data": {"resolution": 16},
        "model": {"enc_widths": (32, 64, 128), "latent_dim": 64, "mask_active": (1, 4), "shift_range": 2,
                  "mask_clusters": 0, "loss": _CPU_LOSS},
        "train": {**_DEAE_CPU_TRAIN, "sample_every": 500, "checkpoint_every": 500, "log_every": 50},
    },
    "tiny": {
        "model": {"enc_widths": (16, 32, 64, 128), "latent_dim": 32, "mask_active": (1, 2, 4), "shift_range": 0,
                  "mask_clusters": 0, "loss": _CPU_LOSS},
        "train": {"batch_size": 32, "ema_every": 1, "ema_start": 10, "sample_every": 100, "checkpoint_every": 100,
                  "grid_size": 16},
    },
}, "Deciphering Autoencoder: fixed dropout pattern per image -> image, trained by reconstruction")


# --- latent DeAE -------------------------------------------------------------------------------------------------
class LatentDeAEConfig(DeAEConfig):
    """DeAE as the prior of a frozen autoencoder (`ae` or `dae` run): its training examples are that run's cached
    latents (scaled to unit standard deviation, as the diffusion prior's), the pattern code is the pixel DeAE's,
    and the decoder draws a latent, which the source run's decoder turns into an image. Trained on the latents
    (`latent_loss`), optionally plus an image term through the frozen decoder (`loss`, off by default)."""

    source: RunRef = RunRef()  # the autoencoder run (`train latent-deae --from RUN`); its data are this run's data
    pattern_resolution: int = 32  # the pattern encoder's size: its depth fixes the masked levels (as a 32 px DeAE's)
    dec_widths: Optional[tuple[int, ...]] = None  # decoder channels from 2x2 up to the latent; None: the encoder's
    latent_loss: Literal["mse", "l1"] = "mse"
    latent_loss_weight: float = Field(1.0, ge=0)
    loss: LossConfig = LossConfig(pixel="none", perceptual="none")  # the image term (none: latent loss alone)
    shift_range: int = 0  # shift and flip augment images, not an autoencoder's fixed latents: off, and refused
    flip: bool = False

    @model_validator(mode="after")
    def _no_image_augmentation(self) -> "LatentDeAEConfig":
        if self.shift_range or self.flip:
            raise ValueError("shift_range and flip augment images; a latent DeAE learns fixed latents (set them to "
                             "0 / false)")
        if self.latent_loss_weight <= 0 and self.loss.pixel == "none" and self.loss.perceptual == "none":
            raise ValueError("latent_loss_weight is 0 and loss has no image term: nothing to train on")
        return self


_LATENT_DEAE_CPU = {"model": {"enc_widths": (32, 64, 128, 256), "latent_dim": 64, "encoder_input": "constant",
                              "mask_clusters": 32, "mask_subclusters": 16, "mask_sampling": "frequency"},
                    "train": {**_DEAE_CPU_TRAIN}}
LATENT_DEAE = ModelEntry(LatentDeAEConfig, "latentforge.tasks.latent_deae:LatentDeAETask", {
    "paper": {"model": {"mask_clusters": 32, "mask_sampling": "uniform"}},  # the reference's pattern code
    "cpu": _LATENT_DEAE_CPU,  # the pixel DeAE cpu preset's pattern code and encoder
    "tiny": {"model": {"enc_widths": (16, 32, 64, 128), "latent_dim": 32, "mask_active": (1, 2, 4)},
             "train": {"batch_size": 32, "ema_every": 1, "ema_start": 10, "sample_every": 100,
                       "checkpoint_every": 100, "grid_size": 16}},
}, "DeAE on the frozen latents of an ae or dae run: patterns -> latents -> its decoder (train latent-deae --from RUN)")


# --- DCGAN --------------------------------------------------------------------------------------------------------
DIFFAUG_POLICIES = ("color", "translation", "cutout")  # models/diffaugment.py implements each


class DCGANConfig(Strict):
    """DCGAN (Radford et al. 2016) with a width-scaled generator and a fixed discriminator.

    `width` multiplies every generator channel count, so one recipe spans a family of generator sizes (the
    complexity axis of "Complexity Matters"); the discriminator does not change with it."""

    width: float = 1.0
    g_channels: int = 64  # channels of the last generator stage at width 1 (DCGAN's ngf)
    d_channels: int = 64  # discriminator's first-stage channels (DCGAN's ndf), fixed across the family
    loss: Literal["ns", "hinge"] = "ns"  # non-saturating (DCGAN) or hinge (SN-GAN)
    d_norm: Literal["batch", "spectral"] = "batch"  # spectral: spectral norm in D instead of batch norm
    n_dis: int = 1  # discriminator steps per generator step
    g_ema: bool = False  # sample from an EMA of G (train.ema_* schedule)
    sample_bn: Literal["batch", "running"] = "batch"  # G's batch norm when sampling
    # DiffAugment (Zhao et al. 2020) before every discriminator call, e.g. "color,translation,cutout"; "" = off.
    # What a small training set needs: without it D memorises the few real images.
    diffaug: str = ""
    latent: LatentConfig = LatentConfig()
    g_optim: OptimConfig = OptimConfig(lr=2e-4, betas=(0.5, 0.999))
    d_optim: OptimConfig = OptimConfig(lr=2e-4, betas=(0.5, 0.999))


    @field_validator("diffaug")
    @classmethod
    def _known_policies(cls, v: str) -> str:
        names = [p.strip() for p in v.split(",") if p.strip()]
        unknown = [p for p in names if p not in DIFFAUG_POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}: choose from "
                             f"{', '.join(DIFFAUG_POLICIES)}")
        return ",".join(names)


_GAN_EMA = {"ema_decay": 0.999, "ema_every": 1}
DCGAN = ModelEntry(DCGANConfig, "latentforge.tasks.dcgan:DCGANTask", {
    # Radford et al.: Adam 2e-4, betas (0.5, 0.999), batch 128, BN in G and D, non-saturating loss.
    "paper": {"train": {"batch_size": 128, **_GAN_EMA, "ema_start": 1000, "sample_every": 1000,
                        "checkpoint_every": 1000}},
    "cpu": {"train": {"batch_size": 64, **_GAN_EMA, "ema_start": 200, "sample_every": 250, "checkpoint_every": 250,
                      "log_every": 25}},
    "cpu16": {"data": {"resolution": 16},
              "train": {"batch_size": 64, **_GAN_EMA, "ema_start": 200, "sample_every": 500, "checkpoint_every": 500,
                        "log_every": 50}},
    "tiny": {"model": {"g_channels": 16, "d_channels": 16, "latent": {"dim": 16}},
             "train": {"batch_size": 32, "ema_decay": 0.99, "ema_every": 1, "ema_start": 10, "sample_every": 100,
                       "checkpoint_every": 100, "grid_size": 16}},
}, "DCGAN with a width-scaled generator and a choice of latent (gaussian, uniform, ssl, deae, dae)")


# --- autoencoders: joint (ae) and decoupled (dae) -------------------------------------------------------------------
class AEConfig(Strict):
    """Image autoencoder with a KL-regularised spatial latent (the autoencoder behind a latent diffusion prior),
    trained jointly: one encoder, one decoder, all steps. The baseline of the Decoupled Autoencoder."""

    latent_channels: int = Field(4, ge=1)
    latent_resolution: int = Field(8, ge=1)  # image resolution / a power of two
    base_channels: int = Field(64, ge=8)  # channels at full resolution; doubled per level, capped at 4x
    kl_weight: float = Field(1e-6, ge=0)
    loss: LossConfig = LossConfig(pixel="l1", perceptual="auto")
    optim: OptimConfig = OptimConfig(lr=1e-3, betas=(0.9, 0.999))


class DAEConfig(AEConfig):
    """Decoupled Autoencoder ("Complexity Matters"): stage 1 trains the encoder with a weaker auxiliary decoder
    (dropout after every residual block and/or narrower); at `stage2_start` of the steps the encoder is frozen and
    a freshly initialised full decoder learns to decode its latents. Same total steps as the joint baseline."""

    aux_dropout: float = Field(0.4, ge=0, lt=1)  # Dropout2d after every residual block of the stage-1 decoder
    aux_width: float = Field(1.0, gt=0)  # channel multiplier of the stage-1 decoder
    stage2_start: float = Field(0.5, gt=0, lt=1)  # share of the steps spent in stage 1
    # Set: no stage 1 here; stage 2 starts from (and freezes) the encoder of another autoencoder run (ae or dae)
    encoder_from: RunRef = RunRef()


# A DAE and its joint baseline share their presets: they differ only in the DAE's stage knobs. `paper` is an
# LDM-style f=4 autoencoder at 32 px (8x8x4 latent, 64 base channels).
_AUTOENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"train": {"batch_size": 64, "ema_start": 100, "sample_every": 1000, "checkpoint_every": 1000}},
    "cpu": {"model": {"base_channels": 32, "loss": _CPU_LOSS},
            "train": {"batch_size": 64, "sample_every": 250, "checkpoint_every": 250, "log_every": 25}},
    "cpu16": {"data": {"resolution": 16}, "model": {"base_channels": 32, "latent_resolution": 4, "loss": _CPU_LOSS},
              "train": {"batch_size": 64, "sample_every": 500, "checkpoint_every": 500, "log_every": 50}},
    "tiny": {"model": {"base_channels": 16, "latent_resolution": 4, "loss": _CPU_LOSS},
             "train": {"batch_size": 32, "sample_every": 100, "checkpoint_every": 100, "grid_size": 16}},
}
AE = ModelEntry(AEConfig, "latentforge.tasks.autoencoder:AETask", _AUTOENCODER_PRESETS,
                "image autoencoder trained jointly (the baseline a prior is trained on)")
DAE = ModelEntry(DAEConfig, "latentforge.tasks.autoencoder:DAETask", _AUTOENCODER_PRESETS,
                 "Decoupled Autoencoder: encoder with a weak decoder, then a fresh decoder on the frozen encoder")


# --- the latent diffusion prior ---------------------------------------------------------------------------------------
class PriorConfig(Strict):
    """Diffusion prior on the frozen latents of a trained autoencoder run (`ae` or `dae`): a diffusers UNet2DModel
    trained with the DDPM objective on the cached latents (scaled to unit standard deviation), sampled with DDIM
    (or ancestral DDPM) and decoded by the source run's decoder."""

    source: RunRef = RunRef()
    widths: tuple[int, ...] = (128, 256)  # UNet channels per resolution level (the latent is halved between levels)
    layers_per_block: int = Field(2, ge=1)
    attention: bool = True  # self-attention blocks on the lowest-resolution level
    train_timesteps: int = Field(1000, ge=10)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    prediction: Literal["epsilon", "v_prediction"] = "epsilon"
    sampler: Literal["ddim", "ddpm"] = "ddim"
    sample_steps: int = Field(50, ge=1)  # DDIM steps (ddpm: denoising steps, evenly spaced)
    eta: float = Field(0.0, ge=0, le=1)  # DDIM stochasticity: 0 deterministic, 1 DDPM-like
    optim: OptimConfig = OptimConfig(lr=2e-4, betas=(0.9, 0.999))


# `paper` is a small LDM-style UNet for 8x8 latents; the CPU presets shrink it.
PRIOR = ModelEntry(PriorConfig, "latentforge.tasks.prior:PriorTask", {
    "paper": {"train": {"steps": 20000, "batch_size": 128, "ema_decay": 0.9999, "ema_start": 500, "ema_every": 1,
                        "sample_every": 2000, "checkpoint_every": 2000}},
    "cpu": {"model": {"widths": (32, 64), "sample_steps": 25, "optim": {"lr": 1e-3}},
            "train": {"batch_size": 64, "ema_decay": 0.999, "ema_start": 100, "ema_every": 1,
                      "sample_every": 250, "checkpoint_every": 250, "log_every": 25}},
    "tiny": {"model": {"widths": (16, 32), "layers_per_block": 1, "sample_steps": 8, "optim": {"lr": 1e-3}},
             "train": {"batch_size": 32, "ema_decay": 0.99, "ema_start": 10, "ema_every": 1,
                       "sample_every": 100, "checkpoint_every": 100, "grid_size": 16}},
}, "diffusion prior on the frozen latents of an ae or dae run (train prior --from RUN)")


MODELS: dict[str, ModelEntry] = {"deae": DEAE, "dcgan": DCGAN, "ae": AE, "dae": DAE, "prior": PRIOR,
                                 "latent-deae": LATENT_DEAE}
MODEL_CONFIGS: dict[str, type[Strict]] = {name: entry.config for name, entry in MODELS.items()}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {name: entry.presets for name, entry in MODELS.items()}
