"""Evaluation pipeline: the offline feature network, memorisation, the cached reference features, `latentforge eval`."""
import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge.cli.main import main
from latentforge.config import DataConfig
from latentforge.data import load_dataset
from latentforge.metrics import evaluate as evaluate_mod
from latentforge.metrics.evaluate import dataset_features, evaluate
from latentforge.metrics.features.trained import load_or_train_features
from latentforge.metrics.memorisation import knn, memorisation_report, nn_grid

from conftest import DIGITS16_CLASSIFIER_STEPS, TINY


@pytest.fixture(scope="module")
def digits():
    train = load_dataset(DataConfig(name="digits", resolution=16, cache=False))
    test = load_dataset(DataConfig(name="digits", resolution=16, split="test", cache=False))
    return train, test


@pytest.fixture(scope="module")
def features(digits, digits16_classifier_cache):
    return load_or_train_features(*digits, cache_dir=digits16_classifier_cache, steps=DIGITS16_CLASSIFIER_STEPS,
                                  progress=False)


def test_trained_feature_network_is_named_cached_and_useful(digits, features, digits16_classifier_cache):
    [cached] = (digits16_classifier_cache / "featurenets").glob("digits-*.safetensors")
    written = cached.stat().st_mtime_ns
    again = load_or_train_features(*digits, cache_dir=digits16_classifier_cache, steps=DIGITS16_CLASSIFIER_STEPS,
                                   progress=False)
    assert again.fingerprint == features.fingerprint and cached.stat().st_mtime_ns == written  # read, not retrained
    assert features.name == "lf-classifier-digits" and len(features.fingerprint) == 12
    assert features.info["objective"] == "classes" and features.info["heldout_accuracy"] > 0.6  # chance is 0.1
    f = features.extract(digits[0].get(torch.arange(8)))
    assert f.pool.shape == (8, 128) and f.logits.shape == (8, 10)


@pytest.mark.filterwarnings("ignore:SimCLR encoder looks weak")  # a few SimCLR steps: weak by design here
def test_unlabelled_data_gets_a_contrastive_network_of_another_arch(digits, tmp_path, monkeypatch):
    from latentforge.metrics.evaluate import resolve_features
    from latentforge.metrics.features import contrastive

    monkeypatch.setattr(contrastive, "EVAL_BATCH", 32)
    train, _ = digits
    train = type(train)(train.images[:300], torch.full((300,), -1), "unlabelled", "train", "fp-unlabelled", [], "")
    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path))
    net = resolve_features("trained", train, None, progress=False, trained_steps=3)
    assert net.name == "lf-simclr-convnet-unlabelled" and net.info["seed"] == contrastive.EVAL_SEED
    assert "knn_view_accuracy" in net.info and net.extract(train.get(torch.arange(4))).logits is None
    other = resolve_features("trained", train, None, progress=False, trained_steps=3, avoid=("convnet",))
    assert other.name == "lf-simclr-resnet-s-unlabelled" and other.label != net.label
    with pytest.raises(latentforge.errors.ConfigError, match="no class labels"):
        resolve_features("classifier", train, None, progress=False)


def test_knn_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(7, 5, generator=g), torch.randn(11, 5, generator=g)
    d, i = knn(q, r, k=3, chunk=3)
    brute = torch.cdist(q.double(), r.double())
    expect_d, expect_i = brute.topk(3, largest=False)
    assert torch.allclose(d, expect_d, atol=1e-9) and torch.equal(i, expect_i)


def test_memorisation_flags_exact_copies(digits, features):
    train, test = digits
    train_px = train.get(torch.arange(len(train)))
    test_px = test.get(torch.arange(len(test)))
    copies = train_px[:100]
    f_train = features.extract(train_px).pool
    f_test = features.extract(test_px).pool
    rep, idx = memorisation_report(copies, train_px, test_px, features.extract(copies).pool, f_train, f_test)
    assert rep["near_copy_fraction"] == 1.0 and rep["nn_pixel_rms_median"] < 1e-6
    assert rep["nn_pixel_ratio_vs_heldout"] < 0.01
    assert torch.equal(idx[:, 0], torch.arange(100))
    noise = torch.rand(100, 1, 16, 16) * 2 - 1
    rep2, _ = memorisation_report(noise, train_px, test_px, features.extract(noise).pool, f_train, f_test)
    assert rep2["near_copy_fraction"] == 0.0 and rep2["nn_pixel_ratio_vs_heldout"] > 1.5
    grid = nn_grid(copies, train_px, idx, rows=4)
    assert grid.shape == (4 * 4, 1, 16, 16) and torch.equal(grid[0], grid[1])  # sample, then its copy


