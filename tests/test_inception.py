"""Offline tests of the FID Inception-v3 re-implementation, using random weights in the real file format.

Outputs were checked once against pytorch-fid 0.3.0 itself (torchvision 0.29.1, same random state dict,
same inputs): max |diff| 0 at 299x299 and <1e-5 after resizing (float rounding only). That check needs
torchvision, so it is not part of this suite.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentforge.errors import CheckpointError, LatentforgeError, WeightsUnavailableError
from latentforge.metrics.features import inception as I
from latentforge.metrics.features.base import FeatureExtractor

# pytorch-fid's fid_inception_v3() is torchvision's Inception3(num_classes=1008, aux_logits=False) with
# patched A/C/E blocks of identical parameters. It has 94 BasicConv2d (stem 5, Mixed_5b-d 3x7,
# Mixed_6a 4, Mixed_6b-e 4x10, Mixed_7a 6, Mixed_7b-c 2x9), each holding conv.weight + bn.{weight, bias,
# running_mean, running_var, num_batches_tracked} = 6 tensors, plus fc.weight and fc.bias:
# 94 * 6 + 2 = 566 state-dict tensors (472 without num_batches_tracked), 94 * 3 + 2 = 284 parameters.
# Confirmed against len(pytorch_fid.inception.fid_inception_v3().state_dict()) == 566.
N_STATE_TENSORS = 566
N_PARAMETERS = 284


def _random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """He-scaled random weights and plausible BN statistics, so activations stay O(1) (default init
    shrinks them into denormals, which makes CPU convolutions crawl)."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        ref = I.FIDInceptionV3().state_dict()
    sd: dict[str, torch.Tensor] = {}
    for k, v in ref.items():
        shape = tuple(v.shape)
        if k.endswith("conv.weight"):
            sd[k] = torch.randn(shape, generator=g) * (2.0 / (v[0].numel())) ** 0.5
        elif k.endswith("bn.weight"):
            sd[k] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith(("bn.bias", "running_mean", "fc.bias")):
            sd[k] = 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("running_var"):
            sd[k] = 0.5 + torch.rand(shape, generator=g)
        elif k == "fc.weight":
            sd[k] = torch.randn(shape, generator=g) / shape[1] ** 0.5
        else:  # num_batches_tracked
            sd[k] = torch.zeros((), dtype=torch.long)
    return sd


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return _random_state()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("weights") / I.WEIGHTS_FILE
    torch.save(state, path)
    return path


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real weights can leak in: env var cleared, hub and latentforge caches pointed at tmp, no network."""
    monkeypatch.delenv(I.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv(I.CACHE_ENV, str(tmp_path / "lfcache"))
    monkeypatch.setattr(I.torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(I.torch.hub, "load_state_dict_from_url", no_network)
    return tmp_path


@pytest.fixture(scope="module")
def model(weights_file: Path) -> I.InceptionFeatures:
    return I.load_inception(path=weights_file)  # explicit path: no env/cache lookup involved


def _imgs(seed: int, n: int, c: int, size: int = 32) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_state_dict_names_match_pytorch_fid_file() -> None:
    with torch.device("meta"):
        net = I.FIDInceptionV3()
    sd = net.state_dict()
    assert len(sd) == N_STATE_TENSORS
    assert len(list(net.parameters())) == N_PARAMETERS
    for key, shape in {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_mean": (32,),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7c.branch3x3dbl_3b.bn.weight": (384,),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_features_shapes_finite_nonnegative_deterministic(model: I.InceptionFeatures, weights_file: Path) -> None:
    assert isinstance(model, FeatureExtractor)
    assert model.name == "inception-v3-fid"
    assert model.fingerprint == _sha12(weights_file)
    assert model.label == f"inception-v3-fid@{model.fingerprint}"
    assert not model.net.training and not any(p.requires_grad for p in model.net.parameters())

    gray = _imgs(0, 2, 1)
    rgb = torch.cat([gray[:1].repeat(1, 3, 1, 1), _imgs(1, 1, 3)])  # gray image 0 as RGB + a colour image
    fg, fr = model.extract(gray), model.extract(rgb, batch_size=1)
    for f in (fg, fr):
        assert f.pool.shape == (2, 2048) and f.logits is not None and f.logits.shape == (2, 1008)
        assert f.pool.dtype == np.float64
        assert np.isfinite(f.pool).all() and np.isfinite(f.logits).all()
        assert (f.pool >= 0).all()  # average of post-ReLU maps
    assert fg.logits is not None and fr.logits is not None
    assert not np.allclose(fg.pool[0], fg.pool[1]) and not np.allclose(fr.pool[0], fr.pool[1])
    # deterministic across calls and batch compositions, and a 1-channel image == the same image as RGB
    np.testing.assert_allclose(fr.pool[0], fg.pool[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(fr.logits[0], fg.logits[0], rtol=0, atol=1e-5)
    assert model.net.fc.weight.requires_grad is False and not model.net.training


def test_load_via_env_var(isolated: Path, weights_file: Path, state: dict[str, torch.Tensor],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert not I.inception_available()
    monkeypatch.setenv(I.WEIGHTS_ENV, str(weights_file))
    assert I.inception_available()
    m = I.load_inception()
    assert m.fingerprint == _sha12(weights_file)
    loaded = m.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_cache_discovery_and_gated_download(isolated: Path, weights_file: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lf = isolated / "lfcache" / "inception" / I.WEIGHTS_FILE
    lf.parent.mkdir(parents=True)
    lf.symlink_to(weights_file)
    assert I.inception_available()
    assert I.load_inception().fingerprint == _sha12(weights_file)
    lf.unlink()

    hub = isolated / "hub" / "checkpoints" / I.WEIGHTS_FILE
    calls: list[str] = []

    def fake_download(url: str, **kwargs: object) -> dict[str, torch.Tensor]:
        calls.append(url)
        hub.parent.mkdir(parents=True, exist_ok=True)
        hub.symlink_to(weights_file)
        return {}

    monkeypatch.setattr(I.torch.hub, "load_state_dict_from_url", fake_download)
    with pytest.raises(WeightsUnavailableError):
        I.load_inception()  # allow_download defaults to False
    assert calls == []
    assert I.load_inception(allow_download=True).fingerprint == _sha12(weights_file)
    assert calls == [I.WEIGHTS_URL]
    assert I.inception_available()  # now found in the torch hub cache, where pytorch-fid keeps it


def test_missing_weights_one_line_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsUnavailableError) as e:
        I.load_inception(allow_download=False)
    msg = str(e.value)
    assert "\n" not in msg and I.WEIGHTS_ENV in msg and I.WEIGHTS_FILE in msg
    assert str(isolated / "hub" / "checkpoints") in msg and str(isolated / "lfcache" / "inception") in msg
    assert isinstance(e.value, LatentforgeError)

    # a named path that is missing is final, even when downloading is allowed
    monkeypatch.setenv(I.WEIGHTS_ENV, str(isolated / "nope.pth"))
    with pytest.raises(WeightsUnavailableError, match="nope.pth"):
        I.load_inception(allow_download=True)
    with pytest.raises(WeightsUnavailableError, match="other.pth"):
        I.load_inception(path=isolated / "other.pth", allow_download=True)


def test_bad_checkpoints_raise_checkpoint_error(isolated: Path, state: dict[str, torch.Tensor]) -> None:
    wrong_shape = dict(state)
    wrong_shape["fc.weight"] = torch.zeros(1000, 2048)  # e.g. torchvision's ImageNet-1000 Inception
    wrong_shape["fc.bias"] = torch.zeros(1000)
    cases = {
        "shape.pth": wrong_shape,
        "keys.pth": {"features.0.weight": torch.zeros(3)},
        "notdict.pth": [torch.zeros(3)],
    }
    for name, obj in cases.items():
        torch.save(obj, isolated / name)
    (isolated / "garbage.pth").write_bytes(b"not a checkpoint\nat all")
    for name, pattern in (("shape.pth", "fc.weight has shape"), ("keys.pth", "lacks keys"),
                          ("notdict.pth", "not a state dict"), ("garbage.pth", "could not be read")):
        with pytest.raises(CheckpointError, match=pattern) as e:
            I.load_inception(path=isolated / name)
        assert "\n" not in str(e.value), name


def test_checkpoint_tolerates_module_prefix_and_missing_num_batches_tracked(state: dict[str, torch.Tensor]) -> None:
    raw = {f"module.{k}": v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    net = I.build_inception(raw)
    assert torch.equal(net.state_dict()["fc.weight"], state["fc.weight"])


def test_preprocess_matches_pytorch_fid_pipeline() -> None:
    x = _imgs(2, 2, 3, size=299)
    out = I.preprocess(x)
    assert out.shape == (2, 3, 299, 299) and torch.equal(out, x)  # no resampling at the native size
    assert torch.equal(out, F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))

    x01 = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    ref = F.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1  # pytorch-fid
    ours = I.preprocess(x01 * 2 - 1)
    assert ours.shape == (2, 3, 299, 299)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)

    g = I.preprocess(_imgs(4, 2, 1, size=28))
    assert g.shape == (2, 3, 299, 299)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 0], g[:, 2])
    for bad in (torch.zeros(2, 2, 32, 32), torch.zeros(3, 32, 32)):
        with pytest.raises(ValueError):
            I.preprocess(bad)


def test_standard_inception_path_end_to_end(weights_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                            ) -> None:
    """`--features inception` from weights named by the env var, through the whole evaluation, labelled as such."""
    from latentforge.config import DataConfig
    from latentforge.data import load_dataset
    from latentforge.metrics.evaluate import evaluate, resolve_features

    monkeypatch.setenv(I.WEIGHTS_ENV, str(weights_file))
    train = load_dataset(DataConfig(name="digits", resolution=16, limit=4, cache=False))
    held = load_dataset(DataConfig(name="digits", resolution=16, split="test", limit=3, cache=False))
    extractor = resolve_features("auto", train, held)  # weights present -> the standard network
    assert extractor.name == "inception-v3-fid" and extractor.label.startswith("inception-v3-fid@")
    fake = train.get(torch.arange(3)).flip(-1)
    rec = evaluate(fake, train, held, extractor, kid_subset_size=3, kid_subsets=2, k=1, cache_dir=tmp_path)
    assert rec["feature_network"] == extractor.label and rec["reference_split"] == "test"
    assert np.isfinite(rec["fid"]) and rec["fid"] > 0 and np.isfinite(rec["is"]) and rec["is"] >= 1
