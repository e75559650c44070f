"""Honest evaluation on a user's own unlabelled folder: near-duplicate-grouped splits, collapse and duplication
figures with flags, and a bench of known generators that the evaluator must rank and flag correctly (on a built-in
labelled set with the classifier, and on an unlabelled folder with the contrastive network)."""
import numpy as np
import pytest
import torch
from PIL import Image

from latentforge.config import DataConfig
from latentforge.data import load_dataset
from latentforge.data.near_duplicates import group_near_duplicates, near_duplicate_components
from latentforge.metrics.diversity import duplication, flags
from latentforge.metrics.evaluate import resolve_features
from latentforge.metrics.memorisation import knn, pixel_rms
from latentforge.metrics.testbench import EXPECTED_FLAGS, NOISE_LEVELS, known_generators, raised_flags, run_testbench
from latentforge.utils.images import save_each

from conftest import DIGITS16_CLASSIFIER_STEPS


# --------------------------------------------------------------------------------------------- near-duplicates

def _blobs(n: int, seed: int, size: int = 16) -> np.ndarray:
    """n clearly different uint8 RGB images (random smooth colour fields)."""
    g = np.random.default_rng(seed)
    low = g.integers(0, 256, (n, 4, 4, 3)).astype(np.uint8)
    return np.stack([np.asarray(Image.fromarray(x).resize((size, size), Image.BILINEAR)) for x in low])


def test_components_join_chains_of_near_duplicates_only():
    base = torch.rand(6, 48, generator=torch.Generator().manual_seed(0))
    near = base[0] + 0.01  # RMS 0.01 from image 0
    chain = near + 0.01  # RMS 0.01 from `near`, 0.02 from image 0
    comp = near_duplicate_components(torch.cat([base, near[None], chain[None]]), threshold_rms=0.015)
    assert comp[6] == comp[0] == comp[7]  # joined through the chain
    assert len(set(comp[:6].tolist())) == 6  # the distinct images stay apart
    assert len(set(near_duplicate_components(torch.cat([base, near[None]]), 0.005).tolist())) == 7


def _write(folder, images, names):
    folder.mkdir(parents=True, exist_ok=True)
    for im, name in zip(images, names):
        Image.fromarray(im).save(folder / name)


def test_folder_split_keeps_near_duplicates_together(tmp_path):
    imgs = _blobs(200, 0)
    twins = np.clip(imgs[:60].astype(int) + 3, 0, 255).astype(np.uint8)  # brightness +3/255: near-copies
    names = [f"img{i:03d}.png" for i in range(200)] + [f"twin{i:03d}.png" for i in range(60)]
    _write(tmp_path / "f", np.concatenate([imgs, twins]), names)

    def split(rms):
        cfg = DataConfig(name=str(tmp_path / "f"), resolution=16, near_duplicate_rms=rms, test_fraction=0.3,
                         cache=False)
        tr, te = load_dataset(cfg), load_dataset(cfg.model_copy(update={"split": "test"}))
        d = pixel_rms(knn(te.get(torch.arange(len(te))), tr.get(torch.arange(len(tr))), 1)[0][:, 0], 3 * 16 * 16)
        return tr, te, float((d < 0.03).double().mean())

    tr, te, straddling = split(0.03)
    assert straddling == 0.0 and len(tr) + len(te) == 260 and len(te) > 40
    _, _, per_file = split(0.0)
    assert per_file > 0.05  # split per file, twins straddle it
    tr2, te2, _ = split(0.03)
    assert torch.equal(te.images, te2.images)  # deterministic

    # adding an unrelated image moves no other image across the split
    _write(tmp_path / "f", _blobs(1, 99), ["zzz_new.png"])
    tr3, te3, _ = split(0.03)
    old_test = {bytes(x.numpy()) for x in te.images}
    new_test = {bytes(x.numpy()) for x in te3.images}
    assert old_test <= new_test and len(new_test - old_test) <= 1


def test_group_keys_are_the_first_member_and_respect_existing_groups():
    imgs = torch.from_numpy(_blobs(4, 1)).permute(0, 3, 1, 2).contiguous()
    imgs[3] = imgs[1]  # 1 and 3 identical
    keys = group_near_duplicates(imgs, np.array(["d", "b", "a", "c"]), 0.03)
    assert list(keys) == ["d", "b", "a", "b"]
    keys = group_near_duplicates(imgs, np.array(["d", "b", "d", "c"]), 0.03)  # 0 and 2 share a source group
    assert list(keys) == ["d", "b", "d", "b"]
    assert list(group_near_duplicates(imgs, np.array(["d", "b", "a", "c"]), 0.0)) == ["d", "b", "a", "c"]


