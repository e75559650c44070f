import pytest
import yaml

from latentforge.config import PRESETS, RunConfig, build_config
from latentforge.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = build_config("cpu", overrides=["model.optim.lr=3e-4", "model.enc_widths=[8,16,32]", "data.name=emoji"])
    path = tmp_path / "config.yaml"
    cfg.save(path)
    again = RunConfig.load(path)
    assert again == cfg
    assert again.model.enc_widths == (8, 16, 32)
    assert again.model.optim.lr == 3e-4
    assert yaml.safe_load(path.read_text())["preset"] == "cpu"


def test_precedence_defaults_preset_file_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  optim:\n    lr: 0.01\ntrain:\n  batch_size: 8\n")
    cfg = build_config("cpu", f, ["train.batch_size=4"])
    assert cfg.model.optim.lr == 0.01 and cfg.train.batch_size == 4
    assert cfg.model.optim.weight_decay == 0.08  # a partial section keeps the model's other defaults
    assert cfg.model.enc_widths == PRESETS["deae"]["cpu"]["model"]["enc_widths"]
    assert build_config().model.enc_widths == (128, 256, 512, 1024)  # the paper recipe is the default


@pytest.mark.parametrize("override,needle", [
    (["train.stepz=1"], "did you mean 'train.steps'"),
    (["model.optim.lr=abc"], "model.optim.lr"),
    (["nokey"], "key=value"),
    (["model.loss.perceptual=vgg"], "model.loss.perceptual"),
    (["train.lr=1e-3"], "has moved: optimizer settings live with the model now (model.optim.lr)"),
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


def test_run_folders_of_the_earlier_layout_still_load(tmp_path):
    """Before models had their own sections, DeAE's loss sat at the top and its optimizer settings in `train`."""
    old = {"model_type": "deae", "preset": "cpu", "model": {"latent_dim": 64, "enc_widths": [32, 64, 128, 256]},
           "loss": {"pixel": "mse", "perceptual": "laplacian"},
           "train": {"steps": 10, "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0.05, "wd_ramp_fraction": 0.4}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old))
    cfg = RunConfig.load(path)
    assert cfg.model.loss.pixel == "mse" and cfg.model.optim.lr == 1e-3 and cfg.model.optim.betas == (0.9, 0.99)
    assert cfg.model.optim.weight_decay == 0.05 and cfg.train.steps == 10
    # knobs added later take the values that reproduce the run, not today's `cpu` preset
    assert cfg.model.encoder_input == "noise" and cfg.model.mask_subclusters == 0 and cfg.model.mask_clusters == 0
    assert cfg.model.encoder_norm == "batch" and cfg.model.optim.warmup_steps == 0


def test_model_type_picks_the_model_section_and_its_presets():
    gan = build_config("cpu", model_type="dcgan", overrides=["model.width=0.5", "model.latent.kind=ssl"])
    assert gan.model_type == "dcgan" and gan.model.width == 0.5 and gan.train.batch_size == 64
    assert gan.model.g_optim.betas == (0.5, 0.999)
    with pytest.raises(ConfigError, match="did you mean 'model.width'"):
        build_config(model_type="dcgan", overrides=["model.widht=1"])
    with pytest.raises(ConfigError, match="model.enc_widths"):  # a DeAE key is not a DCGAN key
        build_config(model_type="dcgan", overrides=["model.enc_widths=[8]"])
    with pytest.raises(ConfigError, match="unknown preset 'cpu9' for dcgan"):
        build_config("cpu9", model_type="dcgan")
    with pytest.raises(ConfigError, match="unknown model type 'vae'"):
        RunConfig.from_dict({"model_type": "vae"})
    assert RunConfig.from_dict(yaml.safe_load(gan.to_yaml())) == gan


def test_learning_rate_warmup_and_delayed_weight_decay():
    from latentforge.config.sections import OptimConfig

    oc = OptimConfig(lr=1e-3, weight_decay=0.1, wd_start_fraction=0.2, wd_ramp_fraction=0.4, warmup_steps=10)
    assert [oc.lr_factor_at(s) for s in (0, 4, 9, 50)] == pytest.approx([0.1, 0.5, 1.0, 1.0])
    assert [oc.weight_decay_at(s, 100) for s in (0, 19, 20, 40, 60, 99)] == pytest.approx([0, 0, 0, 0.05, 0.1, 0.1])
    assert OptimConfig().lr_factor_at(0) == 1.0 and OptimConfig(weight_decay=0.1).weight_decay_at(0, 10) == 0.1


def test_the_paper_preset_is_the_reference_training_default(tmp_path):
    """`paper` = the official code's default: 32 k-means clusters on the first level, fresh patterns drawn over all
    channels (its sample.py); the unclustered recipe is one key away; the small presets keep their own codes, and a
    run folder says which rule is in force."""
    import json

    import latentforge

    paper = build_config("paper", model_type="deae").model
    assert (paper.mask_clusters, paper.mask_subclusters, paper.mask_sampling) == (32, 0, "uniform")
    assert build_config("paper", overrides=["model.mask_clusters=0"], model_type="deae").model.mask_clusters == 0
    assert build_config("tiny", model_type="deae").model.mask_clusters == 0
    assert build_config("cpu16", model_type="deae").model.mask_clusters == 0
    cpu = build_config("cpu", model_type="deae").model
    assert (cpu.mask_clusters, cpu.mask_subclusters, cpu.mask_sampling) == (32, 16, "frequency")
    out = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=2, out=out, preset="tiny", progress=False,
                      overrides=["data.resolution=16", "model.enc_widths=[16,32,64]", "model.mask_active=[1,2]",
                                 "model.mask_clusters=4", "model.mask_sampling=uniform", "train.batch_size=16",
                                 "data.limit=64", "train.sample_every=1000"])
    patterns = json.loads((out / "run.json").read_text())["task"]["patterns"]
    assert (patterns["clusters"], patterns["sampling"]) == (4, "uniform")
