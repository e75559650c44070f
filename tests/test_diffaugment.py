"""DiffAugment for the DCGAN's discriminator: differentiable, shape- and range-keeping transforms whose randomness
comes from (seed, step), so a resumed run repeats its losses."""
import json

import pytest
import torch

import latentforge
from latentforge.config import DIFFAUG_POLICIES, build_config
from latentforge.errors import ConfigError
from latentforge.models import diffaugment
from latentforge.models.diffaugment import color, cutout, diff_augment, translation

from conftest import train_losses

GAN = ["data.resolution=16", "train.batch_size=16", "train.log_every=1", "train.sample_every=1000",
       "train.checkpoint_every=2", "train.grid_size=4"]


def fixed(value):
    """A `rand` that returns `value` everywhere (U[0, 1) stand-in)."""
    return lambda *shape: torch.full((4, *shape), value)


def seeded(seed=0):
    g = torch.Generator().manual_seed(seed)
    return lambda *shape: torch.rand((4, *shape), generator=g)


def test_every_configurable_policy_is_implemented():
    assert set(DIFFAUG_POLICIES) == set(diffaugment._OPS)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_augmentations_keep_the_shape_and_pass_gradients(policy):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_()
    y = diff_augment(x, policy, seeded())
    assert y.shape == x.shape and torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_translation_moves_pixels_by_whole_steps_and_fills_with_zero():
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    assert torch.equal(translation(x, fixed(0.5)), x)  # the middle draw is no shift
    shifted = translation(x, fixed(0.0))  # the smallest draw: -2 px in each direction (1/8 of 16)
    assert torch.equal(shifted[:, :, :-2, :-2], x[:, :, 2:, 2:])
    assert (shifted[:, :, -2:, :] == 0).all() and (shifted[:, :, :, -2:] == 0).all()
    y = translation(x, seeded())  # values come from x or the zero fill: the range is kept
    assert y.min() >= min(x.min(), 0) and y.max() <= max(x.max(), 0)


def test_cutout_zeroes_one_half_size_square():
    x = torch.rand(4, 3, 16, 16) + 1.0  # no zeros of its own
    y = cutout(x, fixed(0.5))  # centre (8, 8): rows and columns 4-11
    assert ((y == 0).sum(dim=(1, 2, 3)) == 3 * 8 * 8).all()
    assert (y[:, :, 4:12, 4:12] == 0).all() and torch.equal(y[:, :, :4], x[:, :, :4])


def test_color_on_a_flat_grey_image_only_shifts_brightness():
    x = torch.full((4, 3, 8, 8), 0.2)
    for b in (0.0, 0.3, 0.99):  # saturation and contrast have nothing to scale on a flat image
        torch.testing.assert_close(color(x, fixed(b)), x + (b - 0.5))
    y = color(torch.rand(4, 3, 8, 8) * 2 - 1, seeded())
    assert y.abs().max() <= 1.5 * 2 * 1.5 + 0.5  # brightness +-0.5, saturation x<=2, contrast x<=1.5 around means


def test_an_unknown_policy_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="unknown DiffAugment policy flip"):
        build_config("cpu", overrides=["model.diffaug=color,flip"], model_type="dcgan")
    assert build_config("cpu", overrides=["model.diffaug= color , cutout"], model_type="dcgan").model.diffaug == \
        "color,cutout"


def test_a_diffaugment_run_changes_training_and_resumes_exactly(tmp_path):
    sets = GAN + ["model.diffaug=color,translation,cutout"]
    latentforge.train("dcgan", data="digits", steps=4, out=tmp_path / "plain", preset="tiny", progress=False,
                      overrides=GAN)
    latentforge.train("dcgan", data="digits", steps=4, out=tmp_path / "whole", preset="tiny", progress=False,
                      overrides=sets)
    latentforge.train("dcgan", data="digits", steps=4, out=tmp_path / "part", preset="tiny", progress=False,
                      overrides=sets, until_step=2)
    latentforge.train("dcgan", out=tmp_path / "part", resume=True, progress=False)
    whole = train_losses(tmp_path / "whole")
    assert train_losses(tmp_path / "part") == whole
    assert whole != train_losses(tmp_path / "plain")
    assert json.loads((tmp_path / "whole" / "run.json").read_text())["task"]["diffaug"] == "color,translation,cutout"
