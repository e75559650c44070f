"""Every record kind written by real runs is one `latentforge.records` declares, and everything that reads records
(compare's columns, the evaluation guide, the HTML report) finds a value for each model it applies to."""
import json

import pytest

import latentforge
from latentforge import records
from latentforge.metrics import guide
from latentforge.report.compare import COLUMNS, compare_rows
from latentforge.report.html import build_report
from latentforge.report.records import read_run

SETS = ["data.resolution=16", "data.limit=160", "train.sample_every=10", "train.log_every=1"]  # 20 points: stability
APPLIES = {"pattern_discrimination_ratio": {"deae"}, "recon_rms_heldout": {"ae"}}  # model-specific columns


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    runs = {}
    for model in ("deae", "ae"):
        out = root / model
        latentforge.train(model, data="digits", steps=20, out=out, preset="tiny", progress=False,
                          overrides=SETS + (["model.enc_widths=[16,32,64]", "model.mask_active=[1,2]"] if model == "deae" else []))
        latentforge.evaluate_run(out, n=120, features="effnet", progress=False)
        runs[model] = out
    return runs


def test_every_written_record_is_a_declared_kind_with_its_keys(evaluated):
    for model, out in evaluated.items():
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert {r["kind"] for r in rows} == {"train", "diagnostic", "summary", "eval"}
        for r in rows:
            records.check(r)
        ev = next(r for r in rows if r["kind"] == "eval")
        assert set(ev) <= records.keys("eval")[1], set(ev) - records.keys("eval")[1]  # eval records are closed
        diag = [r for r in rows if r["kind"] == "diagnostic"]
        assert all(set(d) <= records.keys("diagnostic")[1] for d in diag), model


def test_compare_fills_every_column_for_the_models_it_applies_to(evaluated):
    recs = [read_run(evaluated["deae"]), read_run(evaluated["ae"])]
    ids, rows, _ = compare_rows(recs)
    by_model = dict(zip(("deae", "ae"), rows, strict=True))
    for col in COLUMNS:
        if col.key == "flags":  # no flag raised: an empty cell, and the column is left out
            continue
        cid = next((c for c in ids if c.split("@")[0] == col.key), None)
        assert cid is not None, col.key  # every column is shown
        for model, row in by_model.items():
            wanted = model in APPLIES.get(col.key, {model})
            assert (row.get(cid) is not None) == wanted, (col.key, model)
    assert 0 < by_model["ae"]["recon_rms_heldout"] < 0.5


def test_the_guide_and_the_report_read_declared_keys_and_fill_their_rows(evaluated):
    ev = read_run(evaluated["ae"]).last_eval
    for fig in guide.FIGURES:
        assert fig.key in records.keys("eval")[1]
        assert guide.value_text(fig, ev) != "-", fig.key  # effnet has logits, so IS is there too
    with pytest.raises(KeyError, match="declare no key"):
        records.field("eval", "distinct_fraction")  # the key the report once read by mistake
    page = build_report([evaluated["deae"], evaluated["ae"]])
    assert "recon held-out" in page and "pattern discr." in page and "distinct samples" in page
