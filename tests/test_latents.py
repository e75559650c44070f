"""Latent distributions for generators: fixed ones, normalisation, projections, samplers, and the learned latents
inside a GAN run (fitted once, stored with the run, reloaded without data)."""
import pytest
import torch

import latentforge
from latentforge.config import LatentConfig
from latentforge.data import load_dataset
from latentforge.latents import make_latent
from latentforge.latents.base import Normalizer, fixed_projection
from latentforge.latents.samplers import EmpiricalSampler, GMMSampler
from latentforge.tasks import load_run

from test_dcgan import GAN


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_fixed_latents(kind):
    lat = make_latent(LatentConfig(kind=kind, dim=8), seed=0)
    z = lat.sample(20_000, _g())
    assert z.shape == (20_000, 8) and torch.isfinite(z).all()
    assert torch.equal(z, lat.sample(20_000, _g()))
    assert z.mean().abs() < 0.02 and (z.var(0) - 1).abs().max() < 0.05  # both have unit variance
    if kind == "uniform":
        assert z.abs().max() <= 3 ** 0.5


@pytest.mark.parametrize("mode", ["standardize", "whiten"])
def test_normalizer(mode):
    x = torch.randn(5000, 4, generator=_g()) @ torch.tensor([[2.0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 3, 0],
                                                             [0, 0, 1, 0.5]]) + 7
    y = Normalizer(mode).fit(x)(x)
    assert y.mean(0).abs().max() < 1e-4
    assert (y.var(0) - 1).abs().max() < 1e-3
    if mode == "whiten":
        assert (torch.cov(y.T) - torch.eye(4)).abs().max() < 1e-3


def test_fixed_projection_is_isometric_or_orthogonal():
    up = fixed_projection(4, 16, seed=0)
    assert torch.allclose(up @ up.T, torch.eye(4), atol=1e-5)  # rows orthonormal: lengths kept
    down = fixed_projection(16, 4, seed=0)
    assert torch.allclose(down.T @ down, torch.eye(4), atol=1e-5)
    assert torch.equal(up, fixed_projection(4, 16, seed=0)) and not torch.equal(up, fixed_projection(4, 16, 1))


def test_empirical_sampler_replays_training_features_without_noise():
    table = torch.randn(50, 3, generator=_g())
    s = EmpiricalSampler(sigma=0.0)
    s.fit(table)
    z = s.sample(200, _g())
    d = (z[:, None] - table[None]).norm(dim=-1).min(1).values
    assert d.max() < 1e-6  # pure replay: what the evaluator's memorisation figures must reveal
    noisy = EmpiricalSampler(sigma=0.5)
    noisy.fit(table)
    assert torch.cdist(noisy.sample(200, _g()), table).min(1).values.mean() > 0.2


def test_gmm_sampler_fits_reloads_and_samples_the_mixture():
    centres = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = centres[torch.arange(900) % 3] + 0.3 * torch.randn(900, 2, generator=_g())
    s = GMMSampler(3)
    s.fit(x, seed=0)
    z = s.sample(3000, _g(1))
    assert z.shape == (3000, 2) and torch.isfinite(z).all()
    nearest = torch.cdist(z, centres).argmin(1)
    assert (torch.bincount(nearest, minlength=3).float() / 3000 - 1 / 3).abs().max() < 0.05
    assert torch.cdist(z, centres).min(1).values.mean() < 0.6
    again = GMMSampler(3)
    again.load_state_dict(s.state_dict())
    assert torch.equal(again.sample(100, _g(2)), s.sample(100, _g(2)))


@pytest.mark.filterwarnings("ignore:SimCLR encoder looks weak")  # a few SimCLR steps: weak by design here
def test_ssl_latent_gan_stores_its_mixture_and_samples_without_data(tmp_path):
    out = tmp_path / "ssl"
    latentforge.train("dcgan", data="digits", steps=4, out=out, preset="tiny", progress=False,
                      overrides=GAN + ["data.limit=300", "model.latent.kind=ssl", "model.latent.ssl_steps=15",
                                       "model.latent.gmm_components=4", "model.latent.dim=null"])
    task = load_run(out).task
    desc = task.describe()["latent"]
    assert desc["kind"] == "ssl" and desc["sampler"] == "gmm" and desc["components"] == 4
    assert desc["network"].startswith("lf-simclr-") and "@" in desc["network"]
    assert desc["dim"] == desc["feature_dim"] and not desc["projected"]
    assert task.G.latent_dim == desc["feature_dim"]
    z = task.latent.sample(500, _g())
    assert abs(float(z.mean())) < 0.3 and 0.5 < float(z.std()) < 1.5  # standardised features
    assert task.sample(6, seed=0).shape == (6, 1, 16, 16)


