"""The CLI contract other tools rely on, end to end on a tiny run."""
import json
import subprocess
import sys

import numpy as np
import torch
import pytest
from PIL import Image

from latentforge.cli.main import main

from conftest import TINY


def _sets():
    return [a for s in TINY for a in ("--set", s)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "deae", "--data", "digits", "--steps", "6", "--out", str(out), "--preset", "tiny",
                 "--no-progress", *_sets(), "--set", "train.sample_every=3"])
    assert code == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "step_0000006.safetensors").is_file()
    assert (run_dir / "checkpoints" / "step_0000006.json").is_file()
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["step_0000003.png", "step_0000006.png"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss"]) and r["img_per_s"] > 0 for r in train)
    summary = records[-1]
    assert summary["kind"] == "summary" and 0 <= summary["recon_rms_own_pattern"] <= 1
    info = json.loads((run_dir / "run.json").read_text())
    assert info["task"]["loss"]["perceptual"] == "laplacian"  # the loss network is recorded
    assert info["dataset"]["resolution"] == 16


def test_sample_grid_and_folder(run_dir, tmp_path):
    grid = tmp_path / "g.png"
    assert main(["sample", str(run_dir), "--n", "9", "--out", str(grid)]) == 0
    im = np.asarray(Image.open(grid))
    assert im.shape == (3 * 66 + 2, 3 * 66 + 2)  # 3x3 tiles of 16 px shown 4x (64 px), 2 px padding, grayscale
    assert (im[2:66, 2:66].reshape(16, 4, 16, 4) == im[2:66:4, 2:66:4][:, None, :, None]).all()  # nearest: blocks
    folder = tmp_path / "each"
    assert main(["sample", str(run_dir), "--n", "5", "--out-dir", str(folder), "--bn", "running"]) == 0
    files = sorted(folder.glob("*.png"))
    assert len(files) == 5
    arr = np.asarray(Image.open(files[0]))
    assert arr.shape == (16, 16) and arr.dtype == np.uint8 and arr.max() > arr.min()


def test_reconstruct_and_interpolate(run_dir, tmp_path):
    assert main(["reconstruct", str(run_dir), "--indices", "0-3,7", "--out", str(tmp_path / "r.png")]) == 0
    # five training images, each beside its reconstruction: four pairs per row, 64-px tiles
    grid = np.asarray(Image.open(tmp_path / "r.png"))
    assert grid.shape == (2 * 66 + 2, 8 * 66 + 2)
    from latentforge.api import load_run
    from latentforge.data import load_dataset
    from latentforge.utils.images import to_uint8

    seventh = to_uint8(load_dataset(load_run(run_dir).cfg.data).get(torch.tensor([7])))[0, ..., 0]
    assert np.array_equal(grid[68:132:4, 2:66:4], seventh)  # the fifth pair, second row: the original on the left
    assert main(["interpolate", str(run_dir), "--pairs", "2", "--steps", "4", "--out", str(tmp_path / "i.png")]) == 0
    assert Image.open(tmp_path / "i.png").size == (4 * 66 + 2, 2 * 66 + 2)


def test_resume_via_cli(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert main(["train", "deae", "--out", str(copy), "--steps", "8", "--resume", "--no-progress"]) == 0
    assert (copy / "checkpoints" / "step_0000008.safetensors").is_file()
    # --no-progress drops the bar, not what a log file needs: the start line and a plain progress line remain
    out = capsys.readouterr().out
    assert "resuming deae at step 6 (" in out and "step 8/8 loss" in out


@pytest.mark.parametrize("argv,needle", [
    (["train", "deae", "--data", "/no/such/folder", "--steps", "2", "--out", "{tmp}/a"], "neither a built-in"),
    (["train", "deae", "--data", "digits", "--steps", "2", "--out", "{tmp}/b", "--set", "train.stepz=1"],
     "did you mean 'train.steps'"),
    (["train", "deae", "--data", "digits", "--steps", "2", "--out", "{tmp}/c", "--set", "data.resolution=24"],
     "power of two"),
    (["sample", "{tmp}/nothing", "--n", "4", "--out", "{tmp}/x.png"], "run folder not found"),
    (["reconstruct", "{run}", "--indices", "999999", "--out", "{tmp}/x.png"], "out of range"),
])
def test_bad_input_gives_one_line_error(argv, needle, tmp_path, run_dir, capsys):
    argv = [a.format(tmp=tmp_path, run=run_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert err.startswith("error: ")


def test_corrupt_checkpoint_is_reported(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "broken"
    shutil.copytree(run_dir, copy)
    (copy / "checkpoints" / "step_0000006.safetensors").write_bytes(b"\x00" * 100)
    assert main(["sample", str(copy), "--n", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_console_script_entry_point_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "latentforge", "datasets"], capture_output=True, text=True, check=True)
    assert "digits" in out.stdout and "emoji" in out.stdout and "mnist" in out.stdout


def test_openmp_wait_policy_is_chosen_before_torch_loads():
    import subprocess
    import sys

    from latentforge.utils.threads import choose_wait_policy

    env = {}
    assert choose_wait_policy(env, torch_loaded=False, load=1.5, cpus=2).startswith("PASSIVE (busy: load 1.5")
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {}
    assert choose_wait_policy(env, torch_loaded=False, load=0.2, cpus=2).startswith("default") and env == {}
    env = {"OMP_WAIT_POLICY": "active"}
    assert choose_wait_policy(env, torch_loaded=False, load=3.0, cpus=2) == "ACTIVE (set by OMP_WAIT_POLICY)"
    assert "torch was imported" in choose_wait_policy({}, torch_loaded=True, load=3.0, cpus=2)
    # importing latentforge (as the command line does) chooses before torch loads
    code = "import latentforge.utils.threads as t, latentforge.cli.main; print(t.wait_policy_note())"
    note = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    assert note and "torch was imported" not in note


def test_a_run_that_slows_down_on_a_busy_machine_is_told_how_to_continue():
    from latentforge.utils.threads import SlowdownWatch

    watch = SlowdownWatch(factor=3.0, warmup=2, cpus=2)
    assert [watch.observe(v, load=4.0, spinning=True) for v in (5, 50)] == [None, None]  # warm-up intervals
    assert watch.observe(200, load=4.0, spinning=True) is None  # the best so far
    assert watch.observe(80, load=4.0, spinning=True) is None  # slower, but not 3x
    assert watch.observe(60, load=1.0, spinning=True) is None  # 3x slower on an idle machine: not contention
    advice = watch.observe(60, load=4.0, spinning=True)
    assert "60 img/s from 200" in advice and "OMP_WAIT_POLICY=PASSIVE" in advice and "--resume" in advice
    assert watch.observe(10, load=4.0, spinning=True) is None  # said once
    passive = SlowdownWatch(warmup=0, cpus=2)
    assert passive.observe(200, load=4, spinning=False) is None and passive.observe(10, load=4, spinning=False) is None
