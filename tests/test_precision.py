"""The step's arithmetic and compilation: which precision `auto` picks and why, that bf16 trains the same model and
resumes exactly, and that torch.compile is chosen by its rule and falls back to eager when it fails."""

import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge.train import compiling, precision
from latentforge.train.precision import resolve_precision

from conftest import TINY, train_losses

CPU = torch.device("cpu")


def native_bf16(monkeypatch, feature):
    monkeypatch.setattr(precision, "cpu_bf16_feature", lambda: feature)


def test_auto_picks_bf16_only_on_a_cpu_that_computes_it_natively(monkeypatch):
    native_bf16(monkeypatch, None)
    p = resolve_precision("auto", CPU)
    assert p.name == "fp32" and "no native bf16" in p.reason
    emulated = resolve_precision("bf16", CPU)  # asked for: granted, with the warning in its reason
    assert emulated.name == "bf16" and "emulates" in emulated.reason
    native_bf16(monkeypatch, "amx_bf16")
    p = resolve_precision("auto", CPU)
    assert p.name == "bf16" and "amx_bf16" in p.reason
    assert resolve_precision("fp32", CPU).name == "fp32"
    with p.autocast(CPU):
        y = torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3))
    assert y.dtype == torch.bfloat16
    with resolve_precision("fp32", CPU).autocast(CPU):
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == torch.float32


def test_the_cpu_probe_needs_both_the_feature_and_avx512_kernels(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert precision.cpu_bf16_feature() == "avx512_bf16"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # torch's kernels lack AVX-512
    assert precision.cpu_bf16_feature() is None
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx512f", "avx2"})
    assert precision.cpu_bf16_feature() is None


def test_a_bf16_run_says_why_keeps_fp32_state_and_tracks_fp32(monkeypatch, tmp_path, capsys):
    """On a (pretended) native-bf16 CPU, auto trains under bf16 autocast: the start line and run.json say so; the
    weights, EMA copies and optimizer state stay fp32; the losses follow the fp32 run's within bf16 rounding."""
    native_bf16(monkeypatch, "avx512_bf16")
    sets = TINY + ["train.checkpoint_every=3"]
    latentforge.train("deae", data="digits", steps=6, out=tmp_path / "bf16", preset="tiny", progress=True,
                      bar=False, overrides=sets)
    start = capsys.readouterr().out.splitlines()[0]
    assert "; bf16 (auto: the CPU computes bf16 natively (avx512_bf16))" in start
    info = json.loads((tmp_path / "bf16" / "run.json").read_text())
    assert info["precision"] == "bf16" and "avx512_bf16" in info["precision_reason"]
    from safetensors.torch import load_file
    saved = load_file(tmp_path / "bf16" / "checkpoints" / "step_0000006.safetensors")  # weights, EMA, Adam moments
    assert any("ema" in k for k in saved) and any("exp_avg" in k for k in saved)
    assert {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float32}
    latentforge.train("deae", data="digits", steps=6, out=tmp_path / "fp32", preset="tiny", progress=False,
                      overrides=sets + ["train.precision=fp32"])
    bf16, fp32 = train_losses(tmp_path / "bf16"), train_losses(tmp_path / "fp32")
    assert bf16 != fp32  # another arithmetic ...
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)  # ... the same training


@pytest.mark.parametrize("model,base", [("deae", TINY), ("dcgan", ["data.resolution=16", "train.batch_size=16",
                                                                   "train.log_every=1", "train.sample_every=1000"])])
def test_a_bf16_run_resumes_exactly(tmp_path, model, base):
    sets = base + ["train.precision=bf16", "train.checkpoint_every=2"]
    latentforge.train(model, data="digits", steps=4, out=tmp_path / "whole", preset="tiny", progress=False,
                      overrides=sets)
    latentforge.train(model, data="digits", steps=4, out=tmp_path / "part", preset="tiny", progress=False,
                      overrides=sets, until_step=2)
    latentforge.train(model, out=tmp_path / "part", resume=True, progress=False)
    assert train_losses(tmp_path / "part") == train_losses(tmp_path / "whole")


def test_resuming_under_another_precision_says_so(monkeypatch, tmp_path, capsys):
    native_bf16(monkeypatch, None)
    out = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=4, out=out, preset="tiny", progress=False,
                      overrides=TINY + ["train.checkpoint_every=2"], until_step=2)
    native_bf16(monkeypatch, "amx_bf16")  # the run moved to another machine
    latentforge.train("deae", out=out, resume=True, progress=True, bar=False)
    assert "note: this run trained in fp32 so far and continues in bf16" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["precision"] == "bf16"


