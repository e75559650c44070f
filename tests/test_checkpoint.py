import pytest
import torch
from safetensors.torch import save_file

from latentforge.errors import CheckpointError
from latentforge.utils.checkpoint import load_checkpoint, save_checkpoint
from latentforge.train.loop import check_compatible


def test_round_trip_nested_state_with_optimizer(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.5, 0.9))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"step": 7, "modules": {"net": net.state_dict()}, "optimizers": {"opt": opt.state_dict()}}
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, state, {"step": 7, "note": "x"})
    loaded, info = load_checkpoint(path)
    assert info == {"step": 7, "note": "x"}
    assert (tmp_path / "ck.json").is_file()
    assert loaded["step"] == 7
    assert torch.equal(loaded["modules"]["net"]["weight"], net.weight)
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(loaded["optimizers"]["opt"])  # int keys and param groups survive the trip
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert list(tmp_path.glob("*.tmp")) == []


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a latentforge checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.safetensors")


def test_compatibility_check_names_the_key():
    cur = {"model_type": "deae", "model": {"latent_dim": 8, "sample_bn": "batch"}, "train": {"seed": 0},
           "data": {"resolution": 16}}
    check_compatible(cur, {**cur, "model": {"latent_dim": 8, "sample_bn": "running"}}, "p",
                     ignore=frozenset({"sample_bn"}))
    with pytest.raises(CheckpointError, match="model.latent_dim=16"):
        check_compatible(cur, {**cur, "model": {"latent_dim": 16, "sample_bn": "batch"}}, "p")
    with pytest.raises(CheckpointError, match="data.resolution=32"):
        check_compatible(cur, {**cur, "data": {"resolution": 32}}, "p")
    with pytest.raises(CheckpointError, match="train.seed"):
        check_compatible(cur, {**cur, "train": {"seed": 1}}, "p")


def test_a_checkpoint_from_another_version_says_so(tmp_path):
    import json

    import latentforge
    from latentforge.api import load_run
    from latentforge.errors import CheckpointError

    from conftest import TINY

    out = tmp_path / "r"
    latentforge.train("deae", data="digits", steps=2, out=out, preset="tiny", progress=False, overrides=TINY)
    info = json.loads((out / "run.json").read_text())
    assert info["versions"]["latentforge"] == latentforge.__version__
    info["versions"]["latentforge"] = "0.0.1"
    info["dataset"]["channels"] = 3  # what an incompatible older layout looks like: the weights no longer fit
    (out / "run.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=r"does not fit.*written by latentforge 0\.0\.1; this is "):
        load_run(out)
    del info["versions"]["latentforge"]
    (out / "run.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="older than 0.1.0"):
        load_run(out)
