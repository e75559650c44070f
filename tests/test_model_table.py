"""A model is its TrainTask and one entry in the model table: a toy model registered there (and nowhere else) is
validated, trained from the command line, checkpointed, resumed, loaded and sampled like the built-in ones."""
import json

import torch
from torch import nn

from latentforge.cli.main import main
from latentforge.config import MODELS, ModelEntry, OptimConfig, RunConfig, build_config, config_keys
from latentforge.config.sections import Strict
from latentforge.tasks import load_run
from latentforge.train.optimizer_step import Update
from latentforge.train.task import Batch, TrainTask


class ToyConfig(Strict):
    """A learned mean image: the smallest model that trains."""

    start: float = 0.0  # initial pixel value
    optim: OptimConfig = OptimConfig(lr=0.05)


class ToyTask(TrainTask):
    name = "toy"

    def __init__(self, cfg, device, shape, inputs, for_training=True):
        super().__init__(cfg, device, shape, inputs, for_training)
        self.net = nn.Module()
        self.net.mean = nn.Parameter(torch.full((shape.channels, shape.resolution, shape.resolution),
                                                cfg.model.start))
        self.updates = {"opt": Update(torch.optim.Adam(self.net.parameters(), lr=cfg.model.optim.lr),
                                      cfg.model.optim)}

    def modules(self):
        return {"net": self.net}

    def train_step(self, batch: Batch):
        loss = ((batch.images - self.net.mean) ** 2).mean()
        return {"loss": loss.item(), **self.optimize("opt", loss, batch)}

    def sample(self, n, seed=0, *, use_ema=True, bn=None):
        return self.net.mean.detach().clamp(-1, 1).expand(n, -1, -1, -1).clone()


TOY = ModelEntry(ToyConfig, f"{__name__}:ToyTask",
                 {"paper": {"train": {"batch_size": 16, "log_every": 1, "sample_every": 1000, "checkpoint_every": 5,
                                      "grid_size": 4}}},
                 "a learned mean image")


def test_the_built_in_models_are_the_table():
    assert list(MODELS) == ["deae", "dcgan", "ae", "dae", "prior", "latent-deae"]
    for name, entry in MODELS.items():
        assert "paper" in entry.presets and entry.summary
        assert isinstance(build_config(model_type=name).model, entry.config)


def test_one_table_entry_makes_a_model_everywhere(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(MODELS, "toy", TOY)
    cfg = build_config(model_type="toy", overrides=["model.start=0.5"])
    assert isinstance(cfg.model, ToyConfig) and cfg.model.start == 0.5
    assert "model.optim.lr" in config_keys("toy")
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.model_dump(mode="json")))) == cfg  # YAML/JSON round trip

    out = tmp_path / "toy"
    args = ["train", "toy", "--data", "digits", "--preset", "paper", "--set", "data.resolution=8",
            "--set", "data.limit=64", "--out", str(out), "--no-progress", "--no-report"]
    assert main([*args, "--steps", "5"]) == 0
    assert main([*args[:2], "--out", str(out), "--steps", "10", "--resume", "--no-progress", "--no-report"]) == 0
    losses = [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
              if r["kind"] == "train"]
    assert len(losses) == 10 and losses[-1] < losses[0]  # it learns, and the resumed session continued

    loaded = load_run(out)
    assert isinstance(loaded.task, ToyTask) and loaded.step == 10
    samples = loaded.task.sample(3)
    assert samples.shape == (3, 1, 8, 8) and float(samples.std(0).max()) == 0.0
    assert "toy" in capsys.readouterr().out  # the start line names the model
