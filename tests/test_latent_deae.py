"""The latent DeAE: a DeAE trained on an autoencoder run's cached latents, sampled through its decoder."""
import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge import records
from latentforge.api import load_run
from latentforge.cli.main import main
from latentforge.config import build_config
from latentforge.data.latent_cache import LatentDataset
from latentforge.errors import ConfigError
from latentforge.latents.patterns import kmeans_clusters
from latentforge.models.deae import DeAENet
from latentforge.tasks.latent_deae import LatentDeAETask
from latentforge.utils.checkpoint import load_checkpoint
from conftest import train_losses, train_on_a_source

LD_TINY = ["train.batch_size=16", "train.log_every=1", "train.sample_every=20", "train.checkpoint_every=20",
           "train.keep_checkpoints=10", "train.grid_size=4", "model.mask_clusters=4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 24-step AE on 96 digits at 16 px (4x4x4 latents) and a 40-step latent DeAE on its latents."""
    return train_on_a_source(tmp_path_factory.mktemp("latent_deae"), "ae", "latent-deae", 40, LD_TINY)


def test_decoder_halves_fit_other_sizes_than_the_pattern_encoder():
    net = DeAENet(4, 32, (16, 32, 64, 128), 24, "constant", out_channels=4, out_resolution=8)
    assert net.mask_channels == (16, 32, 64)  # the 32 px pattern code, whatever is decoded
    masks = [torch.ones(3, c) for c in net.mask_channels]
    assert net(torch.randn(3, 4, 32, 32), masks).shape == (3, 4, 8, 8)
    net4 = DeAENet(4, 32, (16, 32, 64, 128), 24, out_channels=2, out_resolution=4, dec_widths=(40,))
    assert net4(torch.randn(3, 4, 32, 32), masks).shape == (3, 2, 4, 4)
    with pytest.raises(ValueError, match="output resolution 8 needs 2"):
        DeAENet(4, 32, (16, 32, 64, 128), 24, out_resolution=8, dec_widths=(40,))
    pixel = DeAENet(3, 32, (16, 32, 64, 128), 24)  # the pixel DeAE is unchanged: the decoder mirrors the encoder
    assert pixel(torch.randn(2, 3, 32, 32), [torch.ones(2, c) for c in pixel.mask_channels]).shape == (2, 3, 32, 32)
    assert pixel.from_latent.out_features == 128 * 4 and pixel.to_image[-1].out_channels == 3


def test_the_run_trains_on_the_pinned_sources_latents_with_latent_clusters(runs, shared_cache):
    loaded = load_run(runs / "latent-deae")
    cfg = loaded.cfg
    assert cfg.model.source.run == str((runs / "ae").resolve()) and cfg.model.source.step == 24
    assert cfg.data.name == "digits" and cfg.data.limit == 96  # the source's data
    info = json.loads((runs / "latent-deae" / "run.json").read_text())
    assert info["dataset"]["kind"] == "latents" and info["dataset"]["count"] == 96
    assert (info["dataset"]["channels"], info["dataset"]["resolution"]) == (4, 4)
    assert info["task"]["source"]["model_type"] == "ae" and info["task"]["latent_shape"] == [4, 4, 4]
    _, latents = LatentDeAETask.prepare(cfg, progress=False)
    assert isinstance(latents, LatentDataset)
    assert info["task"]["latent_scale"] == pytest.approx(1 / latents.std(), rel=1e-5)
    # the clustered code groups the latents, not the pixels
    state = load_checkpoint(runs / "latent-deae" / "checkpoints" / "step_0000040.safetensors")[0]
    np.testing.assert_array_equal(state["clusters"].numpy(), kmeans_clusters(latents.latents.numpy(), 4, seed=0))
    assert loaded.task.net.out_resolution == 4 and loaded.task.net.resolution == 32  # latent out, 32 px code


def test_samples_and_reconstructions_are_images_from_the_source_decoder(runs, shared_cache, tmp_path):
    task = load_run(runs / "latent-deae").task
    ae = load_run(runs / "ae").task
    s = task.sample(6, seed=2)
    assert s.shape == (6, 1, 16, 16) and s.min() >= -1 and s.max() <= 1
    assert torch.equal(s, task.sample(6, seed=2)) and not torch.equal(s, task.sample(6, seed=3))
    raw = task.reconstruct_outputs([0, 5, 7])
    assert raw.shape == (3, 4, 4, 4)
    torch.testing.assert_close(task.reconstruct([0, 5, 7]), ae.decode(raw / task.latent_scale))
    assert task.interpolate(pairs=2, steps=3).shape == (6, 1, 16, 16)
    assert task.encode_fresh(5, seed=0).shape == (5, 32)  # the pattern latent a GAN can be fed
    assert main(["reconstruct", str(runs / "latent-deae"), "--indices", "0-3", "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").stat().st_size > 0


def test_plateau_is_read_in_latent_space_and_in_pixels(runs):
    recs = [json.loads(line) for line in (runs / "latent-deae" / "metrics.jsonl").read_text().splitlines()]
    for r in recs:
        records.check(r)
    diags = [r for r in recs if r["kind"] == "diagnostic"]
    assert [d["step"] for d in diags] == [20, 40]
    for d in diags:
        assert d["discrimination_space"] == "latent"
        assert 0 < d["pattern_discrimination_ratio"] and 0 < d["pattern_discrimination_ratio_pixels"]
        assert "in latent space" in d["note"]
    summary = [r for r in recs if r["kind"] == "summary"][-1]
    assert 0 < summary["recon_rms_heldout"] < 0.5  # the source's floor, in pixels


def test_it_leaves_the_plateau_on_a_small_set(runs, shared_cache, tmp_path):
    """The patterns are told apart: own-pattern latents end far closer than other examples' (ratio < 0.5)."""
    res = latentforge.train("latent-deae", steps=150, out=tmp_path / "learn", preset="tiny", progress=False,
                            overrides=[f"model.source.run={runs / 'ae'}", "train.batch_size=32", "train.log_every=50",
                                       "train.sample_every=1000", "train.checkpoint_every=1000",
                                       "model.mask_clusters=0"])
    assert res.summary["pattern_discrimination_ratio"] < 0.5
    assert res.summary["pattern_discrimination_ratio_pixels"] < 0.8


def test_resume_is_exact_and_an_image_term_trains_through_the_frozen_decoder(runs, shared_cache, tmp_path):
    part = tmp_path / "part"
    overrides = [f"model.source.run={runs / 'ae'}", *LD_TINY]
    latentforge.train("latent-deae", steps=40, out=part, preset="tiny", progress=False, overrides=overrides,
                      until_step=20)
    latentforge.train("latent-deae", out=part, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(part), train_losses(runs / "latent-deae"), rtol=1e-5, atol=1e-7)

    ae_before = {k: v.clone() for k, v in load_run(runs / "ae").task.decoder.state_dict().items()}
    res = latentforge.train("latent-deae", steps=6, out=tmp_path / "img", preset="tiny", progress=False,
                            overrides=[*overrides, "model.loss.pixel=mse"])
    assert res.summary["image_mse"] > 0 and res.summary["latent_mse"] > 0
    assert res.summary["loss"] == pytest.approx(res.summary["latent_mse"] + res.summary["image_mse"], rel=1e-5)
    ae_after = load_run(runs / "ae").task.decoder.state_dict()
    assert all(torch.equal(ae_before[k], ae_after[k]) for k in ae_before)  # the source stays frozen


def test_config_refuses_image_augmentation_and_a_source_that_is_not_an_autoencoder(runs, shared_cache, tmp_path):
    with pytest.raises(ConfigError, match="augment images"):
        build_config("tiny", None, ["model.flip=true"], model_type="latent-deae")
    with pytest.raises(ConfigError, match="nothing to train on"):
        build_config("tiny", None, ["model.latent_loss_weight=0"], model_type="latent-deae")
    with pytest.raises(ConfigError, match="needs an autoencoder run"):
        LatentDeAETask.prepare(build_config("tiny", None, [f"model.source.run={runs / 'latent-deae'}"],
                                            model_type="latent-deae"), progress=False)


def test_a_gan_can_be_fed_the_latent_deaes_pattern_latent(runs, shared_cache, tmp_path):
    res = latentforge.train("dcgan", data="digits", steps=3, out=tmp_path / "gan", preset="tiny", progress=False,
                            overrides=["data.resolution=16", "data.limit=96", "model.latent.kind=deae",
                                       f"model.latent.source.run={runs / 'latent-deae'}",
                                       "train.batch_size=16", "train.sample_every=1000", "train.grid_size=4"])
    info = json.loads((tmp_path / "gan" / "run.json").read_text())
    assert info["dataset"]["kind"] == "images" and info["dataset"]["resolution"] == 16
    latent = load_run(tmp_path / "gan").cfg.model.latent
    assert latent.source.module == "net" and latent.source.step == 40
    assert res.step == 3
