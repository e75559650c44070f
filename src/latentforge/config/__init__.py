"""Typed run configuration: pydantic models that reject unknown keys and round-trip through YAML.

A run folder's `config.yaml` is the whole truth about a run: `RunConfig.load(folder / "config.yaml")` rebuilds it.
"""
from latentforge.config.model_configs import (DIFFAUG_POLICIES, MODEL_CONFIGS, AEConfig, DAEConfig, DCGANConfig,
                                             DeAEConfig, PriorConfig)
from latentforge.config.presets import PRESETS
from latentforge.config.run import RunConfig, build_config, config_keys, parse_override, presets_for, read_yaml
from latentforge.config.sections import DataConfig, LatentConfig, LossConfig, OptimConfig, RunRef, TrainConfig

__all__ = ["DIFFAUG_POLICIES", "RunConfig", "build_config", "config_keys", "parse_override", "presets_for",
           "read_yaml", "PRESETS",
           "MODEL_CONFIGS", "DeAEConfig", "DCGANConfig", "AEConfig", "DAEConfig", "PriorConfig", "DataConfig",
           "LatentConfig", "LossConfig", "OptimConfig", "RunRef", "TrainConfig"]
