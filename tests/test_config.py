import pytest
import yaml

from latentforge.config import PRESETS, RunConfig, build_config
from latentforge.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = build_config("cpu", overrides=["train.lr=3e-4", "model.enc_widths=[8,16,32]", "data.name=emoji"])
    path = tmp_path / "config.yaml"
    cfg.save(path)
    again = RunConfig.load(path)
    assert again == cfg
    assert again.model.enc_widths == (8, 16, 32)
    assert again.train.lr == 3e-4
    assert yaml.safe_load(path.read_text())["preset"] == "cpu"


def test_precedence_defaults_preset_file_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 0.01\n  batch_size: 8\n")
    cfg = build_config("cpu", f, ["train.batch_size=4"])
    assert cfg.train.lr == 0.01 and cfg.train.batch_size == 4
    assert cfg.model.enc_widths == PRESETS["cpu"]["model"]["enc_widths"]
    assert build_config().model.enc_widths == (128, 256, 512, 1024)  # the paper recipe is the default


@pytest.mark.parametrize("override,needle", [
    (["train.lrr=1"], "did you mean 'train.lr'"),
    (["train.lr=abc"], "train.lr"),
    (["nokey"], "key=value"),
    (["loss.perceptual=vgg"], "loss.perceptual"),
])
def test_bad_overrides_name_the_key(override, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        build_config(overrides=override)


def test_unknown_key_in_file_and_bad_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  stepz: 3\n")
    with pytest.raises(ConfigError, match="train.stepz"):
        build_config(file=f)
    f.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(file=f)
    with pytest.raises(ConfigError, match="not found"):
        build_config(file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config("huge")
