"""Typed run configuration: pydantic models that reject unknown keys and round-trip through YAML.

A run folder's `config.yaml` is the whole truth about a run: `RunConfig.load(folder / "config.yaml")` rebuilds it.
Presets are plain partial dicts merged under user files and `--set key=value` overrides.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from latentforge.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """Which images, at which resolution. `name` is a built-in dataset name or a path (folder, .npy, .npz)."""

    name: str = "digits"
    resolution: int = 32
    channels: Optional[Literal[1, 3]] = None  # None: the dataset's own; set to convert mixed folders
    split: Literal["train", "test", "all"] = "train"
    test_fraction: float = 0.1  # held-out share, split by group (near-duplicates stay together)
    limit: Optional[int] = None  # keep the first N images of the split (tiny runs, memorisation studies)
    on_corrupt: Literal["skip", "error"] = "skip"
    background: tuple[int, int, int] = (255, 255, 255)  # alpha is composited onto this colour
    cache: bool = True


class DeAEConfig(_Strict):
    """Deciphering Autoencoder; defaults are the reference recipe at 32x32 (shuntama/deciphering-autoencoders)."""

    enc_widths: tuple[int, ...] = (128, 256, 512, 1024)
    latent_dim: int = 128
    mask_kind: Literal["khot", "bernoulli"] = "khot"
    mask_active: tuple[int, ...] = (1, 4, 16)  # k-hot: channels kept before encoder blocks 2, 3, 4
    mask_keep_prob: tuple[float, ...] = (0.5,)  # Bernoulli alternative
    mask_clusters: int = 0  # >0: reference k-means variant (32 in the paper's CIFAR run)
    shift_range: int = 8  # random horizontal shift (px), fed to the decoder; 0 disables
    flip: bool = True  # horizontal flip on odd epochs, last mask reversed with it
    shift_lr_scale: float = 0.1  # the shift-embedding MLP trains at lr * this
    sample_bn: Literal["batch", "running"] = "batch"  # reference samples with batch statistics


class LossConfig(_Strict):
    """Reconstruction loss: pixel term + perceptual term. `auto` = LPIPS if its weights are on disk, else Laplacian."""

    pixel: Literal["mse", "l1", "none"] = "none"
    pixel_weight: float = 1.0
    perceptual: Literal["auto", "lpips", "laplacian", "none"] = "auto"
    perceptual_weight: float = 1.0
    lpips_resize: Optional[int] = 128  # reference upsamples 32px images to 128px before LPIPS
    lpips_allow_download: bool = False
    laplacian_levels: int = 3


class TrainConfig(_Strict):
    """Optimisation and bookkeeping shared by every model."""

    steps: int = 1000
    batch_size: int = 256
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.08
    wd_ramp_fraction: float = 0.4  # weight decay ramps linearly from 0 over this share of steps (reference: 40%)
    grad_clip: Optional[float] = None
    ema_decay: float = 0.99995  # upper bound; the warm-up below governs short runs
    ema_power: float = 2 / 3  # decay_k = min(ema_decay, 1 - (1 + k) ** -power), as in the reference's EMA
    ema_start: int = 100
    ema_every: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    threads: Optional[int] = None
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    grid_size: int = 64


class RunConfig(_Strict):
    """Everything needed to reproduce a run from its folder."""

    model_type: Literal["deae"] = "deae"
    preset: Optional[str] = None
    data: DataConfig = DataConfig()
    model: DeAEConfig = DeAEConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()

    # --- YAML round trip -------------------------------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: Path) -> None:
        tmp = Path(path).with_suffix(".yaml.tmp")
        tmp.write_text(self.to_yaml())
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_format_validation_error(e)) from None

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        return cls.from_dict(read_yaml(path))


# Presets: named partial configs. `paper` is the default recipe; the CPU presets shrink widths and batch.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        "model": {"enc_widths": (32, 64, 128, 256), "latent_dim": 64, "mask_active": (1, 4, 16), "shift_range": 2},
        "loss": {"pixel": "mse", "perceptual": "laplacian"},
        "train": {"batch_size": 64, "ema_every": 1, "ema_start": 50, "sample_every": 250, "checkpoint_every": 250},
    },
    "cpu16": {  # the README's main job: digits/MNIST at 16x16, recognisable digits in minutes on 2 cores
        "data": {"resolution": 16},
        "model": {"enc_widths": (32, 64, 128), "latent_dim": 64, "mask_active": (1, 4), "shift_range": 2},
        "loss": {"pixel": "mse", "perceptual": "laplacian"},
        "train": {"batch_size": 64, "ema_every": 1, "ema_start": 50, "sample_every": 500, "checkpoint_every": 500,
                  "log_every": 50},
    },
    "tiny": {
        "model": {"enc_widths": (16, 32, 64, 128), "latent_dim": 32, "mask_active": (1, 2, 4), "shift_range": 0},
        "loss": {"pixel": "mse", "perceptual": "laplacian"},
        "train": {"batch_size": 32, "ema_every": 1, "ema_start": 10, "sample_every": 100, "checkpoint_every": 100,
                  "grid_size": 16},
    },
}


def build_config(
    preset: str | None = None,
    file: Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Compose defaults < preset < config file < explicit `base` dict < `--set key=value` overrides."""
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        data = _deep_merge(data, PRESETS[preset])
        data["preset"] = preset
    if file is not None:
        data = _deep_merge(data, read_yaml(file))
    if base:
        data = _deep_merge(data, base)
    for item in overrides or []:
        key, value = parse_override(item)
        data = _deep_merge(data, _nest(key, value))
    return RunConfig.from_dict(data)


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    _check_key(key)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(value, list):
        value = tuple(value)
    return key, value


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data


def _all_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _all_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def _check_key(key: str) -> None:
    keys = _all_keys()
    if key not in keys:
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown config key {key!r}{hint}")


def _format_validation_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(loc, _all_keys(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown config key {loc!r}{hint}")
        else:
            parts.append(f"config key {loc!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
