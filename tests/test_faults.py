"""Faults that must never cost a run: a kill at any moment (also mid-checkpoint), a damaged checkpoint file, a torn
log line, a loss that turns NaN."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import latentforge
from latentforge.api import load_run
from latentforge.cli.main import main
from latentforge.errors import TrainingDiverged
from latentforge.tasks.deae import DeAETask
from latentforge.utils.checkpoint import CorruptCheckpointError, load_checkpoint
from conftest import train_losses

FAST = ["data.resolution=16", "model.enc_widths=[16,32,64]", "model.mask_active=[1,2]", "model.latent_dim=16",
        "train.batch_size=16", "train.log_every=1", "train.sample_every=1000", "train.grid_size=4", "train.threads=1",
        "data.limit=128", "train.keep_checkpoints=3"]


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real = DeAETask.train_step

    def poisoned(self, batch):
        logs = real(self, batch)
        return logs | {"mse": float("nan")} if batch.step == 5 else logs

    monkeypatch.setattr(DeAETask, "train_step", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 6: non-finite mse=nan.*last good checkpoint is step 3"):
        latentforge.train("deae", data="digits", steps=12, out=out, preset="tiny", progress=False,
                          overrides=FAST + ["train.checkpoint_every=3"])
    assert [p.name for p in sorted((out / "checkpoints").glob("*.safetensors"))] == ["step_0000003.safetensors"]
    assert max(r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())) == 5
    info = json.loads((out / "run.json").read_text())
    assert info["state"] == "diverged" and info["diverged_at_step"] == 6
    code = main(["train", "deae", "--out", str(out), "--resume", "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: training diverged at step 6") and "grad_clip" in err
    assert "Traceback" not in err


def test_a_damaged_checkpoint_falls_back_to_the_one_before(tmp_path):
    ref = tmp_path / "ref"
    latentforge.train("deae", data="digits", steps=8, out=ref, preset="tiny", progress=False,
                      overrides=FAST + ["train.checkpoint_every=4"])
    out = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=8, out=out, preset="tiny", progress=False,
                      overrides=FAST + ["train.checkpoint_every=4"])
    path = out / "checkpoints" / "step_0000008.safetensors"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the tensor payload
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="checksum"):
        load_checkpoint(path)
    with pytest.warns(UserWarning, match="falling back"):
        assert load_run(out).step == 4
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 9, "lo')  # a torn last line, as a kill mid-write leaves it
    with pytest.warns(UserWarning, match="falling back"):
        latentforge.train("deae", out=out, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(out), train_losses(ref), rtol=1e-5, atol=1e-7)
    assert load_run(out).step == 8


@pytest.mark.slow  # six training subprocesses: about 90 s on 2 busy cores
def test_kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    """SIGKILL a training subprocess at random moments (checkpoints every step, so kills land in saves too), resume
    each time; the finished run's losses and weights match a run that was never interrupted."""
    steps = 30
    args = ["--steps", str(steps), "--preset", "tiny", "--no-progress", "--no-report"]
    sets = [x for s in FAST + ["train.checkpoint_every=1"] for x in ("--set", s)]
    ref = tmp_path / "ref"
    cmd = [sys.executable, "-m", "latentforge", "train", "deae", "--data", "digits"]
    subprocess.run([*cmd, "--out", str(ref), *args, *sets], check=True, capture_output=True,
                   env=os.environ | {"OMP_NUM_THREADS": "1"})
    out = tmp_path / "run"
    rng = random.Random(0)
    kills = 0
    for attempt in range(4):
        resume = ["--resume"] if (out / "config.yaml").is_file() else [*sets]
        proc = subprocess.Popen([*cmd, "--out", str(out), *args, *resume], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=os.environ | {"OMP_NUM_THREADS": "1"})
        deadline = time.time() + 60
        target = rng.randint(2, steps - 2)  # kill once the log shows this step (+ a random sub-step delay)
        while proc.poll() is None and time.time() < deadline:
            done = len(train_losses(out)) if (out / "metrics.jsonl").is_file() else 0
            if done >= target:
                time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        proc.wait()
    assert kills >= 2
    subprocess.run([*cmd, "--out", str(out), *args, "--resume"], check=True, capture_output=True,
                   env=os.environ | {"OMP_NUM_THREADS": "1"})
    np.testing.assert_allclose(train_losses(out), train_losses(ref), rtol=1e-5, atol=1e-7)
    a = load_checkpoint(out / "checkpoints" / f"step_{steps:07d}.safetensors")[0]["modules"]
    b = load_checkpoint(ref / "checkpoints" / f"step_{steps:07d}.safetensors")[0]["modules"]
    for name in a:
        assert all(torch.allclose(a[name][k], b[name][k], atol=1e-6) for k in a[name])
    assert not list((out / "checkpoints").glob("*.tmp"))  # no half-written file left behind
    assert json.loads((out / "run.json").read_text())["state"] == "finished"
