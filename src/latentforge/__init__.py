"""latentforge: latent-space generative modeling of images (Deciphering Autoencoders, latent-choice GANs,
decoupled autoencoders), with honest offline evaluation."""
from latentforge.api import LoadedRun, TrainResult, evaluate_images, evaluate_run, load_run, train
from latentforge.config import PRESETS, RunConfig, build_config
from latentforge.data.dataset import BUILTINS, ImageDataset, load_dataset
from latentforge.errors import CheckpointError, ConfigError, DataError, LatentforgeError

from latentforge._version import __version__
__all__ = ["train", "load_run", "evaluate_run", "evaluate_images", "LoadedRun", "TrainResult", "RunConfig", "build_config", "PRESETS", "BUILTINS",
           "ImageDataset", "load_dataset", "LatentforgeError", "ConfigError", "DataError", "CheckpointError"]
