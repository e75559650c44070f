"""The README's main job, shortened only where it must be: marked slow (about 4 minutes on 2 cores)."""
import json

import pytest

from latentforge.cli.main import main


@pytest.mark.slow
def test_readme_main_job_learns_digits(tmp_path, capsys):
    out = tmp_path / "deae-digits"
    assert main(["train", "deae", "--data", "digits", "--preset", "cpu16", "--steps", "3000", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"run folder: {out}" in printed and "samples:" in printed
    summary = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]
    # each example comes back from its own pattern, not from a neighbour's
    assert summary["recon_rms_own_pattern"] < 0.6 * summary["recon_rms_vs_other_image"]
    # samples are diverse (no collapse) and digit-like (close to some training digit, not to the mean image)
    assert summary["sample_diversity_rms"] > 0.5 * summary["train_diversity_rms"]
    assert summary["sample_nn_rms_mean"] < 0.15