def test_evaluate_orders_good_and_bad_samples(digits, features, tmp_path, monkeypatch):
    train, test = digits
    real = train.get(torch.arange(400))
    blurred = torch.nn.functional.avg_pool2d(real, 3, 1, 1)
    good = evaluate(real, train, test, features, kid_subset_size=150, kid_subsets=10, cache_dir=tmp_path,
                    grid_path=tmp_path / "nn.png")
    bad = evaluate(blurred, train, test, features, kid_subset_size=150, kid_subsets=10, cache_dir=tmp_path)
    assert good["feature_network"] == features.label and good["reference_split"] == "test"
    assert good["fid"] < bad["fid"] and good["kid"] < bad["kid"] and good["precision"] > bad["precision"]
    assert good["near_copy_fraction"] == 1.0  # training images are copies of themselves
    assert (tmp_path / "nn.png").is_file()
    assert 0 <= good["recall"] <= 1 and 1 <= good["is"] <= 10
    # reference features are cached: a second evaluation does not run the network on the dataset again
    monkeypatch.setattr(features, "extract", lambda images, **k: pytest.fail("recomputed") if len(images) > 400
                        else type(features).extract(features, images))
    again = evaluate(real, train, test, features, kid_subset_size=150, kid_subsets=10, cache_dir=tmp_path)
    assert again["fid"] == pytest.approx(good["fid"])


def test_dataset_features_cache_key_depends_on_network(digits, features, tmp_path):
    train, _ = digits
    dataset_features(train, features, tmp_path)
    features2 = load_or_train_features(*digits, cache_dir=tmp_path, steps=5, progress=False)
    dataset_features(train, features2, tmp_path)
    assert len(list((tmp_path / "reference_features").glob("*.npz"))) == 2


def test_eval_cli_appends_to_run(tmp_path, capsys):
    out = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=4, out=out, preset="tiny", progress=False, overrides=TINY)
    from latentforge.report.html import write_report
    write_report([out], with_model=False)
    assert "Not evaluated yet" in (out / "report.html").read_text()
    code = main(["eval", str(out), "--n", "120", "--json", str(tmp_path / "e.json"), "--features", "trained",
                 "--feature-net-steps", "20"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "feature network: lf-classifier-digits@" in printed
    page = (out / "report.html").read_text()  # the run's page, refreshed with the evaluation
    assert "Not evaluated yet" not in page and "lf-classifier-digits@" in page
    assert "Nearest training neighbours" in page and f"report: {out / 'report.html'}" in printed
    rec = json.loads((tmp_path / "e.json").read_text())
    assert rec["kind"] == "eval" and rec["n_fake"] == 120 and rec["reference_split"] == "test"
    assert np.isfinite(rec["fid"]) and rec["fid"] > 0
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "eval" and last["fid"] == rec["fid"]
    assert (out / "eval" / "nearest_step_0000004.png").is_file()
    assert main(["eval", str(out), "--n", "1"]) == 2
    assert main(["eval", str(out), "--features", "inception"]) == 2  # no weights here: one clear line
    assert "LATENTFORGE_INCEPTION_WEIGHTS" in capsys.readouterr().err


def test_evaluate_rejects_wrong_shapes(digits, features):
    with pytest.raises(latentforge.ConfigError, match="shape"):
        evaluate(torch.zeros(4, 3, 16, 16), digits[0], digits[1], features)
    assert evaluate_mod.PREPROCESS_VERSION >= 1


def test_evaluate_images_from_a_folder(tmp_path):
    from latentforge.data.dataset import load_dataset as ld
    from latentforge.utils.images import save_each

    real = ld(DataConfig(name="digits", resolution=16, cache=False))
    save_each(real.get(torch.arange(50)), tmp_path / "fakes")
    rec = latentforge.evaluate_images(tmp_path / "fakes", data="digits", resolution=16, progress=False,
                                      features="trained", feature_net_steps=10, grid_path=tmp_path / "nn.png")
    assert rec["n_fake"] == 50 and rec["near_copy_fraction"] == 1.0  # PNG round trip of training images
    assert (tmp_path / "nn.png").is_file()


def test_single_heldout_image_falls_back_to_train_reference(digits, features, tmp_path):
    train, test = digits
    one = type(test)(test.images[:1], test.labels[:1], "digits", "test", "fp-one", test.class_names, "")
    rec = evaluate(train.get(torch.arange(50)), train, one, features, kid_subset_size=50, kid_subsets=2,
                   cache_dir=tmp_path)
    assert rec["reference_split"] == "train" and "heldout_nn_pixel_rms_median" not in rec
