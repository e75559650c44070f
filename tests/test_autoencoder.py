"""The autoencoders behind latent priors: joint (`ae`) and decoupled (`dae`), on tiny digits."""
import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge.api import load_run
from latentforge.data import load_dataset
from latentforge.errors import ConfigError
from latentforge.models.autoencoder import AEDecoder, AEEncoder, kl_to_standard_normal
from latentforge.utils.checkpoint import load_checkpoint
from conftest import train_losses

AE_TINY = ["data.resolution=16", "data.limit=96", "train.batch_size=16", "train.log_every=1",
           "train.sample_every=1000", "train.checkpoint_every=6", "train.keep_checkpoints=10", "train.grid_size=4"]


def _state(run, step, module):
    state, _ = load_checkpoint(run / "checkpoints" / f"step_{step:07d}.safetensors")
    return state["modules"][module]


@pytest.fixture(scope="module")
def dae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dae") / "run"
    latentforge.train("dae", data="digits", steps=24, out=out, preset="tiny", progress=False, overrides=AE_TINY)
    return out


def test_shapes_and_kl():
    enc, dec = AEEncoder(3, 32, 4, 8, base=16), AEDecoder(3, 32, 4, 8, base=16, width=0.5, dropout=0.4)
    mean, logvar = enc(torch.randn(2, 3, 32, 32))
    assert mean.shape == logvar.shape == (2, 4, 8, 8)
    assert dec(mean).shape == (2, 3, 32, 32)
    assert sum(isinstance(m, torch.nn.Dropout2d) for m in dec.modules()) == 3  # after every residual block
    assert kl_to_standard_normal(torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8)).abs().max() == 0
    with pytest.raises(ValueError, match="power of two"):
        AEEncoder(3, 32, 4, 6)


def test_stage_two_freezes_the_encoder_and_starts_a_fresh_decoder(dae_run):
    """stage2_start 0.5 of 24 steps: stage 1 is steps 0-11, stage 2 steps 12-23 (checkpoints every 6)."""
    enc_12, enc_24 = _state(dae_run, 12, "encoder"), _state(dae_run, 24, "encoder")
    assert all(torch.equal(enc_12[k], enc_24[k]) for k in enc_12)  # bit-identical through stage 2
    enc_6 = _state(dae_run, 6, "encoder")
    assert any(not torch.equal(enc_6[k], enc_12[k]) for k in enc_6)  # it did train in stage 1
    dec_6, dec_12, dec_24 = (_state(dae_run, s, "decoder") for s in (6, 12, 24))
    assert all(torch.equal(dec_6[k], dec_12[k]) for k in dec_6)  # untouched in stage 1: its initial weights
    assert any(not torch.equal(dec_12[k], dec_24[k]) for k in dec_12)  # trained in stage 2
    aux_12, aux_24 = _state(dae_run, 12, "aux_decoder"), _state(dae_run, 24, "aux_decoder")
    assert all(torch.equal(aux_12[k], aux_24[k]) for k in aux_12)  # the weak decoder is done after stage 1
    stages = [r.get("stage") for r in map(json.loads, (dae_run / "metrics.jsonl").read_text().splitlines())
              if r["kind"] == "train"]
    assert stages == [1.0] * 12 + [2.0] * 12
    # the frozen latents themselves: identical from the stage-2 start checkpoint and the final one
    early, final = load_run(dae_run, step=12).task, load_run(dae_run).task
    x = load_dataset(final.cfg.data).get(torch.arange(8))
    assert torch.equal(early.encode(x), final.encode(x))


def test_each_stage_checkpoint_loads_alone_and_samples(dae_run):
    mid, end = load_run(dae_run, step=6).task, load_run(dae_run).task
    assert mid.reached_step == 6 and mid.active_decoder(mid.reached_step) is mid.aux_decoder
    assert end.reached_step == 24 and end.active_decoder(end.reached_step) is end.decoder
    for task in (mid, end):
        s = task.sample(5, seed=3)
        assert s.shape == (5, 1, 16, 16) and s.min() >= -1 and s.max() <= 1
        assert torch.equal(s, task.sample(5, seed=3))
        assert task.reconstruct([0, 1]).shape == (2, 1, 16, 16)
    summary = [json.loads(x) for x in (dae_run / "metrics.jsonl").read_text().splitlines()
               if json.loads(x)["kind"] == "summary"][-1]
    assert 0 < summary["recon_rms_heldout"] < 0.5 and 0 < summary["recon_rms_train"] < 0.5


def test_resume_in_the_middle_of_stage_two_is_exact(dae_run, tmp_path):
    part = tmp_path / "part"
    latentforge.train("dae", data="digits", steps=24, out=part, preset="tiny", progress=False, overrides=AE_TINY,
                      until_step=18)
    latentforge.train("dae", out=part, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(part), train_losses(dae_run), rtol=1e-5, atol=1e-7)
    a, b = _state(part, 24, "decoder"), _state(dae_run, 24, "decoder")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_joint_baseline_trains_encoder_and_decoder_throughout(tmp_path):
    out = tmp_path / "ae"
    latentforge.train("ae", data="digits", steps=24, out=out, preset="tiny", progress=False, overrides=AE_TINY)
    e12, e24 = _state(out, 12, "encoder"), _state(out, 24, "encoder")
    assert any(not torch.equal(e12[k], e24[k]) for k in e12)
    assert set(load_checkpoint(out / "checkpoints" / "step_0000024.safetensors")[0]["modules"]) == {"encoder",
                                                                                                     "decoder"}
    losses = train_losses(out)
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    with pytest.raises(ConfigError, match="stage2_start"):
        latentforge.train("ae", data="digits", steps=2, out=tmp_path / "bad", preset="tiny", progress=False,
                          overrides=AE_TINY + ["model.stage2_start=0.3"])


def test_stage_two_from_another_runs_encoder(tmp_path):
    """model.encoder_from: a stage-2-only run on a jointly trained encoder, frozen bit-identical, fresh decoder."""
    ae = tmp_path / "ae"
    latentforge.train("ae", data="digits", steps=6, out=ae, preset="tiny", progress=False, overrides=AE_TINY)
    out = tmp_path / "stage2"
    latentforge.train("dae", data="digits", steps=12, out=out, preset="tiny", progress=False,
                      overrides=AE_TINY + [f"model.encoder_from.run={ae}"])
    source = _state(ae, 6, "encoder")
    for step in (6, 12):
        enc = _state(out, step, "encoder")
        assert all(torch.equal(source[k], enc[k]) for k in source)
    assert set(load_checkpoint(out / "checkpoints" / "step_0000012.safetensors")[0]["modules"]) == {"encoder",
                                                                                                     "decoder"}
    task = load_run(out).task
    assert task.cfg.model.encoder_from.step == 6 and task.stage(0) == "stage2"
    info = json.loads((out / "run.json").read_text())["task"]
    assert info["encoder_from"]["run"] == str(ae.resolve()) and info["aux_decoder"] is None
    d6, d12 = _state(out, 6, "decoder"), _state(out, 12, "decoder")
    assert any(not torch.equal(d6[k], d12[k]) for k in d6)
    with pytest.raises(ConfigError, match="does not fit"):
        latentforge.train("dae", data="digits", steps=2, out=tmp_path / "bad", preset="tiny", progress=False,
                          overrides=AE_TINY + [f"model.encoder_from.run={ae}", "model.latent_channels=8"])
