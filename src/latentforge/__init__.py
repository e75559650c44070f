"""latentforge: latent-space generative modeling of images (Deciphering Autoencoders, latent-choice GANs,
decoupled autoencoders), with honest offline evaluation."""
# First, before anything imports torch: on a busy machine, OpenMP threads that spin while they wait make training
# crawl, and the wait policy is read only once, when torch loads its OpenMP runtime (see utils/threads.py).
from latentforge.utils.threads import choose_wait_policy

choose_wait_policy()

from latentforge._version import __version__  # noqa: E402
from latentforge.api import LoadedRun, TrainResult, evaluate_images, evaluate_run, load_run, train  # noqa: E402
from latentforge.config import PRESETS, RunConfig, build_config  # noqa: E402
from latentforge.data.dataset import BUILTINS, ImageDataset, load_dataset  # noqa: E402
from latentforge.errors import CheckpointError, ConfigError, DataError, LatentforgeError  # noqa: E402

__all__ = ["train", "load_run", "evaluate_run", "evaluate_images", "LoadedRun", "TrainResult", "RunConfig",
           "build_config", "PRESETS", "BUILTINS", "ImageDataset", "load_dataset", "LatentforgeError", "ConfigError",
           "DataError", "CheckpointError", "__version__"]
