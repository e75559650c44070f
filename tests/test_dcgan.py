"""DCGAN on the shared Trainer: a non-DeAE task drives the same loop, run folder, resume and CLI."""
import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge.cli.main import main
from latentforge.config import build_config
from latentforge.metrics.pixel import mean_pairwise_distance, rms_distance
from latentforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from latentforge.tasks import load_run

GAN = ["data.resolution=16", "train.batch_size=32", "train.log_every=1", "train.sample_every=1000",
       "train.checkpoint_every=1000", "train.grid_size=4"]


def _train_records(run_dir):
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "run"
    latentforge.train("dcgan", data="digits", steps=40, out=out, preset="tiny", progress=False, overrides=GAN)
    return out


def test_losses_finite_and_discriminator_not_stuck(gan_run):
    recs = _train_records(gan_run)
    assert [r["step"] for r in recs] == list(range(1, 41))
    for key in ("loss", "g_loss", "d_real", "d_fake"):
        assert all(np.isfinite(r[key]) for r in recs)
    acc = np.array([r["d_acc"] for r in recs])
    assert ((acc > 0.02) & (acc < 0.98)).any()  # D is neither always wrong nor always perfect
    assert acc.std() > 0  # and it moves


def test_run_json_has_exact_generator_parameters(gan_run):
    info = json.loads((gan_run / "run.json").read_text())
    task = load_run(gan_run).task
    assert info["model_type"] == "dcgan"
    assert info["task"]["generator_parameters"] == sum(p.numel() for p in task.G.parameters())
    assert info["task"]["latent"] == {"kind": "gaussian", "dim": 16}


def test_samples_change_with_the_latent_and_are_reproducible(gan_run):
    task = load_run(gan_run).task
    a = task.sample(16, seed=0)
    assert a.shape == (16, 1, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, task.sample(16, seed=0))
    assert rms_distance(a, task.sample(16, seed=1)).mean() > 1e-3
    assert mean_pairwise_distance(a) > 1e-3
    assert torch.equal(task.sample(4, seed=0), a[:4])  # small requests see full-batch statistics
    path = task.interpolate(pairs=2, steps=5)
    assert path.shape == (10, 1, 16, 16)
    assert rms_distance(path[0:1], path[1:2]) < rms_distance(path[0:1], path[4:5])


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    sets = GAN + ["train.checkpoint_every=5", "model.n_dis=2", "model.g_ema=true"]
    full, part = tmp_path / "full", tmp_path / "part"
    latentforge.train("dcgan", data="digits", steps=12, out=full, preset="tiny", progress=False, overrides=sets)
    latentforge.train("dcgan", data="digits", steps=12, out=part, preset="tiny", progress=False, overrides=sets,
                      until_step=7)
    latentforge.train("dcgan", out=part, resume=True, progress=False)
    a, b = _train_records(full), _train_records(part)
    for key in ("loss", "d_acc"):
        np.testing.assert_allclose([r[key] for r in a], [r[key] for r in b], rtol=1e-5, atol=1e-7)
    # with n_dis=2 the generator updates on even steps only, and only those records carry its loss
    assert [r["step"] for r in a if "g_loss" in r] == [2, 4, 6, 8, 10, 12]
    assert [r["g_loss"] for r in a if "g_loss" in r] == pytest.approx([r["g_loss"] for r in b if "g_loss" in r],
                                                                      rel=1e-5)
    wa, wb = load_run(full).task, load_run(part).task
    for name in ("G", "D"):
        sa, sb = wa.modules()[name].state_dict(), wb.modules()[name].state_dict()
        assert all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6) for k in sa)
    assert torch.equal(wa.sample(8, seed=3), wb.sample(8, seed=3))  # EMA generator restored too


def test_hinge_loss_and_spectral_norm_train(tmp_path):
    out = tmp_path / "r"
    latentforge.train("dcgan", data="digits", steps=6, out=out, preset="tiny", progress=False,
                      overrides=GAN + ["model.loss=hinge", "model.d_norm=spectral"])
    recs = _train_records(out)
    assert all(np.isfinite(r["loss"]) for r in recs)
    task = load_run(out).task
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in task.D.modules())
    assert task.sample(4).shape == (4, 1, 16, 16)


def test_width_scales_the_generator_only():
    counts = [sum(p.numel() for p in DCGANGenerator(128, 3, 32, w).parameters()) for w in (0.125, 0.5, 1, 2, 2.5)]
    assert counts == sorted(counts) and counts[0] < 100_000 and counts[-1] > 5_000_000  # ~50k .. ~5M at 32 px
    cfg = build_config("paper", model_type="dcgan")
    assert (cfg.model.g_optim.lr, cfg.model.g_optim.betas, cfg.model.loss) == (2e-4, (0.5, 0.999), "ns")
    d = [sum(p.numel() for p in DCGANDiscriminator(3, 32, 64).parameters()) for _ in range(2)]
    assert d[0] == d[1]
    g = DCGANGenerator(7, 1, 16, 0.5)  # any latent dimension
    assert g(torch.randn(3, 7)).shape == (3, 1, 16, 16)


def test_cli_samples_interpolates_and_refuses_reconstruct(gan_run, tmp_path, capsys):
    assert main(["sample", str(gan_run), "--n", "4", "--out", str(tmp_path / "s.png"), "--bn", "running"]) == 0
    assert main(["interpolate", str(gan_run), "--pairs", "2", "--steps", "3", "--out", str(tmp_path / "i.png")]) == 0
    assert (tmp_path / "s.png").is_file() and (tmp_path / "i.png").is_file()
    assert main(["reconstruct", str(gan_run), "--out", str(tmp_path / "r.png")]) == 2
    assert "a dcgan run cannot reconstruct" in capsys.readouterr().err


def test_resume_with_another_model_is_refused(gan_run):
    with pytest.raises(latentforge.ConfigError, match="holds a dcgan run"):
        latentforge.train("deae", out=gan_run, resume=True, progress=False)