def test_builtin_splits_do_not_change():
    """Built-ins ship curated groups (emoji by emoji): near-duplicate grouping must not reshuffle their splits."""
    a = load_dataset(DataConfig(name="digits", resolution=8, split="test", cache=False))
    b = load_dataset(DataConfig(name="digits", resolution=8, split="test", cache=False, near_duplicate_rms=0.0))
    assert torch.equal(a.images, b.images) and a.fingerprint == b.fingerprint


# ------------------------------------------------------------------------------------ duplication and flags

def test_duplication_counts_distinct_and_duplicate_samples():
    g = torch.Generator().manual_seed(0)
    distinct = torch.rand(10, 3, 8, 8, generator=g) * 2 - 1
    rep = duplication(distinct, 0.03)
    assert rep["distinct"] == 10 and rep["near_duplicate_fraction"] == 0 and rep["exact_duplicate_fraction"] == 0
    dup = torch.cat([distinct[:4], distinct[:1].expand(6, -1, -1, -1)])  # 4 distinct, image 0 seven times
    rep = duplication(dup, 0.03)
    assert rep["distinct"] == 4 and rep["exact_duplicate_fraction"] == pytest.approx(0.7)
    near = torch.cat([distinct, (distinct[:5] + 0.02).clamp(-1, 1)])  # RMS 0.01 twins of 5 images
    rep = duplication(near, 0.03)
    assert rep["distinct"] == 10 and rep["near_duplicate_fraction"] == pytest.approx(10 / 15)
    assert rep["exact_duplicate_fraction"] == 0


def _record(**kw):
    base = {"n_fake": 100, "diversity_ratio": 1.0, "sample_distinct": 100, "sample_distinct_fraction": 1.0,
            "reference_distinct_fraction": 0.9, "near_copy_fraction": 0.0, "heldout_near_copy_fraction": 0.0}
    return base | kw


def test_flags_fire_on_their_causes_only():
    assert flags(_record()) == {"collapse_flag": False, "memorisation_flag": False, "flag_reasons": []}
    f = flags(_record(diversity_ratio=0.1))
    assert f["collapse_flag"] and not f["memorisation_flag"] and "diversity is 10%" in f["flag_reasons"][0]
    assert flags(_record(sample_distinct=20, sample_distinct_fraction=0.2))["collapse_flag"]
    f = flags(_record(near_copy_fraction=0.5))
    assert f["memorisation_flag"] and not f["collapse_flag"]
    # near-copies at the held-out images' own rate are the data's, not the model's
    assert not flags(_record(near_copy_fraction=0.06, heldout_near_copy_fraction=0.05))["memorisation_flag"]


# ------------------------------------------------------------------------------------------------ test bench

def _check_bench(res: dict, junk_below: str = "noise-0.1") -> None:
    """junk_below: the degraded set every junk generator must score worse than. An ImageNet network counts pixel
    noise upsampled from 16 px as far from real images (noise-0.1 above the mean image in FID), so for it the
    mildest blur is the bar; collapse is caught by the pixel-space flag either way."""
    fid = {k: r["fid"] for k, r in res.items()}
    kid = {k: r["kid"] for k, r in res.items()}
    noisy = ["heldout"] + [f"noise-{s:g}" for s in NOISE_LEVELS]
    assert all(fid[a] < fid[b] for a, b in zip(noisy, noisy[1:])), fid
    assert fid["heldout"] < fid["blur-0.7"] < fid["blur-1.5"], fid
    assert kid["heldout"] < kid["noise-0.1"] < kid["noise-0.2"], kid
    for bad in ("mean-image", "one-train-image", "uniform-noise"):
        assert fid[bad] > fid[junk_below] and kid[bad] > kid[junk_below], (bad, fid, kid)
        assert res[bad]["coverage"] < 0.1 < 0.7 < res["heldout"]["coverage"], (bad, res[bad]["coverage"])
    for collapsed in ("mean-image", "one-train-image"):
        assert res[collapsed]["recall"] < 0.05 < 0.7 < res["heldout"]["recall"]
    # precision: a k-NN ball of an outlying real image can swallow one repeated blob (precision 1.0 for a collapsed
    # generator is why the collapse flag exists), so only "real beats junk" is asserted on it
    assert res["uniform-noise"]["precision"] < res["heldout"]["precision"] > 0.7
    assert res["noise-0.2"]["recall"] <= res["heldout"]["recall"]  # both can saturate at 1.0 in a weak space
    assert res["noise-0.2"]["coverage"] < res["heldout"]["coverage"]
    for name, r in res.items():
        assert raised_flags(r) == EXPECTED_FLAGS.get(name, set()), (name, r["flag_reasons"])
    assert res["heldout"]["heldout_near_copy_fraction"] == 0.0


