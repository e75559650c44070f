"""The complexity sweep: every cell an ordinary run folder, a complete sweep.json, survival of a kill and of a
failing cell."""
import json
import os

import pytest

from latentforge.cli.main import main
from latentforge.complexity.sweep import Sweep, SweepSpec
from latentforge.train import loop

CELL = ["data.resolution=16", "train.log_every=2", "train.checkpoint_every=3", "data.limit=256"]


def _spec(**kw):
    base = dict(data="digits", latents=["gaussian", "uniform"], widths=[0.25, 1.0], seeds=[0], steps=6,
                preset="tiny", overrides=CELL, eval_n=64, features="trained", feature_net_steps=10, metric="fid")
    return SweepSpec(**(base | kw))


def _check_schema(summary, n_cells):
    assert summary["schema_version"] == 1 and summary["metric"] == "fid"
    assert summary["feature_network"].startswith("lf-") and "@" in summary["feature_network"]
    assert len(summary["cells"]) == n_cells
    for c in summary["cells"]:
        assert {"cell", "latent", "width", "seed", "run_dir", "status"} <= set(c)
        if c["status"] == "done":
            assert c["generator_parameters"] > 0 and c["discriminator_parameters"] > 0 and c["wall_s"] >= 0
            assert {"fid", "kid", "precision", "recall", "coverage", "near_copy_fraction"} <= set(c["metrics"])
            assert c["feature_network"] == summary["feature_network"]
    for latent, rows in summary["curves"].items():
        assert [r["params"] for r in rows] == sorted(r["params"] for r in rows)
    assert summary["c_eps"] and all({"eps", "eps_source", "table"} <= set(e) for e in summary["c_eps"])
    for e in summary["c_eps"]:
        assert sorted(r["rank"] for r in e["table"]) == list(range(1, len(e["table"]) + 1))
        for r in e["table"]:
            assert (r["c_eps"] is None) == (not r["reached"])


