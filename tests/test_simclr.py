"""SimCLR: augmentations, the NT-Xent loss, the two encoder architectures, a short training run on digits and the
on-disk cache of trained encoders."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from latentforge.config import DataConfig
from latentforge.data.dataset import load_dataset
from latentforge.models import simclr
from latentforge.models.simclr import (
    SimCLRNet,
    augment,
    load_or_train_simclr,
    nt_xent,
    train_simclr,
)

# Short run used by the training tests. Measured at these settings (seeds 0, 1, 2; 1 CPU thread, ~4 steps/s):
# loss 3.65 -> 2.82, 3.51 -> 2.62, 3.65 -> 2.65 (chance ln(63) = 4.14); linear probe 0.952 / 0.957 / 0.957 on the 187
# held-out digits (a randomly initialised resnet-s: 0.856); info's view retrieval 0.11 / 0.13 / 0.19 among those 187
# (one augmentation draw, so noisy; chance 0.005); the same averaged over 4 draws 0.135-0.140 (random init
# 0.043-0.049); centred cosine of two views of one image 0.46-0.48 vs -0.004 between images (random init 0.14).
STEPS, BATCH, LIMIT = 60, 32, 600


def _images(b, c, size, seed=0):
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------------- augment

@pytest.mark.parametrize("c,size", [(1, 16), (3, 24), (3, 64)])
def test_augment_keeps_shape_range_and_is_deterministic(c, size):
    x = _images(6, c, size)
    a = augment(x, torch.Generator().manual_seed(7))
    b = augment(x, torch.Generator().manual_seed(7))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)  # same generator seed, same views
    g = torch.Generator().manual_seed(7)
    v1, v2 = augment(x, g), augment(x, g)  # two views of each image, as training draws them
    assert ((v1 - v2).abs().flatten(1).amax(1) > 0.05).all()
    assert not torch.equal(v1, augment(x, torch.Generator().manual_seed(8)))


def test_augment_grayscale_and_no_flip_options():
    x = _images(4, 3, 16)
    y = augment(x, torch.Generator().manual_seed(0), gray_p=1.0, jitter=0.0)
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])  # all grey
    # a constant image stays constant under crop and flip when colour jitter is off
    flat = torch.full((3, 1, 16, 16), 0.25)
    assert torch.allclose(augment(flat, torch.Generator().manual_seed(0), jitter=0.0), flat, atol=1e-6)
    # a left-right gradient is never mirrored with flip=False: every row stays non-decreasing
    ramp = torch.linspace(-1, 1, 16).expand(8, 1, 16, 16).contiguous()
    out = augment(ramp, torch.Generator().manual_seed(3), jitter=0.0, flip=False)
    assert (out.diff(dim=-1) >= -1e-6).all()
    out = augment(ramp, torch.Generator().manual_seed(3), jitter=0.0, flip=True)
    assert (out.diff(dim=-1) < -1e-3).any()  # some image was flipped


# ------------------------------------------------------------------------------------------------- nt_xent

def _nt_xent_reference(z1, z2, t):
    """The paper's formula, term by term, in float64."""
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / den)
    return total / n


def test_nt_xent_matches_reference_and_prefers_aligned_pairs():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(12, 8, generator=g)
    z2 = z1 + 0.3 * torch.randn(12, 8, generator=g)
    for t in (0.2, 0.5):
        assert abs(nt_xent(z1, z2, t).item() - _nt_xent_reference(z1, z2, t)) < 1e-5
    shuffled = z2[torch.randperm(12, generator=g)]
    assert abs(nt_xent(z1, shuffled, 0.2).item() - _nt_xent_reference(z1, shuffled, 0.2)) < 1e-5
    assert nt_xent(z1, z2).item() < nt_xent(z1, shuffled).item() - 1.0
    with pytest.raises(ValueError):
        nt_xent(z1, z2[:5])


# ------------------------------------------------------------------------------------------------- networks

@pytest.mark.parametrize("arch", ["resnet-s", "convnet"])
def test_both_archs_give_features_for_any_channels_and_size(arch):
    for c in (1, 3):
        torch.manual_seed(0)
        net = SimCLRNet(c, arch)
        for size in (16, 32, 64):
            x = _images(3, c, size)
            net.train()
            assert net(x).shape == (3, simclr.PROJECTION_DIM)
            net.eval()
            f = net.features(x)
            assert f.shape == (3, net.feature_dim) and torch.isfinite(f).all()
        # an image with the other channel count is converted, not refused (evaluation on mixed folders)
        assert net.eval().features(_images(2, 4 - c, 16)).shape == (2, net.feature_dim)
    assert SimCLRNet(1, "resnet-s").feature_dim != SimCLRNet(1, "convnet").feature_dim  # genuinely different nets
    with pytest.raises(ValueError, match="arch"):
        SimCLRNet(1, "vit")


# ------------------------------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def digits():
    train = load_dataset(DataConfig(name="digits", resolution=16, split="train", limit=LIMIT, cache=False))
    test = load_dataset(DataConfig(name="digits", resolution=16, split="test", cache=False))
    return train, test


@pytest.fixture(scope="module")
def trained(digits):
    train, test = digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net, info = train_simclr(train, steps=STEPS, batch_size=BATCH, seed=0, progress=False, heldout=test)
    return net, info, [str(w.message) for w in caught]


