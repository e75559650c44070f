"""The default evaluation network: EfficientNet-Lite0 with the real ImageNet weights of the installed package.

Checked on natural photos that ship offline (scikit-learn's sample images): a wrong padding, normalisation or block
layout moves the known ImageNet classes or their confidence."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from latentforge.cli.main import FEATURE_CHOICES as CLI_FEATURE_CHOICES
from latentforge.errors import CheckpointError, WeightsUnavailableError
from latentforge.metrics.evaluate import FEATURE_CHOICES, resolve_features
from latentforge.metrics.features import effnet
from latentforge.metrics.features.effnet import SameConv2d, load_effnet, preprocess


@pytest.fixture(scope="module")
def net():
    return load_effnet()


def _photo(name: str) -> torch.Tensor:
    """A scikit-learn sample photo, centre-cropped to a square and resized to 224 px with PIL's bicubic, as uint8."""
    from sklearn.datasets import load_sample_images

    ds = load_sample_images()
    img = next(im for f, im in zip(ds.filenames, ds.images) if f.endswith(name))
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    pil = Image.fromarray(np.ascontiguousarray(crop)).resize((224, 224), Image.BICUBIC)
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1)[None].float()


def _top(net, x: torch.Tensor, k: int = 3) -> list[tuple[int, float]]:
    with torch.no_grad():
        p = net.net(x)[1].softmax(1)[0]
    top = p.topk(k)
    return [(int(i), float(v)) for v, i in zip(top.values, top.indices)]


def test_real_weights_recognise_natural_photos(net):
    china = _top(net, (_photo("china.jpg") - 127) / 128)
    assert [c for c, _ in china] == [698, 442, 663]  # palace, bell cote, monastery
    assert china[0][1] == pytest.approx(0.30, abs=0.02)
    flower = _top(net, (_photo("flower.jpg") - 127) / 128)
    assert flower[0][0] == 985 and flower[0][1] == pytest.approx(0.23, abs=0.02)  # daisy
    # torchvision's mean/std input is the wrong convention for these weights: daisy drops to about 0.10
    x = _photo("flower.jpg") / 255
    tv = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert dict(_top(net, tv, 10)).get(985, 0.0) < 0.15


def test_extractor_pipeline_maps_latentforge_images_to_the_tf_input(net):
    x = _photo("china.jpg")
    f = net.extract(x / 127.5 - 1)  # the [-1, 1] convention of every latentforge image
    assert f.pool.shape == (1, 1280) and f.logits.shape == (1, 1000)
    assert int(np.argmax(f.logits[0])) == 698
    assert torch.allclose(preprocess(x / 127.5 - 1), (x - 127) / 128, atol=1e-5)
    grey = preprocess(torch.zeros(2, 1, 32, 32))  # greyscale -> RGB, upsampled
    assert grey.shape == (2, 3, 224, 224) and torch.allclose(grey, torch.full_like(grey, 1 / 256))
    assert net.label == f"effnet-lite0-imagenet@{effnet.WEIGHTS_SHA256[:12]}" and "bicubic" in net.info["input"]


def test_same_padding_is_tensorflows():
    conv = SameConv2d(1, 1, 3, 2, bias=False)
    nn.init.ones_(conv.weight)
    for size in (224, 7, 8):
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)  # ceil(size / 2)
    # size 4, stride 2, kernel 3: TF pads 1 pixel, after the image: the first output sums rows/cols 0..2
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert conv(x)[0, 0, 0, 0] == x[0, 0, :3, :3].sum()
    assert conv(x)[0, 0, 1, 1] == x[0, 0, 2:, 2:].sum()  # the padded zero row/column at the end


def test_folded_batchnorm_keeps_the_function():
    torch.manual_seed(0)
    raw = effnet.EfficientNetLite0().eval()
    for m in raw.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = raw(x)
        after = effnet.fold_batchnorm(raw)(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in raw.modules())
    assert torch.allclose(before[0], after[0], atol=1e-4) and torch.allclose(before[1], after[1], atol=1e-4)


def test_missing_or_altered_weights_are_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(effnet.WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsUnavailableError, match="absent.pth") as e:
        load_effnet()
    assert "\n" not in str(e.value) and "--features trained" in str(e.value)
    assert not effnet.effnet_available()
    bad = tmp_path / effnet.WEIGHTS_FILE
    torch.save({"_fc.weight": torch.zeros(1000, 1280)}, bad)
    monkeypatch.setenv(effnet.WEIGHTS_ENV, str(bad))
    with pytest.raises(CheckpointError, match="sha256"):
        load_effnet()
    monkeypatch.delenv(effnet.WEIGHTS_ENV)
    monkeypatch.setattr(effnet, "WEIGHTS_PACKAGE", "no_such_package_here")
    with pytest.raises(WeightsUnavailableError, match="not installed"):
        load_effnet()


def test_auto_is_effnet_without_inception_weights_and_the_cli_lists_the_same_choices(net):
    from latentforge.config import DataConfig
    from latentforge.data import load_dataset

    train = load_dataset(DataConfig(name="digits", resolution=16, cache=False))
    assert resolve_features("auto", train, None, progress=False).label == net.label
    assert resolve_features("effnet", train, None, progress=False).label == net.label
    assert tuple(CLI_FEATURE_CHOICES) == tuple(FEATURE_CHOICES)


def test_eval_defaults_to_the_imagenet_network_and_names_its_input_rule(tmp_path, capsys, monkeypatch):
    """The wiring of `latentforge eval` to the default network; 64-px inputs keep it fast (the network's answers at
    224 px are checked above)."""
    import json

    import latentforge
    from latentforge.cli.main import main

    from conftest import TINY

    monkeypatch.setattr(effnet, "INPUT_SIZE", 64)
    out = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=2, out=out, preset="tiny", progress=False,
                      overrides=TINY + ["data.limit=100"])
    assert main(["eval", str(out), "--n", "40", "--json", str(tmp_path / "e.json")]) == 0
    rec = json.loads((tmp_path / "e.json").read_text())
    assert rec["feature_network"] == f"effnet-lite0-imagenet@{effnet.WEIGHTS_SHA256[:12]}"
    assert rec["feature_network_info"]["input"] == effnet.INPUT_RULE and rec["n_train"] == 100
    assert rec["is"] >= 1 and np.isfinite(rec["fid"]) and rec["fid"] > 0
    assert f"effnet-lite0-imagenet@{effnet.WEIGHTS_SHA256[:12]}" in capsys.readouterr().out