def test_sweep_survives_a_kill_and_a_failing_cell(tmp_path, monkeypatch):
    root = tmp_path / "sweep"
    real_fit = loop.Trainer.fit
    calls = {"n": 0}

    def killed_in_second_cell(self, *a, **k):
        calls["n"] += 1
        if calls["n"] != 2:
            return real_fit(self, *a, **k)

        def on_step(step, logs):
            if step == 4:
                raise KeyboardInterrupt
        return real_fit(self, *a, on_step=on_step, **k)

    monkeypatch.setattr(loop.Trainer, "fit", killed_in_second_cell)
    with pytest.raises(KeyboardInterrupt):
        Sweep(root, _spec(), progress=False).run()
    first = root / "cells" / "gaussian-w0.25-s0"
    second = root / "cells" / "gaussian-w1-s0"
    assert any(json.loads(line)["kind"] == "eval" for line in (first / "metrics.jsonl").read_text().splitlines())
    assert (second / "checkpoints" / "step_0000004.safetensors").is_file()
    first_ckpt = (first / "checkpoints" / "step_0000006.safetensors").stat().st_mtime_ns

    monkeypatch.setattr(loop.Trainer, "fit", real_fit)
    # rerun with one more latent whose cells cannot be built (no DeAE run there): recorded, the sweep goes on
    summary = Sweep(root, _spec(latents=["gaussian", "uniform", "deae"], deae_run=str(tmp_path / "missing")),
                    progress=False).run()
    assert (first / "checkpoints" / "step_0000006.safetensors").stat().st_mtime_ns == first_ckpt  # kept
    status = {c["cell"]: c["status"] for c in summary["cells"]}
    assert status == {"gaussian-w0.25-s0": "done", "gaussian-w1-s0": "done", "uniform-w0.25-s0": "done",
                      "uniform-w1-s0": "done", "deae-w0.25-s0": "failed", "deae-w1-s0": "failed"}
    assert "run folder not found" in next(c for c in summary["cells"] if c["latent"] == "deae")["error"]
    resumed = [json.loads(line) for line in (second / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed if r["kind"] == "train"] == [2, 4, 6]  # one run, not two
    on_disk = json.loads((root / "sweep.json").read_text())
    _check_schema(on_disk, 6)
    assert on_disk["n_done"] == 4 and on_disk["n_failed"] == 2
    assert (root / "quality_vs_params.png").stat().st_size > 1000
    g = next(c for c in on_disk["cells"] if c["cell"] == "gaussian-w1-s0")
    assert g["generator_parameters"] > next(c for c in on_disk["cells"]
                                            if c["cell"] == "gaussian-w0.25-s0")["generator_parameters"]


def test_sweep_refuses_other_settings_and_collects(tmp_path, capsys):
    root = tmp_path / "s"
    spec = _spec(latents=["gaussian"], widths=[0.5])
    Sweep(root, spec, progress=False).run()
    with pytest.raises(Exception, match="other settings"):
        Sweep(root, _spec(latents=["gaussian"], widths=[0.5], steps=7), progress=False).run()
    with pytest.raises(Exception, match=r"other settings \(features\)"):  # cells judged by another network
        Sweep(root, _spec(latents=["gaussian"], widths=[0.5], features="effnet"), progress=False).run()
    assert main(["sweep", "--out", str(root), "--collect", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "C_eps at FID <=" in out and "gaussian" in out and "1 cells done" in out
    # a call for one more latent trains only its cells, and the read-out covers the whole grid of the folder
    summary = Sweep(root, _spec(latents=["uniform"], widths=[0.5]), progress=False).run()
    assert sorted(c["cell"] for c in summary["cells"]) == ["gaussian-w0.5-s0", "uniform-w0.5-s0"]
    assert set(summary["curves"]) == {"gaussian", "uniform"}


def test_sweep_cli_rejects_bad_input(tmp_path, capsys):
    assert main(["sweep", "--out", str(tmp_path / "x"), "--data", "digits", "--steps", "2",
                 "--latents", "gaussian,vae"]) == 2
    assert "unknown latent(s) vae" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path / "x"), "--data", "digits", "--steps", "2", "--features", "vgg"]) == 2
    assert "invalid choice: 'vgg'" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path / "y"), "--collect"]) == 2
    assert "holds no sweep" in capsys.readouterr().err


def test_sweep_dae_latent_cells_use_the_given_autoencoder(tmp_path):
    import latentforge

    dae = tmp_path / "dae"
    latentforge.train("dae", data="digits", steps=4, out=dae, preset="tiny", progress=False,
                      overrides=["data.resolution=16", "data.limit=256", "train.batch_size=16"])
    summary = Sweep(tmp_path / "sweep", _spec(latents=["dae"], widths=[0.25], dae_run=str(dae)), progress=False).run()
    (cell,) = summary["cells"]
    assert cell["status"] == "done" and cell["latent_info"]["kind"] == "dae"
    assert cell["latent_info"]["feature_dim"] == 64 and cell["latent_info"]["network"].startswith("dae-encoder@")
    assert not (tmp_path / "sweep" / "dae").exists()  # the given run was used, none trained


def test_sweep_jobs_trains_cells_in_parallel_processes(tmp_path):
    summary = Sweep(tmp_path / "sweep", _spec(latents=["gaussian"]), progress=False, jobs=2).run()
    assert [c["status"] for c in summary["cells"]] == ["done", "done"] and summary["parallel_jobs"] == 2
    for c in summary["cells"]:
        threads = json.loads((tmp_path / "sweep" / c["run_dir"] / "run.json").read_text())["threads"]
        assert threads == max(1, (os.cpu_count() or 1) // 2)  # each job its share of the cores
        assert c["metrics"]["fid"] > 0
    # jobs on other machines may lose each other's grid entries in sweep.yaml: --collect still finds their cells
    import yaml

    path = tmp_path / "sweep" / "sweep.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | {"widths": [0.25]}))
    collected = Sweep.from_folder(tmp_path / "sweep", progress=False).collect()
    assert sorted(c["cell"] for c in collected["cells"]) == ["gaussian-w0.25-s0", "gaussian-w1-s0"]
    assert all(c["status"] == "done" for c in collected["cells"])
