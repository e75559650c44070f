"""Config sections every model shares: data, optimizers, reconstruction losses, latents, and the loop's settings.

All are strict pydantic models (unknown keys are refused) so that a typo never silently becomes a default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    """Which images, at which resolution. `name` is a built-in dataset name or a path (folder, .npy, .npz)."""

    name: str = "digits"
    resolution: int = 32
    channels: Optional[Literal[1, 3]] = None  # None: the dataset's own; set to convert mixed folders
    split: Literal["train", "test", "all"] = "train"
    test_fraction: float = Field(0.1, ge=0, lt=1)  # held-out share, split by group (near-duplicates stay together)
    # folders/array files: images closer than this RMS pixel distance (16x16 thumbnails, [0, 1] units) share a split
    # group, so no held-out image is a near-copy of a training image; 0 = split per file. Built-ins keep their groups.
    near_duplicate_rms: float = Field(0.03, ge=0)
    limit: Optional[PositiveInt] = None  # keep the first N images of the split (tiny runs, memorisation studies)
    on_corrupt: Literal["skip", "error"] = "skip"
    background: tuple[int, int, int] = (255, 255, 255)  # alpha is composited onto this colour
    cache: bool = True


class OptimConfig(Strict):
    """One optimizer (Adam/AdamW). Models with several networks (a GAN's G and D) have one section each."""

    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    wd_ramp_fraction: float = Field(0.0, ge=0)  # weight decay ramps linearly from 0 over this share of steps (DeAE: 40%)
    wd_start_fraction: float = Field(0.0, ge=0, le=1)  # no weight decay before this share of steps; the ramp follows
    warmup_steps: NonNegativeInt = 0  # learning rate rises linearly from 0 over these steps

    def weight_decay_at(self, step: int, total_steps: int) -> float:
        start, ramp = self.wd_start_fraction * total_steps, self.wd_ramp_fraction * total_steps
        if step < start:
            return 0.0
        return self.weight_decay if ramp <= 0 else self.weight_decay * min(1.0, (step - start) / ramp)

    def lr_factor_at(self, step: int) -> float:
        return 1.0 if self.warmup_steps <= 0 else min(1.0, (step + 1) / self.warmup_steps)


class LossConfig(Strict):
    """Reconstruction loss: pixel term + perceptual term. `auto` = LPIPS if its weights are on disk, else Laplacian."""

    pixel: Literal["mse", "l1", "none"] = "none"
    pixel_weight: float = 1.0
    perceptual: Literal["auto", "lpips", "laplacian", "none"] = "auto"
    perceptual_weight: float = 1.0
    lpips_resize: Optional[int] = 128  # reference upsamples 32px images to 128px before LPIPS
    lpips_allow_download: bool = False
    laplacian_levels: int = 3


class RunRef(Strict):
    """Another run folder this run builds on: a prior on an autoencoder's latents, a DAE's stage 2 on another run's
    encoder, a GAN on a DeAE's or an autoencoder's latent. Resolved once, when the run is built: `step` None means
    the latest checkpoint and is then pinned in this run's config, and the checkpoint file's sha256 is recorded, so
    the run always rebuilds on the same weights and refuses a file that changed under the same name."""

    run: str = ""  # run folder
    module: Optional[str] = None  # None: the module the use needs (an autoencoder's encoder, a DeAE's net); pinned
    step: Optional[NonNegativeInt] = None
    ema: bool = False  # the module's EMA copy instead of its raw weights


@dataclass(frozen=True)
class LatentKind:
    """What a generator's latent of this kind needs: a run to build on (which of its modules, and whether sampling
    runs through it or only fitting does), and whether it is fitted to the training images before training."""

    what: str
    fitted: bool = False
    builds_on: Optional[str] = None  # the kind of run `latent.source` must name, in words; None: no run
    module: Optional[str] = None  # the module of that run it uses
    samples_through_run: bool = False  # True: every sample runs that module (so loading the GAN needs the run)


LATENT_KINDS: dict[str, LatentKind] = {
    "gaussian": LatentKind("N(0, I) of size dim"),
    "uniform": LatentKind("U[-sqrt3, sqrt3] of size dim"),
    "ssl": LatentKind("SimCLR features of the training images (a network trained on them)", fitted=True),
    "deae": LatentKind("a trained DeAE's encoder output for fresh patterns", fitted=True, builds_on="a DeAE run",
                       module="net", samples_through_run=True),
    "dae": LatentKind("a trained autoencoder's latents of the training images, flattened", fitted=True,
                      builds_on="an autoencoder run (ae or dae)", module="encoder"),
}


class LatentConfig(Strict):
    """The distribution a generator is fed (Complexity Matters: this choice decides how big the generator must be);
    `LATENT_KINDS` says what each kind is and needs. Data-dependent latents are normalised, then sampled by
    `sampler` (ssl, dae) or from fresh patterns (deae) so that the generator sees *new* latents, then mapped to
    `dim` by a fixed projection."""

    kind: Literal[tuple(LATENT_KINDS)] = "gaussian"  # type: ignore[valid-type]
    dim: Optional[int] = 128  # generator input size; None keeps a data-dependent latent's own dimension
    normalize: Literal["none", "standardize", "whiten"] = "standardize"
    sampler: Literal["empirical", "gmm"] = "gmm"  # ssl and dae: deae latents come from fresh patterns already
    sigma: float = 0.1  # empirical sampler: Gaussian noise added to a training feature (normalised units)
    gmm_components: int = 10
    gmm_covariance: Literal["full", "diag"] = "full"
    ssl_arch: Literal["resnet-s", "convnet"] = "resnet-s"
    ssl_steps: int = 600
    ssl_seed: int = 0
    source: RunRef = RunRef()  # deae and dae: the trained run on the same images

    @model_validator(mode="before")
    @classmethod
    def _one_run_reference(cls, data: Any) -> Any:
        """Run folders written before `source` named their run in `deae_run` or `dae_run` (plain folder strings)."""
        if not isinstance(data, dict) or not ({"deae_run", "dae_run"} & set(data)):
            return data
        data = dict(data)
        runs = {"deae": data.pop("deae_run", None), "dae": data.pop("dae_run", None)}
        run = runs.get(data.get("kind", "gaussian"))
        if run and not (isinstance(data.get("source"), dict) and data["source"].get("run")):
            data["source"] = {"run": run}
        return data


class TrainConfig(Strict):
    """The loop's settings, shared by every model: budget, batch, EMA schedule, device, bookkeeping."""

    steps: PositiveInt = 1000
    time_limit_s: Optional[PositiveFloat] = None  # stop (and checkpoint) after this much training time in a session
    batch_size: PositiveInt = 256
    grad_clip: Optional[PositiveFloat] = None
    ema_decay: float = Field(0.99995, ge=0, le=1)  # upper bound; the warm-up below governs short runs
    ema_power: PositiveFloat = 2 / 3  # decay_k = min(ema_decay, 1 - (1 + k) ** -power), as in the reference's EMA
    ema_start: NonNegativeInt = 100
    ema_every: PositiveInt = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: bf16 autocast where the hardware computes bf16 natively (GPUs from Ampere on; CPUs with avx512_bf16 or
    # amx_bf16), fp32 elsewhere, where bf16 would be emulated and slower. Weights, EMA, optimizer state, batch-norm
    # statistics and losses stay fp32 either way (train/precision.py).
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    threads: Optional[PositiveInt] = None
    # channels_last: NHWC convolutions; auto: channels_last on CUDA, contiguous on a CPU (the DeAE cpu preset asks for
    # it: its convolutions gain there, the paper widths do not)
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    sync_bn: bool = False  # under torchrun on CUDA: batch norm statistics over the global batch (SyncBatchNorm)
    # torch.compile each trained module in place (checkpoints keep their keys; EMA copies and sampling stay eager).
    # auto: time the session's first steps eagerly, then compile when the training left repays the compile time
    # (train/compiling.py states the rule); a failed compilation falls back to eager with one warning.
    compile: Union[bool, Literal["auto"]] = "auto"
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    compile_backend: str = "inductor"  # "eager" / "aot_eager": graph capture only, no code generation (debugging)
    # where the training set lives: auto = on the GPU when it takes under a quarter of the free GPU memory, else
    # in pinned host memory, sent as uint8 (4x fewer bytes than float) and converted on the device
    data_on_device: Literal["auto", "yes", "no"] = "auto"
    log_every: PositiveInt = 10
    sample_every: PositiveInt = 500
    checkpoint_every: PositiveInt = 500
    keep_checkpoints: PositiveInt = 2
    grid_size: PositiveInt = 64
