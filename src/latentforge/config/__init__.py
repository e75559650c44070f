"""Typed run configuration: pydantic models that reject unknown keys and round-trip through YAML.

A run folder's `config.yaml` is the whole truth about a run: `RunConfig.load(folder / "config.yaml")` rebuilds it.
"""
from latentforge.config.models import (DIFFAUG_POLICIES, MODEL_CONFIGS, MODELS, PRESETS, AEConfig, DAEConfig,
                                      DCGANConfig, DeAEConfig, ModelEntry, PriorConfig)
from latentforge.config.run import RunConfig, build_config, config_keys, parse_override, presets_for, read_yaml
from latentforge.config.sections import (LATENT_KINDS, DataConfig, LatentConfig, LatentKind, LossConfig, OptimConfig,
                                        RunRef, TrainConfig)

__all__ = ["DIFFAUG_POLICIES", "RunConfig", "build_config", "config_keys", "parse_override", "presets_for",
           "read_yaml", "PRESETS", "MODELS", "ModelEntry", "LATENT_KINDS", "LatentKind",
           "MODEL_CONFIGS", "DeAEConfig", "DCGANConfig", "AEConfig", "DAEConfig", "PriorConfig", "DataConfig",
           "LatentConfig", "LossConfig", "OptimConfig", "RunRef", "TrainConfig"]