def test_bench_on_a_builtin_set_with_the_classifier(tmp_path, digits16_classifier_in_cache):
    train = load_dataset(DataConfig(name="digits", resolution=16))
    held = load_dataset(DataConfig(name="digits", resolution=16, split="test"))
    net = resolve_features("trained", train, held, progress=False, trained_steps=DIGITS16_CLASSIFIER_STEPS)
    assert net.name == "lf-classifier-digits"
    gens = known_generators(train, held, n=1000)
    assert all(x.shape == (len(held), 1, 16, 16) for x in gens.values())  # capped at the held-out size
    _check_bench(run_testbench(train, held, net, n=1000, cache_dir=tmp_path))


@pytest.mark.slow
def test_bench_with_the_default_imagenet_network(tmp_path):
    """The default judge (EfficientNet-Lite0, ImageNet) keeps the ladders monotone and raises the same flags
    (about 5 minutes on 2 idle cores: every image is upsampled to 224 px)."""
    train = load_dataset(DataConfig(name="digits", resolution=16, limit=600))
    held = load_dataset(DataConfig(name="digits", resolution=16, split="test"))
    net = resolve_features("effnet", train, held, progress=False)
    assert net.name == "effnet-lite0-imagenet"
    res = run_testbench(train, held, net, n=1000, cache_dir=tmp_path)
    _check_bench(res, junk_below="blur-0.7")
    assert all(r["feature_network"] == net.label for r in res.values())
    assert res["heldout"]["is"] > 1 and "is" in res["uniform-noise"]  # ImageNet logits give an IS in this space


def test_bench_on_an_unlabelled_folder_with_the_contrastive_network(tmp_path, monkeypatch):
    src = load_dataset(DataConfig(name="digits", resolution=16, split="all"))
    save_each(src.get(torch.arange(len(src))), tmp_path / "folder")
    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path / "cache"))
    cfg = DataConfig(name=str(tmp_path / "folder"), resolution=16)
    train, held = load_dataset(cfg), load_dataset(cfg.model_copy(update={"split": "test"}))
    assert not train.has_class_labels
    net = resolve_features("trained", train, held, progress=False, trained_steps=120)
    assert net.name == "lf-simclr-convnet-folder" and net.info["knn_view_on"] == "heldout"
    _check_bench(run_testbench(train, held, net, n=1000))


# ---------------------------------------------------------------------- never scored in its own feature space

@pytest.mark.filterwarnings("ignore:SimCLR encoder looks weak")  # a few SimCLR steps: weak by design here
@pytest.mark.parametrize("latent_arch, eval_arch", [("resnet-s", "convnet"), ("convnet", "resnet-s")])
def test_ssl_gan_is_scored_by_another_simclr_arch(tmp_path, monkeypatch, latent_arch, eval_arch):
    import latentforge
    from latentforge.metrics.features import contrastive
    from test_dcgan import GAN

    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(contrastive, "EVAL_BATCH", 32)
    src = load_dataset(DataConfig(name="digits", resolution=16, split="all"))
    save_each(src.get(torch.arange(400)), tmp_path / "digits")
    out = tmp_path / "gan"
    latentforge.train("dcgan", data=str(tmp_path / "digits"), steps=2, out=out, preset="tiny", progress=False,
                      overrides=GAN + ["model.latent.kind=ssl", "model.latent.ssl_steps=3",
                                       f"model.latent.ssl_arch={latent_arch}", "model.latent.gmm_components=2"])
    rec = latentforge.evaluate_run(out, n=40, features="trained", progress=False, feature_net_steps=3)
    assert rec["feature_network"].startswith(f"lf-simclr-{eval_arch}-digits@")
    assert len(rec["model_trained_from"]) == 1 and rec["model_trained_from"][0].startswith(f"lf-simclr-{latent_arch}")
    assert rec["feature_network"] not in rec["model_trained_from"]


def test_eval_printout_puts_flags_first_and_marks_collapsed_figures(capsys):
    from latentforge.cli.main import print_eval

    rec = {"feature_network": "net@abc", "reference_split": "test", "n_reference": 50, "n_fake": 100, "step": 7,
           "fid": 12.0, "precision": 1.0, "recall": 0.0, "density": 1.9, "coverage": 0.01,
           "sample_diversity": 0.0, "reference_diversity": 0.37, "nn_feature_ratio_vs_heldout": 0.2,
           **flags(_record(diversity_ratio=0.0, sample_distinct=1, sample_distinct_fraction=0.01))}
    print_eval(rec)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("FLAG collapse: sample diversity is 0%")
    assert any("only 1 distinct samples of 100" in ln for ln in lines)
    marked = [ln.split()[0] for ln in lines if "not meaningful: collapsed" in ln and not ln.startswith("FLAG")]
    assert marked == ["precision", "density", "NN"]
    diversity = next(ln for ln in lines if ln.split()[:2] == ["diversity", "(pixel"])
    assert diversity.split()[-3:] == ["0.37", "near", "held-out"]  # held-out value, then which way is better
    assert lines[-1].startswith("reading: far on ") and "diversity (pixel RMS) (0 vs 0.37)" in lines[-1]
