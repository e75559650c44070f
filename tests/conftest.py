import json
import os
from pathlib import Path

import pytest

import latentforge  # (first: it picks OpenMP's wait policy before torch loads; see utils/threads.py)
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

TINY = [
    "data.resolution=16", "model.enc_widths=[16,32,64]", "model.mask_active=[1,2]", "model.latent_dim=16",
    "train.batch_size=16", "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=1000",
    "train.grid_size=4",
]

# a 16 px autoencoder on 96 digits (4x4x4 latents): the source run of the prior and latent DeAE tests
AE_TINY = ["data.resolution=16", "data.limit=96", "train.batch_size=16", "train.log_every=1",
           "train.sample_every=1000", "train.checkpoint_every=12", "train.keep_checkpoints=10", "train.grid_size=4"]


# steps of the digits (16 px) classifier judge the evaluation tests share: enough for the test bench's ladders
DIGITS16_CLASSIFIER_STEPS = 150


@pytest.fixture(scope="session")
def digits16_classifier_cache(tmp_path_factory):
    """A cache folder holding the digits (16 px) classifier feature network, trained once per session: training it
    is most of what an evaluation test costs, and the tests that need this judge all need the same one."""
    from latentforge.config import DataConfig
    from latentforge.data import load_dataset
    from latentforge.metrics.features.trained import load_or_train_features

    root = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as mp:  # set up before any test's isolated cache: nothing may reach the user's
        mp.setenv("LATENTFORGE_CACHE", str(root))
        train, held = (load_dataset(DataConfig(name="digits", resolution=16, split=split, cache=False))
                       for split in ("train", "test"))
        load_or_train_features(train, held, cache_dir=root, steps=DIGITS16_CLASSIFIER_STEPS, progress=False)
    return root


@pytest.fixture
def digits16_classifier_in_cache(digits16_classifier_cache):
    """The shared classifier copied into this test's own (isolated) cache, where `resolve_features` finds it."""
    import shutil

    from latentforge.data.fetch import default_cache_dir

    shutil.copytree(digits16_classifier_cache / "featurenets", default_cache_dir() / "featurenets", dirs_exist_ok=True)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own dataset/weights cache so nothing leaks between tests or from the user's machine."""
    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("LATENTFORGE_LPIPS_BACKBONE", raising=False)
    monkeypatch.delenv("LATENTFORGE_LPIPS_HEADS", raising=False)
    monkeypatch.delenv("LATENTFORGE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))


def train_losses(run, key="loss"):
    """A logged training figure of a run folder (the loss by default), in step order (what resume tests compare)."""
    return [r[key] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"]


def train_on_a_source(root: Path, source: str, model: str, model_steps: int, model_overrides: list[str]):
    """Under `root`: a 24-step tiny `source` run (ae or dae, AE_TINY) and a tiny `model` run on its latents, both
    with the dataset/latent cache in root/cache (which the `shared_cache` fixture points the tests at)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTFORGE_CACHE", str(root / "cache"))
    try:
        latentforge.train(source, data="digits", steps=24, out=root / source, preset="tiny", progress=False,
                          overrides=AE_TINY)
        latentforge.train(model, steps=model_steps, out=root / model, preset="tiny", progress=False,
                          overrides=[f"model.source.run={root / source}", *model_overrides])
    finally:
        mp.undo()
    return root


@pytest.fixture
def shared_cache(runs, monkeypatch):
    """The cache the module's `runs` were trained with (their encoded latents), instead of an empty one."""
    monkeypatch.setenv("LATENTFORGE_CACHE", str(runs / "cache"))
    return runs / "cache"
