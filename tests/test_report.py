"""Reports and comparisons: what they read, what they refuse, and that the page is self-contained."""
import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

import latentforge
from latentforge.cli.main import main
from latentforge.errors import LatentforgeError
from latentforge.report.compare import compare_rows, render_table
from latentforge.report.html import build_report, write_report
from latentforge.report.records import read_run
from latentforge.report.stability import loss_stability

from conftest import TINY

DCGAN_TINY = ["data.resolution=16", "train.batch_size=16", "train.log_every=1", "train.checkpoint_every=1000",
              "train.grid_size=4"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    deae, gan = root / "deae", root / "gan"
    latentforge.train("deae", data="digits", steps=24, out=deae, preset="tiny", progress=False,
                      overrides=TINY + ["train.sample_every=8"])
    latentforge.train("dcgan", data="digits", steps=24, out=gan, preset="tiny", progress=False,
                      overrides=DCGAN_TINY + ["train.sample_every=12"])
    return deae, gan


def _add_eval(run, network, fid):
    record = {"kind": "eval", "step": 24, "feature_network": network, "fid": fid, "fid_heldout_vs_train": 0.5,
              "kid": 0.1, "precision": 0.9, "recall": 0.4, "coverage": 0.3, "diversity_ratio": 0.8, "n_fake": 10,
              "n_reference": 10, "reference_split": "test", "collapse_flag": False, "memorisation_flag": False}
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


def _images(page):
    return re.findall(r'<img[^>]*src="([^"]+)"', page)


def test_run_page_embeds_every_figure_and_references_nothing_outside(two_runs):
    deae, _ = two_runs
    page = build_report([deae])
    srcs = _images(page)
    assert len(srcs) >= 2 + 3 + 1  # losses, diagnostics, three sample grids, reconstructions
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.load()
        assert img.width >= 16 and img.height >= 16
    # nothing fetched or linked outside the page: no external src/href, no url(), no @import
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "url(" not in page and "@import" not in page
    for section in ("Metrics", "Training", "Stability", "Samples over training", "Reconstructions", "Cost", "Config"):
        assert f"<h3>{section}</h3>" in page
    assert "Not evaluated yet" in page and "peak memory" in page
    assert "enc_widths" in page  # the full config


def test_peak_memory_and_stability_are_recorded(two_runs):
    rec = read_run(two_runs[0])
    assert rec.info["peak_memory_mib"] > 50 and rec.info["peak_memory_kind"]
    assert len(rec.train) == 24 and len(rec.grids) == 3 and [g.step for g in rec.grids] == [8, 16, 24]


def test_compare_splits_columns_by_feature_network(two_runs, tmp_path):
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(two_runs[0], a)
    shutil.copytree(two_runs[1], b)
    _add_eval(a, "net-one", 12.0)
    _add_eval(b, "net-two", 34.0)
    ids, rows, headers = compare_rows([read_run(a), read_run(b)])
    assert "fid@net-one" in ids and "fid@net-two" in ids and "fid" not in ids
    assert rows[0]["fid@net-one"] == 12.0 and rows[0]["fid@net-two"] is None
    assert rows[1]["fid@net-two"] == 34.0 and rows[1]["fid@net-one"] is None
    assert "net-one" in headers["fid@net-one"] and "[img/s]" in headers["img_per_s"]
    text = render_table(ids, rows, headers)
    assert "separate columns" in text and text.count("\n") >= 3
    _add_eval(b, "net-one", 20.0)  # re-evaluated in the same network: one column again
    ids, rows, _ = compare_rows([read_run(a), read_run(b)])
    assert [rows[0]["fid@net-one"], rows[1]["fid@net-one"]] == [12.0, 20.0] and "fid@net-two" not in ids
    assert {r["model"] for r in rows} == {"deae", "dcgan"}
    assert all(r["parameters"] > 0 and r["step"] == 24 for r in rows)


def test_stability_counts_spikes_and_wobble():
    rng = np.random.default_rng(0)
    smooth = list(1.0 + 0.01 * rng.standard_normal(200))
    spiky = list(smooth)
    for i in (120, 150, 180):
        spiky[i] = 3.0
    s, p = loss_stability(smooth), loss_stability(spiky)
    assert s["spikes"] == 0 and p["spikes"] == 3 and p["max_spike_ratio"] > 2.5
    assert 0.005 < s["relative_wobble"] < 0.02 and p["relative_wobble"] > 3 * s["relative_wobble"]
    assert loss_stability([1.0, 2.0])["spikes"] is None  # too short to say


def test_cli_report_compare_and_multi_run_page(two_runs, tmp_path, capsys):
    deae, gan = two_runs
    out = tmp_path / "both.html"
    assert main(["report", str(deae), str(gan), "--out", str(out), "--no-model"]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    page = out.read_text()
    assert "<h2>Comparison</h2>" in page and page.count("<h2 id=") == 2
    assert "Reconstructions" not in page  # --no-model reads files only
    assert main(["compare", str(deae), str(gan), "--json", str(tmp_path / "t.json"),
                 "--csv", str(tmp_path / "t.csv")]) == 0
    printed = capsys.readouterr().out
    assert "deae" in printed and "dcgan" in printed and "has been evaluated yet" in printed
    table = json.loads((tmp_path / "t.json").read_text())
    assert [r["run"] for r in table["rows"]] == ["deae", "gan"]
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("run,model,data")
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_train_writes_the_report(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "deae", "--data", "digits", "--preset", "tiny", "--steps", "4", "--out", str(out),
                 "--no-progress", *[x for kv in TINY for x in ("--set", kv)]]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert (out / "report.html").is_file()
    other = tmp_path / "s"
    assert main(["train", "deae", "--data", "digits", "--preset", "tiny", "--steps", "2", "--out", str(other),
                 "--no-progress", "--no-report", *[x for kv in TINY for x in ("--set", kv)]]) == 0
    assert not (other / "report.html").exists()
    with pytest.raises(LatentforgeError, match="at least one"):
        write_report([])


def test_tensorboard_events_mirror_the_metrics_and_resume_purges(tmp_path):
    from tensorboardX.proto import event_pb2

    def events(path):
        data, pos = path.read_bytes(), 0
        while pos < len(data):  # TFRecord framing: length (8), crc (4), payload, crc (4)
            n = int.from_bytes(data[pos:pos + 8], "little")
            yield event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 12 + n + 4

    def scalars(run):
        out = {}
        for path in sorted(run.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
            for ev in events(path):
                for v in ev.summary.value:
                    out.setdefault(v.tag, {})[ev.step] = v.simple_value
        return out

    out = tmp_path / "r"
    latentforge.train("deae", data="digits", steps=6, out=out, preset="tiny", progress=False,
                      overrides=TINY + ["train.sample_every=3", "train.checkpoint_every=3"], until_step=5)
    (out / "checkpoints" / "step_0000005.safetensors").unlink()  # as if the job died between checkpoints
    latentforge.train("deae", out=out, resume=True, progress=False)  # from step 3: steps 4 and 5 are redone
    files = sorted(out.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    assert len(files) == 2
    purge = [ev.step for ev in events(files[1]) if ev.HasField("session_log")]
    assert purge == [4]  # TensorBoard drops the first session's steps >= 4 when it reads the folder
    tb = scalars(out)
    losses = {r["step"]: r["loss"] for r in read_run(out).train}
    assert sorted(tb["train/loss"]) == list(range(1, 7)) == sorted(losses)
    assert all(abs(tb["train/loss"][s] - losses[s]) < 1e-5 * max(1.0, abs(losses[s])) for s in losses)
    assert "diagnostic/pattern_discrimination_ratio" in tb and 3 in tb["diagnostic/pattern_discrimination_ratio"]


def _chromium():
    import shutil
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_report_renders_in_headless_chromium(two_runs, tmp_path):
    """Open the page in a real browser: every figure must decode (naturalWidth > 0) and be laid out visibly, and the
    screenshot must not be blank. `.ci/run` installs Debian's chromium when it is missing."""
    import subprocess

    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's `chromium`; apt was unavailable here)")
    page = build_report(list(two_runs))
    probe = ("<script>window.addEventListener('load',()=>{const r=[...document.images].map(i=>[i.naturalWidth,"
             "i.naturalHeight,i.getBoundingClientRect().width,i.getBoundingClientRect().height,"
             "getComputedStyle(i).visibility]);document.body.setAttribute('data-images',JSON.stringify(r));});"
             "</script>")
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", probe + "</body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"data-images=\"([^\"]*)\"", dom.stdout)
    assert found, dom.stderr[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == len(_images(page)) >= 6
    for natural_w, natural_h, shown_w, shown_h, visibility in images:
        assert natural_w > 0 and natural_h > 0 and shown_w > 0 and shown_h > 0 and visibility == "visible"
    report = tmp_path / "report.html"
    report.write_text(page)
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri()],
                   capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (2400, 1200) and img.std() > 10  # text and figures, not a blank page


def test_every_command_help_shows_an_example(capsys):
    from latentforge.cli.main import COMMANDS

    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        example = text.split("example:", 1)[1].strip().splitlines()[0] if "example:" in text else ""
        assert example.startswith(f"latentforge {command}"), (command, text[-300:])


def test_sweep_page_shows_the_curves_and_the_c_eps_table(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(sweep / "quality_vs_params.png")
    cells = [{"cell": f"{lat}-w{w}-s0", "latent": lat, "width": w, "seed": 0, "generator_parameters": p,
              "wall_s": 10.0, "metrics": {"fid": f}, "status": "done"}
             for lat, w, p, f in [("gaussian", 0.5, 1000, 90.0), ("gaussian", 1, 4000, 60.0), ("ssl", 0.5, 1000, 50.0)]]
    table = [{"latent": "ssl", "c_eps": 900.0, "reached": True, "bracketed": False, "best": 50.0, "best_params": 1000,
              "rank": 1},
             {"latent": "gaussian", "c_eps": 3000.0, "reached": True, "bracketed": True, "best": 60.0,
              "best_params": 4000, "rank": 2}]
    (sweep / "sweep.json").write_text(json.dumps({
        "metric": "fid", "feature_network": "lf-classifier-x@1", "cells": cells, "n_done": 3, "n_failed": 0,
        "n_pending": 0, "plot": "quality_vs_params.png",
        "c_eps": [{"eps": 70.0, "eps_source": "given", "table": table}]}))
    page = build_report([sweep])
    assert "C_eps at eps = 70" in page and "lf-classifier-x@1" in page and page.count("<tr>") >= 1 + 2 + 1 + 3
    assert len(_images(page)) == 1
    (sweep / "sweep.json").write_text("{broken")
    with pytest.raises(LatentforgeError, match="--collect"):
        build_report([sweep])


def test_a_real_evaluation_fills_every_row_of_the_printout_and_the_report(tmp_path, capsys):
    """From a real evaluated run: every figure the record has shows its value, its held-out value where held-out
    images have one, and which direction is better, in the terminal and on the page; both end in one reading."""
    from latentforge.metrics.guide import FIGURES, reference_value

    run = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=6, out=run, preset="tiny", progress=False,
                      overrides=TINY + ["data.limit=200"])
    assert main(["eval", str(run), "--n", "64", "--features", "trained", "--feature-net-steps", "20"]) == 0
    printed = capsys.readouterr().out
    rec = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    shown = [f for f in FIGURES if f.key in rec]
    assert {"fid", "kid", "precision", "recall", "density", "coverage", "sample_distinct_fraction",
            "near_copy_fraction", "nn_feature_ratio_vs_heldout"} <= {f.key for f in shown}
    for fig in shown:
        line = next(ln for ln in printed.splitlines() if ln.strip().startswith(fig.label + " "))
        assert f"{rec[fig.key]:.4g}" in line and line.rstrip().endswith(fig.better) or "collapsed" in line
        ref = reference_value(fig, rec)
        if ref is not None:
            assert f"{ref:.4g}" in line
    assert re.search(r"^reading: (close to held-out images on|far on) ", printed, re.M)
    page = build_report([run])
    table = page[page.index("<th>metric</th>"):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert len(rows) == len(shown)
    for label, value, held, better, meaning in rows:
        assert value != "-" and better in ("lower", "higher", "near held-out") and meaning
    kid_row = next(r for r in rows if r[0] == "KID")
    assert "±" in kid_row[1] and "±" not in kid_row[2]  # the spread sits with its value
    distinct = next(r for r in rows if r[0] == "distinct samples")
    assert float(distinct[1]) == pytest.approx(rec["sample_distinct_fraction"], rel=1e-3)
    assert "<b>Reading:</b>" in page
