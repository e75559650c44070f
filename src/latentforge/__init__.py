"""latentforge: latent-space generative modeling of images (Deciphering Autoencoders, latent-choice GANs,
decoupled autoencoders), with honest offline evaluation.

The public names load on first use, so that `import latentforge.cli.main` does not import torch: the command line
chooses torch's OpenMP wait policy first (utils/threads.py), and `--help` answers at once."""
from __future__ import annotations

import importlib
from typing import Any

from latentforge._version import __version__
from latentforge.errors import CheckpointError, ConfigError, DataError, LatentforgeError

_LAZY = {
    "train": "latentforge.api", "load_run": "latentforge.api", "evaluate_run": "latentforge.api",
    "evaluate_images": "latentforge.api", "LoadedRun": "latentforge.api", "TrainResult": "latentforge.api",
    "RunConfig": "latentforge.config", "build_config": "latentforge.config", "PRESETS": "latentforge.config",
    "BUILTINS": "latentforge.data.dataset", "ImageDataset": "latentforge.data.dataset",
    "load_dataset": "latentforge.data.dataset",
}

__all__ = ["__version__", *_LAZY, "LatentforgeError", "ConfigError", "DataError", "CheckpointError"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'latentforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
