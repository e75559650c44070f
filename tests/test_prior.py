"""The latent diffusion prior: trained on an autoencoder run's cached latents, sampled through its decoder."""
import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge.api import load_run
from latentforge.cli.main import main
from latentforge.config import build_config
from latentforge.data import load_dataset
from latentforge.data.latent_cache import latent_cache_key
from latentforge.errors import CheckpointError, ConfigError
from latentforge.tasks.prior import PriorTask
from latentforge.utils.checkpoint import load_checkpoint
from conftest import train_losses, train_on_a_source

PRIOR_TINY = ["train.batch_size=16", "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=10",
              "train.keep_checkpoints=10", "train.grid_size=4", "model.sample_steps=4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 24-step DAE on 96 digits at 16 px (4x4x4 latents) and a 30-step prior on its latents."""
    return train_on_a_source(tmp_path_factory.mktemp("prior"), "dae", "prior", 30, PRIOR_TINY)


def test_the_run_pins_its_source_and_trains_on_cached_latents(runs, shared_cache):
    cfg = load_run(runs / "prior").cfg
    assert cfg.model.source.run == str((runs / "dae").resolve()) and cfg.model.source.step == 24
    assert cfg.data.name == "digits" and cfg.data.resolution == 16 and cfg.data.limit == 96  # the source's data
    info = json.loads((runs / "prior" / "run.json").read_text())
    assert info["dataset"]["kind"] == "latents" and info["dataset"]["count"] == 96
    assert (info["dataset"]["channels"], info["dataset"]["resolution"]) == (4, 4)
    src = info["task"]["source"]
    assert src["step"] == 24 and src["model_type"] == "dae" and len(src["sha256"]) == 64

    entries = list((shared_cache / "latents").glob("*.safetensors"))
    assert len(entries) == 1 and entries[0].stem == info["dataset"]["fingerprint"]
    dae = load_run(runs / "dae").task
    images = load_dataset(cfg.data)
    _, latents = PriorTask.prepare(cfg, progress=False)
    torch.testing.assert_close(latents.get(torch.arange(96)), dae.encode(images.get(torch.arange(96))))
    assert info["task"]["latent_scale"] == pytest.approx(1 / latents.std(), rel=1e-5)
    # keyed by the encoder checkpoint and the images: another step or other images give another entry
    key = latent_cache_key(src["sha256"], "encoder", False, images)
    assert key == entries[0].stem
    other = load_dataset(cfg.data.model_copy(update={"limit": 95}))
    assert latent_cache_key(src["sha256"], "encoder", False, other) != key
    assert latent_cache_key("0" * 64, "encoder", False, images) != key


def test_prior_loss_decreases(runs):
    losses = train_losses(runs / "prior")
    assert len(losses) == 30
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:5])


def test_samples_are_images_from_the_source_decoder(runs, shared_cache):
    loaded = load_run(runs / "prior")
    s = loaded.task.sample(6, seed=2)
    assert s.shape == (6, 1, 16, 16) and s.min() >= -1 and s.max() <= 1
    assert torch.equal(s, loaded.task.sample(6, seed=2))
    assert not torch.equal(s, loaded.task.sample(6, seed=3))
    z = loaded.task.sample_latents(6, seed=2)
    assert z.shape == (6, 4, 4, 4)
    dae = load_run(runs / "dae").task
    torch.testing.assert_close(dae.decode(z), s)  # prior -> the DAE's stage-2 decoder
    rows = loaded.task.interpolate(pairs=2, steps=5, seed=0)
    assert rows.shape == (10, 1, 16, 16)
    first, last = rows[0], rows[4]
    assert (rows[1] - first).abs().mean() < (last - first).abs().mean()  # a path, not five unrelated images


def test_each_stage_loads_alone_and_a_changed_source_is_refused(runs, shared_cache, tmp_path):
    import shutil

    assert set(load_checkpoint(runs / "prior" / "checkpoints" / "step_0000030.safetensors")[0]["modules"]) == {"unet"}
    assert load_run(runs / "dae").task.reached_step == 24  # the autoencoder needs nothing of the prior
    moved = tmp_path / "prior"
    shutil.copytree(runs / "prior", moved)
    dae_copy = tmp_path / "dae"
    shutil.copytree(runs / "dae", dae_copy)
    cfg_path = moved / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace(str((runs / "dae").resolve()), str(dae_copy.resolve())))
    assert load_run(moved).task.sample(2, seed=0).shape == (2, 1, 16, 16)  # same weights elsewhere: fine
    ck = dae_copy / "checkpoints" / "step_0000024.safetensors"
    shutil.copy(dae_copy / "checkpoints" / "step_0000012.safetensors", ck)  # other weights under the same name
    with pytest.raises(CheckpointError, match="not the one this run was built on"):
        load_run(moved)


def test_resume_in_the_middle_of_the_prior_is_exact(runs, shared_cache, tmp_path):
    part = tmp_path / "part"
    overrides = [f"model.source.run={runs / 'dae'}", *PRIOR_TINY]
    latentforge.train("prior", steps=30, out=part, preset="tiny", progress=False, overrides=overrides, until_step=20)
    latentforge.train("prior", out=part, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(part), train_losses(runs / "prior"), rtol=1e-5, atol=1e-7)
    a = load_checkpoint(part / "checkpoints" / "step_0000030.safetensors")[0]["ema"]["unet"]
    b = load_checkpoint(runs / "prior" / "checkpoints" / "step_0000030.safetensors")[0]["ema"]["unet"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_prior_needs_an_autoencoder_source(runs, shared_cache, tmp_path, capsys):
    with pytest.raises(ConfigError, match="source.run is not set"):
        latentforge.train("prior", steps=2, out=tmp_path / "a", preset="tiny", progress=False)
    with pytest.raises(ConfigError, match="module must be 'encoder' here"):
        latentforge.train("prior", steps=2, out=tmp_path / "b", preset="tiny", progress=False,
                          overrides=[f"model.source.run={runs / 'dae'}", "model.source.module=decoderx"])
    prior_of_prior = build_config("tiny", None, [f"model.source.run={runs / 'prior'}"], model_type="prior")
    with pytest.raises(ConfigError, match="needs an autoencoder run"):
        PriorTask.prepare(prior_of_prior, progress=False)
    with pytest.raises(ConfigError, match="3 times"):
        latentforge.train("prior", steps=2, out=tmp_path / "c", preset="tiny", progress=False,
                          overrides=[f"model.source.run={runs / 'dae'}", "model.widths=[8,8,8,8]"])
    assert main(["train", "deae", "--from", str(runs / "dae"), "--out", str(tmp_path / "d")]) == 2
    assert "--from is for models that build on another run (prior, latent-deae), not deae" in capsys.readouterr().err
    assert main(["train", "prior", "--from", str(runs / "dae"), "--data", "mnist", "--out", str(tmp_path / "e")]) == 2
    assert "--data cannot be combined with --from" in capsys.readouterr().err
