"""The first hour of a new user, through the real console script (subprocesses): every failure is one `error:`
line with exit code 2 and leaves the run folder as it was; interrupted runs exit 130; a run says what it is doing
when nobody is watching a terminal."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


SCRIPT = shutil.which("latentforge", path=str(Path(sys.executable).parent)) or shutil.which("latentforge")
from conftest import TINY as TINY_SETS

TINY = ["--data", "digits", "--preset", "tiny", "--set", "data.limit=200",
        *[arg for kv in TINY_SETS for arg in ("--set", kv)]]


def cli(*args: str, env: dict | None = None, umask: int | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    assert SCRIPT, "the latentforge console script is not installed"
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=(os.environ | env) if env else None,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    proc = cli("train", "deae", *TINY, "--steps", "2", "--out", run)
    assert proc.returncode == 0, proc.stderr
    return run


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def test_a_refused_resume_leaves_the_run_folder_unchanged(run_copy, tmp_path):
    before = snapshot(run_copy)
    one_error_line(cli("train", "deae", "--out", run_copy, "--resume", "--steps", "4", "--set", "model.latent_dim=24"),
                   "latent_dim")
    assert snapshot(run_copy) == before
    assert cli("sample", run_copy, "--n", "4", "--out", tmp_path / "s.png").returncode == 0

    ckpt = max((run_copy / "checkpoints").glob("*.safetensors"))
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # a truncated checkpoint
    before = snapshot(run_copy)
    one_error_line(cli("train", "deae", "--out", run_copy, "--resume", "--steps", "4"), str(ckpt.name))
    assert snapshot(run_copy) == before  # config.yaml still says 2 steps


def test_preset_or_config_on_resume_is_refused(run_copy, tmp_path):
    before = snapshot(run_copy)
    one_error_line(cli("train", "deae", "--out", run_copy, "--resume", "--preset", "cpu16"), "--preset", "'tiny'")
    (tmp_path / "c.yaml").write_text("train: {steps: 9}\n")
    one_error_line(cli("train", "deae", "--out", run_copy, "--resume", "--config", tmp_path / "c.yaml"), "--config")
    assert snapshot(run_copy) == before


def test_unwritable_destinations_fail_before_any_work(trained, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    nowhere = blocker / "sub"  # unwritable for every user, root included
    one_error_line(cli("sample", trained, "--n", "2", "--out", nowhere / "s.png"), "cannot write the samples")
    one_error_line(cli("sample", trained, "--n", "2", "--out-dir", nowhere), "cannot write the samples")
    one_error_line(cli("interpolate", trained, "--out", nowhere / "i.png"), "cannot write the interpolations")
    one_error_line(cli("train", "deae", *TINY, "--steps", "1", "--out", nowhere / "run"), "run folder")
    one_error_line(cli("train", "deae", *TINY, "--steps", "1", "--out", tmp_path / "r2",
                       env={"LATENTFORGE_CACHE": str(nowhere)}), "LATENTFORGE_CACHE")
    if os.geteuid() != 0:  # mode bits only bind other users
        ro = tmp_path / "read-only"
        ro.mkdir(mode=0o500)
        one_error_line(cli("sample", trained, "--n", "2", "--out", ro / "s.png"), "cannot write the samples")


def test_bad_numbers_are_refused_with_one_line(trained, tmp_path):
    one_error_line(cli("train", "deae", *TINY, "--steps", "-5", "--out", tmp_path / "neg"), "--steps", "at least 1")
    assert not (tmp_path / "neg").exists()
    one_error_line(cli("train", "deae", *TINY, "--set", "train.steps=0", "--out", tmp_path / "zero"), "train.steps")
    one_error_line(cli("interpolate", trained, "--pairs", "0", "--out", tmp_path / "i.png"), "--pairs")
    one_error_line(cli("sample", trained, "--n", "0", "--out", tmp_path / "s.png"), "--n")
    one_error_line(cli("eval", trained, "--n", "x"), "--n", "whole number")


def test_messages_name_what_to_change(trained, tmp_path):
    if not torch.cuda.is_available():
        line = one_error_line(cli("sample", trained, "--n", "2", "--out", tmp_path / "s.png", "--device", "cuda"))
        assert "--device cpu" in line and "train.device" not in line
    proc = cli("sample", trained, "--n", "2", "--out-dir", f"{tmp_path / 'many'}/")
    assert proc.returncode == 0 and "//" not in proc.stdout and len(list((tmp_path / "many").glob("*.png"))) == 2
    help_text = " ".join(cli("train", "--help").stdout.split())
    assert "cpu16" in help_text and "default: paper on a GPU, cpu on a CPU" in help_text


def test_default_preset_follows_the_device_and_a_redirected_run_reports_progress(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "deae", "--data", "digits", "--steps", "6", "--out", out, "--set", "data.limit=128",
               "--set", "train.log_every=1")
    assert proc.returncode == 0, proc.stderr
    expected = "paper" if torch.cuda.is_available() else "cpu"
    assert f"preset: {expected} (chosen for this machine" in proc.stdout
    if expected == "cpu":  # the cpu preset fits its pattern code to the data first, and says so
        assert "patterns: k-means of 128 images into 32 clusters x 16 sub-clusters" in proc.stdout
    assert (out / "config.yaml").read_text().count(f"preset: {expected}") == 1
    start = next(ln for ln in proc.stdout.splitlines() if ln.startswith("training deae"))
    assert "parameters" in start and "digits (128 train images, 32x32x1)" in start and "6 steps" in start
    assert "first steps:" in proc.stdout and "s/step" in proc.stdout
    assert "step 6/6" in proc.stdout  # plain progress lines: stdout is not a terminal here
    info = json.loads((out / "run.json").read_text())
    assert info["state"] == "finished" and info["step"] == 6 and info["duration_s"] > 0 and info["sessions"] == 1
    # six steps leave a DeAE on its plateau: the grid's caption, the log and the last line all say so
    caption = json.loads((out / "samples" / "step_0000006.json").read_text())
    assert caption["step"] == 6 and caption["on_plateau"] and caption["pattern_discrimination_ratio"] > 0.9
    assert "on the plateau" in caption["note"] and "note: the run ended on the plateau" in proc.stdout


def test_ctrl_c_saves_and_exits_130(tmp_path):
    out = tmp_path / "run"
    # a shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt: give the
    # child the default disposition, as a terminal would
    proc = subprocess.Popen([SCRIPT, "train", "deae", *TINY, "--steps", "100000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline:
        metrics = out / "metrics.jsonl"
        if metrics.is_file() and sum(1 for ln in metrics.read_text().splitlines() if '"train"' in ln) >= 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted at step" in err and "--resume" in err
    info = json.loads((out / "run.json").read_text())
    assert info["state"] == "interrupted" and info["step"] >= 2
    assert any((out / "checkpoints").glob("*.safetensors"))
    summary = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if '"summary"' in ln]
    assert summary[-1]["state"] == "interrupted"


def test_checkpoints_follow_the_umask(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "deae", *TINY, "--steps", "1", "--out", out, umask=0o022).returncode == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o644}, modes


def test_eval_seconds_count_the_whole_evaluation(trained, tmp_path):
    proc = cli("eval", trained, "--n", "40", "--features", "trained", "--feature-net-steps", "5", "--json", tmp_path / "e.json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((tmp_path / "e.json").read_text())
    parts = rec["eval_seconds_parts"]
    assert set(parts) == {"load_s", "feature_network_s", "sampling_s", "scoring_s"}
    assert rec["eval_seconds"] >= sum(parts.values()) - 0.05 and rec["eval_seconds"] >= rec["scoring_seconds"]


def test_out_of_memory_reads_as_advice(monkeypatch, capsys):
    """An allocator failure mid-training is one line that says what to change, not a traceback."""
    import latentforge.api
    from latentforge.cli.main import main

    def oom(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 123456789012 bytes")
    monkeypatch.setattr(latentforge.api, "train", oom)
    assert main(["train", "deae", "--data", "digits", "--out", "/tmp/never-written", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and "train.batch_size" in err and "--resume" in err
    assert err.count("\n") == 1

    def other(*a, **k):
        raise RuntimeError("a genuine bug")
    monkeypatch.setattr(latentforge.api, "train", other)
    with pytest.raises(RuntimeError, match="genuine bug"):  # not every RuntimeError is dressed up as advice
        main(["train", "deae", "--data", "digits", "--out", "/tmp/never-written", "--steps", "2"])


def _png_folder(folder: Path, n: int, corrupt: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    for i in range(corrupt):
        (folder / f"broken{i}.png").write_bytes(b"not a png")
    return folder


def test_too_few_images_are_refused_before_any_work_and_leave_no_folder(tmp_path):
    """A one-image folder (and an unreadable file) used to train at batch 1 and fail later in eval."""
    data = _png_folder(tmp_path / "one", 1, corrupt=1)
    out = tmp_path / "runs" / "one"
    proc = cli("train", "deae", "--data", data, "--preset", "tiny", "--steps", "2", "--out", out,
               "--set", "data.resolution=16", "--set", "data.test_fraction=0")
    one_error_line(proc, "1 usable images", "at least 8")
    assert not out.exists() and not out.parent.exists()


def test_failed_commands_create_nothing_and_remove_nothing(tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    empty = tmp_path / "empty"
    empty.mkdir()
    for data in (tmp_path / "missing", empty):
        proc = cli("train", "deae", "--data", data, "--preset", "tiny", "--steps", "2", "--out", keep / "run")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert not (keep / "run").exists()
    proc = cli("train", "deae", *TINY, "--steps", "2", "--out", keep / "run", "--set", "data.resolution=3")
    assert proc.returncode == 2 and not (keep / "run").exists()
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_train_takes_device_and_a_device_error_comes_first(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "deae", "--data", "digits", "--device", "cuda", "--steps", "2", "--out", out)
    one_error_line(proc, "no CUDA device")
    assert "preset:" not in proc.stdout and not out.exists()
    proc = cli("train", "deae", "--data", "digits", "--bogus", "--out", out)
    one_error_line(proc, "unrecognized arguments: --bogus", "see `latentforge train --help`")


def test_a_small_folder_says_the_batch_shrinks(tmp_path):
    data = _png_folder(tmp_path / "few", 12)
    out = tmp_path / "run"
    proc = cli("train", "deae", "--data", data, "--preset", "tiny", "--steps", "2", "--out", out, "--no-report",
               *[arg for kv in TINY_SETS for arg in ("--set", kv)], "--set", "data.test_fraction=0",
               "--set", "train.batch_size=32", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "note: the batch shrinks from 32 to 12: the data has only 12 images" in proc.stdout