def _view_retrieval(net, x, draws=4):
    """Fraction of images whose first view's nearest (cosine) second view is their own, over several draws."""
    hits = []
    with torch.no_grad():
        for d in range(draws):
            g = torch.Generator().manual_seed(100 + d)
            a = F.normalize(net.eval().features(augment(x, g)), dim=1)
            b = F.normalize(net.features(augment(x, g)), dim=1)
            hits.append(((a @ b.t()).argmax(1) == torch.arange(len(x))).float().mean().item())
    return sum(hits) / draws


def _view_cosines(net, x, seed=1):
    """Mean cosine between two views of the same image and between views of different images. Features are
    centred first: after ReLU and pooling they all share a large positive mean, which would put every raw cosine
    near 1 (0.92 vs 0.85 trained, 0.98 vs 0.98 untrained)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        a, b = net.eval().features(augment(x, g)), net.features(augment(x, g))
    raw = F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()
    m = torch.cat([a, b]).mean(0)
    cos = F.normalize(a - m, dim=1) @ F.normalize(b - m, dim=1).t()
    off = ~torch.eye(len(x), dtype=torch.bool)
    return raw.diag().mean() - raw[off].mean(), cos.diag().mean(), cos[off].mean()


def test_training_records_its_facts(trained, digits):
    _, info, caught = trained
    for key in ("arch", "steps", "batch_size", "seed", "temperature", "loss_start", "loss_end", "seconds",
                "linear_probe_accuracy", "knn_view_accuracy", "weak", "channels"):
        assert key in info, key
    assert info["arch"] == "resnet-s" and info["steps"] == STEPS and info["batch_size"] == BATCH
    assert info["linear_probe_on"].startswith("held-out")
    assert info["loss_start"] < info["loss_chance"] + 0.2  # starts near chance ...
    assert info["loss_end"] < info["loss_start"] - 0.5  # ... and learns
    assert 0 < info["knn_view_accuracy_pixels"] < 1
    assert info["weak"] == (info["knn_view_accuracy"] < simclr.WEAK_VS_PIXELS * info["knn_view_accuracy_pixels"])
    if info["weak"]:  # 60 steps is short: the flag is expected here, and it must be loud
        assert "weak_reason" in info and any("weak" in m for m in caught)


def test_trained_features_separate_views_from_other_images(trained, digits):
    net, info, _ = trained
    _, test = digits
    torch.manual_seed(0)
    untrained = SimCLRNet(1, "resnet-s").eval()
    x = test.get(torch.arange(100))
    raw_gap, own, other = _view_cosines(net, x)
    assert raw_gap > 0.02 and own > other + 0.3  # two views of one image are closer than two different images
    _, own0, other0 = _view_cosines(untrained, x)
    assert own - other > own0 - other0 + 0.1  # ... and much more so than by pixel similarity alone
    # label-free instance discrimination: find an image's other view among all 187 (chance 0.005)
    all_test = test.get(torch.arange(len(test)))
    assert _view_retrieval(net, all_test) > _view_retrieval(untrained, all_test) + 0.05
    assert info["knn_view_accuracy"] > 0.05
    # classes are linearly readable from the frozen features (chance 0.1; a random resnet-s gets 0.86 here)
    assert info["linear_probe_accuracy"] > 0.9


# ------------------------------------------------------------------------------------------------- cache

@pytest.mark.filterwarnings("ignore:SimCLR encoder looks weak")  # 3 steps: weak by design
def test_cache_hit_does_not_train_and_reproduces_encodings(digits, monkeypatch, tmp_path):
    train = load_dataset(DataConfig(name="digits", resolution=16, split="train", limit=120, cache=False))
    before = simclr.TRAIN_CALLS
    first = load_or_train_simclr(train, steps=3, batch_size=16, seed=0, progress=False)
    assert simclr.TRAIN_CALLS == before + 1 and first.info["cached"] is False
    files = list((simclr.default_cache_dir() / "simclr").glob("digits-*.safetensors"))
    assert len(files) == 1

    def refuse(*a, **k):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(simclr, "train_simclr", refuse)
    second = load_or_train_simclr(train, steps=3, batch_size=16, seed=0, progress=False)
    assert second.info["cached"] is True and simclr.TRAIN_CALLS == before + 1
    assert second.fingerprint == first.fingerprint and len(first.fingerprint) == 12
    assert second.name == "lf-simclr-resnet-s-digits" and second.label == f"{second.name}@{second.fingerprint}"
    x = train.get(torch.arange(40))
    e1, e2 = first.encode(x, batch_size=16), second.encode(x)
    assert e1.dtype == torch.float32 and e1.shape == (40, first.net.feature_dim) and not e1.requires_grad
    assert torch.equal(e1, e2)  # bit-identical
    assert second.info["steps"] == 3 and second.info["arch"] == "resnet-s"
    monkeypatch.undo()

    other = load_or_train_simclr(train, steps=3, batch_size=16, seed=1, progress=False, cache_dir=tmp_path)
    assert other.info["cached"] is False and other.fingerprint != first.fingerprint
    conv = load_or_train_simclr(train, steps=3, batch_size=16, seed=0, arch="convnet", progress=False,
                                cache_dir=tmp_path)
    assert conv.name == "lf-simclr-convnet-digits" and conv.fingerprint != first.fingerprint
    assert len(list((tmp_path / "simclr").glob("*.safetensors"))) == 2