def test_deae_latent_gan(tmp_path):
    from conftest import TINY

    deae = tmp_path / "deae"
    latentforge.train("deae", data="digits", steps=3, out=deae, preset="tiny", progress=False, overrides=TINY)
    out = tmp_path / "gan"
    latentforge.train("dcgan", data="digits", steps=3, out=out, preset="tiny", progress=False,
                      overrides=GAN + ["model.latent.kind=deae", f"model.latent.source.run={deae}"])
    task = load_run(out).task
    desc = task.describe()["latent"]
    assert desc["kind"] == "deae" and desc["feature_dim"] == 16 and desc["dim"] == 16
    assert desc["source"]["run"] == str(deae.resolve())
    a, b = task.latent.sample(300, _g(0)), task.latent.sample(300, _g(1))
    assert a.shape == (300, 16) and not torch.equal(a, b)
    assert abs(float(a.mean())) < 0.3  # normalised on a bank of fresh latents
    # the GAN stays tied to the DeAE step it was trained with, even after that run trains on
    latentforge.train("deae", out=deae, steps=5, resume=True, progress=False)
    again = load_run(out).task
    assert again.describe()["latent"]["source"]["step"] == 3
    assert torch.equal(again.latent.sample(50, _g(0)), a[:50])
    assert again.describe()["latent"]["source"]["sha256"] == desc["source"]["sha256"]
    # the DeAE checkpoint the GAN was built on is replaced by other weights under the same name: refused
    checkpoints = sorted((deae / "checkpoints").glob("step_*.safetensors"))
    other = checkpoints[-1].read_bytes()
    (deae / "checkpoints" / "step_0000003.safetensors").write_bytes(other)
    with pytest.raises(latentforge.CheckpointError, match="sha256"):
        load_run(out)
    with pytest.raises(latentforge.ConfigError, match="model.latent.source.run"):
        latentforge.train("dcgan", data="digits", steps=1, out=tmp_path / "x", preset="tiny", progress=False,
                          overrides=GAN + ["model.latent.kind=deae"])


def test_dae_latent_gan_samples_the_autoencoders_latents(tmp_path):
    """kind=dae: the training images' latents under a trained autoencoder, flattened, drawn by the sampler."""
    dae = tmp_path / "dae"
    latentforge.train("dae", data="digits", steps=4, out=dae, preset="tiny", progress=False,
                      overrides=["data.resolution=16", "data.limit=64", "train.batch_size=16"])
    out = tmp_path / "gan"
    latentforge.train("dcgan", data="digits", steps=3, out=out, preset="tiny", progress=False,
                      overrides=GAN + ["data.limit=64", "model.latent.kind=dae", f"model.latent.source.run={dae}",
                                       "model.latent.dim=null", "model.latent.sampler=empirical",
                                       "model.latent.sigma=0"])
    task = load_run(out).task
    desc = task.describe()["latent"]
    assert desc["kind"] == "dae" and desc["feature_dim"] == 4 * 4 * 4 and task.G.latent_dim == 64
    assert desc["network"].startswith("dae-encoder@") and desc["network_info"]["step"] == 4
    # sigma 0: the empirical sampler replays the (standardised) training latents exactly
    codes = load_run(dae).task.encode(load_dataset(task.cfg.data).get(torch.arange(64))).flatten(1)
    z = task.latent.sample(20, _g())
    codes_n = (codes - codes.mean(0)) / codes.std(0)
    dist = torch.cdist(z, codes_n, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
    assert float(dist.max()) < 1e-3
    assert task.sample(5, seed=0).shape == (5, 1, 16, 16)
    source = task.cfg.model.latent.source  # pinned like a prior's source: absolute folder, step, module
    assert (source.run, source.step, source.module) == (str(dae.resolve()), 4, "encoder")
    with pytest.raises(latentforge.ConfigError, match="model.latent.source.run"):
        latentforge.train("dcgan", data="digits", steps=1, out=tmp_path / "x", preset="tiny", progress=False,
                          overrides=GAN + ["model.latent.kind=dae"])


def test_run_folders_that_named_their_latent_run_in_deae_run_or_dae_run_still_load(tmp_path):
    """Before `model.latent.source`, a GAN's latent run was a plain folder in `deae_run` / `dae_run`; such configs
    (and `--set model.latent.dae_run=...`) are read as `source.run`."""
    from latentforge.config import RunConfig, build_config

    old = build_config(model_type="dcgan").model_dump(mode="json")
    latent = {k: v for k, v in old["model"]["latent"].items() if k != "source"}
    old["model"]["latent"] = latent | {"kind": "deae", "deae_run": "runs/d", "dae_run": None}
    assert RunConfig.from_dict(old).model.latent.source.run == "runs/d"
    cfg = build_config(model_type="dcgan", overrides=["model.latent.kind=dae", "model.latent.dae_run=runs/a"])
    assert cfg.model.latent.source.run == "runs/a"
