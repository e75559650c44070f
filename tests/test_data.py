import numpy as np
import pytest
import torch
from PIL import Image

from latentforge.config import DataConfig
from latentforge.data import dataset as dataset_mod
from latentforge.data.dataset import group_in_test, load_dataset
from latentforge.errors import DataError


def _png(path, size=(20, 12), mode="RGB", color=(255, 0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_digits_builtin_shapes_and_split():
    train = load_dataset(DataConfig(name="digits", resolution=16))
    test = load_dataset(DataConfig(name="digits", resolution=16, split="test"))
    full = load_dataset(DataConfig(name="digits", resolution=16, split="all"))
    assert train.images.shape[1:] == (1, 16, 16) and train.images.dtype == torch.uint8
    assert len(train) + len(test) == len(full) == 1797
    assert 0.05 < len(test) / len(full) < 0.15
    x = train.get([0, 1])
    assert x.min() >= -1 and x.max() <= 1 and x.max() > 0.5
    assert train.fingerprint != test.fingerprint


def test_group_split_keeps_groups_together():
    groups = np.array(["a", "a", "b", "b", "c"] * 200)
    test = group_in_test(groups, 0.5)
    for g in "abc":
        assert len(set(test[groups == g])) == 1


def test_folder_with_classes_resize_and_alpha(tmp_path):
    _png(tmp_path / "cats" / "a.png", (40, 20))
    _png(tmp_path / "dogs" / "b.jpg", (10, 30), color=(0, 255, 0))
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    rgba.save(tmp_path / "dogs" / "c.png")
    ds = load_dataset(DataConfig(name=str(tmp_path), resolution=8, split="all"))
    assert ds.images.shape == (3, 3, 8, 8)
    assert ds.class_names == ["cats", "dogs"] and ds.labels.tolist() == [0, 1, 1]
    assert torch.all(ds.images[0, 0] == 255) and torch.all(ds.images[0, 1] == 0)  # red stays red after crop
    assert torch.all(ds.images[2] == 255)  # transparent -> white background


def test_cache_is_reused(tmp_path, monkeypatch):
    _png(tmp_path / "x.png")
    cfg = DataConfig(name=str(tmp_path), resolution=8, split="all")
    first = load_dataset(cfg)
    monkeypatch.setattr(dataset_mod, "load_folder", lambda *a, **k: pytest.fail("decoded twice"))
    second = load_dataset(cfg)
    assert torch.equal(first.images, second.images)


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="neither a built-in"):
        load_dataset(DataConfig(name=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no images"):
        load_dataset(DataConfig(name=str(tmp_path / "empty")))


def test_corrupt_image_skip_warns_and_error_stops(tmp_path):
    _png(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*bad.png"):
        ds = load_dataset(DataConfig(name=str(tmp_path), resolution=8, split="all", cache=False))
    assert len(ds) == 1
    with pytest.raises(DataError, match="bad.png"):
        load_dataset(DataConfig(name=str(tmp_path), resolution=8, split="all", on_corrupt="error", cache=False))


def test_mixed_channels_error_and_conversion(tmp_path):
    _png(tmp_path / "rgb.png")
    _png(tmp_path / "gray.png", mode="L", color=128)
    with pytest.raises(DataError, match="mixed channel counts.*data.channels"):
        load_dataset(DataConfig(name=str(tmp_path), resolution=8, split="all"))
    ds = load_dataset(DataConfig(name=str(tmp_path), resolution=8, split="all", channels=3))
    assert ds.channels == 3 and len(ds) == 2
    gray = load_dataset(DataConfig(name=str(tmp_path), resolution=8, split="all", channels=1))
    assert gray.channels == 1


def test_array_files(tmp_path):
    x = np.random.default_rng(0).random((10, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    ds = load_dataset(DataConfig(name=str(tmp_path / "a.npy"), resolution=8, split="all"))
    assert ds.images.shape == (10, 3, 8, 8)
    np.savez(tmp_path / "b.npz", images=(x * 255).astype(np.uint8).transpose(0, 2, 3, 1), labels=np.arange(10))
    ds = load_dataset(DataConfig(name=str(tmp_path / "b.npz"), resolution=8, split="all"))
    assert ds.labels.tolist() == list(range(10))
    np.savez(tmp_path / "c.npz", foo=x, bar=x)
    with pytest.raises(DataError, match="no 'images'"):
        load_dataset(DataConfig(name=str(tmp_path / "c.npz"), resolution=8))
    np.save(tmp_path / "d.npy", x * 10)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        load_dataset(DataConfig(name=str(tmp_path / "d.npy"), resolution=8))
    np.save(tmp_path / "e.npy", np.zeros((4, 5, 8, 8), np.uint8))
    with pytest.raises(DataError, match="1 or 3 channels"):
        load_dataset(DataConfig(name=str(tmp_path / "e.npy"), resolution=8))
