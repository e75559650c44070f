"""RunConfig: everything needed to reproduce a run from its folder, and how it is composed from presets, a YAML
file and `--set key=value` overrides. `model_type` is the discriminator: it decides which model config class
validates the `model` section, so every model has the same shape (data, model, train) and nothing else branches.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, SerializeAsAny, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from latentforge.config.models import MODELS
from latentforge.config.sections import DataConfig, Strict, TrainConfig
from latentforge.errors import ConfigError

_LEGACY_DEAE_OPTIM = ("lr", "betas", "weight_decay", "wd_ramp_fraction")


class RunConfig(Strict):
    model_type: str = "deae"
    preset: Optional[str] = None
    data: DataConfig = DataConfig()
    # the class MODELS[model_type].config, chosen by the validator below; dumped with all of that class's fields
    model: SerializeAsAny[Strict] = None  # type: ignore[assignment]
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _migrate_v0(cls, data: Any) -> Any:
        """Run folders written before models had their own sections kept DeAE's loss at the top level and its
        optimizer settings in `train`: move them where they live now, so old runs still load and resume."""
        if not isinstance(data, dict) or data.get("model_type", "deae") != "deae":
            return data
        train = data.get("train")
        legacy = "loss" in data or (isinstance(train, dict) and any(k in train for k in _LEGACY_DEAE_OPTIM))
        if not legacy:
            return data
        data = dict(data)
        model = dict(data.get("model") or {})
        if "loss" in data:
            model["loss"] = data.pop("loss")
        if isinstance(train, dict):
            train = dict(train)
            optim = {k: train.pop(k) for k in _LEGACY_DEAE_OPTIM if k in train}
            model["optim"] = {**dict(model.get("optim") or {}), **optim}
            data["train"] = train
        data["model"] = model
        return data

    @field_validator("model", mode="before")
    @classmethod
    def _model_for_type(cls, value: Any, info: Any) -> Any:
        model_type = info.data.get("model_type")
        if model_type not in MODELS:
            raise PydanticCustomError(
                "unknown_model", f"unknown model type {model_type!r}; choose from {', '.join(MODELS)}")
        config_cls = MODELS[model_type].config
        if isinstance(value, config_cls):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        # Partial sections merge onto this model's defaults (a DeAE's `optim` keeps its weight decay when only
        # `optim.lr` is set), which plain pydantic nesting would replace with the section class's defaults.
        return config_cls.model_validate(_deep_merge(config_cls().model_dump(), value or {}))

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
            raise ConfigError(_format_validation_error(e, data.get("model_type", "deae"))) from None

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        """A saved run's config. Keys added since it was written get the value that reproduces that run."""
        data = read_yaml(path)
        if isinstance(data.get("data"), dict) and "near_duplicate_rms" not in data["data"]:
            data["data"] = {**data["data"], "near_duplicate_rms": 0.0}  # it was split per file
        return cls.from_dict(data)


RunConfig.model_fields["model"].validate_default = True
RunConfig.model_rebuild(force=True)


def presets_for(model_type: str) -> dict[str, dict[str, Any]]:
    if model_type not in MODELS:
        raise ConfigError(f"unknown model {model_type!r}; choose from {', '.join(MODELS)}")
    return MODELS[model_type].presets


def build_config(
    preset: str | None = None,
    file: Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    model_type: str | None = None,
) -> RunConfig:
    """Compose defaults < the model's preset (`paper` unless named) < config file < explicit `base` dict <
    `--set key=value` overrides. The model type comes from `model_type`, else `base`, else the file, else deae."""
    file_data = read_yaml(file) if file is not None else {}
    model_type = model_type or (base or {}).get("model_type") or file_data.get("model_type") or "deae"
    presets = presets_for(model_type)
    data: dict[str, Any] = {"model_type": model_type}
    if base is None or "preset" not in base:  # a saved run's config (resume) is complete already
        name = preset or "paper"
        if name not in presets:
            raise ConfigError(f"unknown preset {name!r} for {model_type}; choose from {', '.join(presets)}")
        data = _deep_merge(data, presets["paper"])
        data = _deep_merge(data, presets[name])
        data["preset"] = name
    data = _deep_merge(data, file_data)
    if base:
        data = _deep_merge(data, base)
    for item in overrides or []:
        key, value = parse_override(item, model_type)
        data = _deep_merge(data, _nest(key, value))
    return RunConfig.from_dict(data)


def parse_override(item: str, model_type: str = "deae") -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = _RENAMED.get(key.strip(), key.strip())
    _check_key(key, model_type)
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


def config_keys(model_type: str = "deae") -> list[str]:
    """Every settable dotted key of a run of this model type (what `--set` accepts)."""
    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        keys = []
        for name, field in model.model_fields.items():
            ann = MODELS[model_type].config if (model is RunConfig and name == "model" and model_type in MODELS) \
                else field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                keys += walk(ann, f"{prefix}{name}.")
            else:
                keys.append(prefix + name)
        return keys
    return walk(RunConfig, "")


_MOVED = {f"train.{k}": f"model.optim.{k}" for k in _LEGACY_DEAE_OPTIM}
_RENAMED = {"model.latent.deae_run": "model.latent.source.run", "model.latent.dae_run": "model.latent.source.run"}


def _check_key(key: str, model_type: str) -> None:
    keys = config_keys(model_type)
    if key in _MOVED:
        where = _MOVED[key] if model_type == "deae" else "model.g_optim / model.d_optim"
        raise ConfigError(f"config key {key!r} has moved: optimizer settings live with the model now ({where})")
    if key not in keys:
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown config key {key!r} for {model_type}{hint}")


def _format_validation_error(e: ValidationError, model_type: str) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(loc, config_keys(model_type), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown config key {loc!r}{hint}")
        elif err["type"] == "unknown_model":
            parts.append(err["msg"])
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