def test_the_compile_rule():
    assert compiling.decide(False, "inductor", 1e9) == compiling.CompileDecision(False, "train.compile=false")
    assert compiling.decide(True, "inductor", 1.0).compile
    assert not compiling.decide("auto", "eager", compiling.MIN_REMAINING_S - 1).compile
    yes = compiling.decide("auto", "eager", compiling.MIN_REMAINING_S + 1)
    assert yes.compile and yes.reason.startswith("auto:")


def test_auto_without_a_compiler_stays_eager(monkeypatch):
    monkeypatch.setattr(compiling, "cxx_compiler_works", lambda: None)
    d = compiling.decide("auto", "inductor", 1e9)
    assert not d.compile and "no working C++ compiler" in d.reason
    assert compiling.decide("auto", "eager", 1e9).compile  # graph capture alone needs no compiler


def test_auto_compiles_after_timing_the_first_steps_when_the_run_is_long(monkeypatch, tmp_path, capsys):
    """With the threshold at zero, auto compiles after the first eager steps and keeps compiling when the compiled
    steps are faster (here: whatever they measure); the losses stay the eager run's."""
    monkeypatch.setattr(compiling, "MIN_REMAINING_S", 0.0)
    monkeypatch.setattr(compiling, "MIN_GAIN", -1e9)
    sets = TINY + ["train.compile_backend=eager"]
    latentforge.train("deae", data="digits", steps=14, out=tmp_path / "auto", preset="tiny", progress=True, bar=False,
                      overrides=sets)
    out = capsys.readouterr().out
    assert "compile auto: decided after 5 eager steps" in out.splitlines()[0]
    assert "compiling with torch.compile" in out
    info = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert info["compiled"] is True and info["compile_reason"].startswith("auto: about")
    latentforge.train("deae", data="digits", steps=14, out=tmp_path / "eager", preset="tiny", progress=False,
                      overrides=sets + ["train.compile=false"])
    np.testing.assert_allclose(train_losses(tmp_path / "auto"), train_losses(tmp_path / "eager"), rtol=1e-4)


def test_auto_goes_back_to_eager_when_compiled_steps_are_not_faster(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(compiling, "MIN_REMAINING_S", 0.0)
    monkeypatch.setattr(compiling, "MIN_GAIN", 0.99)  # compiled steps would have to be 100x faster
    sets = TINY + ["train.compile_backend=eager"]
    latentforge.train("deae", data="digits", steps=14, out=tmp_path / "auto", preset="tiny", progress=True, bar=False,
                      overrides=sets)
    out = capsys.readouterr().out
    assert "compiling with torch.compile" in out and "back to eager steps: auto: compiled steps were not faster" in out
    info = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert info["compiled"] is False and "not faster" in info["compile_reason"]
    latentforge.train("deae", data="digits", steps=14, out=tmp_path / "eager", preset="tiny", progress=False,
                      overrides=sets + ["train.compile=false"])
    np.testing.assert_allclose(train_losses(tmp_path / "auto"), train_losses(tmp_path / "eager"), rtol=1e-4)


def test_a_failed_compilation_falls_back_to_eager_with_one_warning(tmp_path, capsys):
    """A backend that fails (as inductor does without a working toolchain) costs one warning: the step is taken
    again eagerly from the state before it, so the run equals an eager run."""
    from torch._dynamo import register_backend

    @register_backend(name="latentforge_test_broken")
    def broken(gm, example_inputs):
        raise RuntimeError("no toolchain here")

    latentforge.train("deae", data="digits", steps=4, out=tmp_path / "broken", preset="tiny", progress=True, bar=False,
                      overrides=TINY + ["train.compile=true", "train.compile_backend=latentforge_test_broken"])
    out = capsys.readouterr().out
    assert out.count("warning: torch.compile failed") == 1 and "no toolchain here" in out
    info = json.loads((tmp_path / "broken" / "run.json").read_text())
    assert info["compiled"] is False and info["compile_reason"].startswith("compilation failed")
    latentforge.train("deae", data="digits", steps=4, out=tmp_path / "eager", preset="tiny", progress=False,
                      overrides=TINY + ["train.compile=false"])
    assert train_losses(tmp_path / "broken") == train_losses(tmp_path / "eager")
