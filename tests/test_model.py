import pytest
import torch
import torch.nn.functional as F

from latentforge.latents.patterns import DropoutPatterns, PatternSpec
from latentforge.losses.laplacian import LaplacianPyramidLoss
from latentforge.models.deae import DeAENet
from latentforge.tasks.deae import bn_mode, random_shift
from latentforge.train.ema import EMA


@pytest.mark.parametrize("res,widths", [(8, (8, 16)), (16, (8, 16, 32)), (64, (8, 16, 32, 32, 64))])
def test_shapes_across_resolutions(res, widths):
    net = DeAENet(3, res, widths, 16)
    masks = DropoutPatterns(PatternSpec(net.mask_channels, "khot", (1,) * len(net.mask_channels))).for_examples(range(4))
    assert net(torch.randn(4, 3, res, res), masks).shape == (4, 3, res, res)


def test_reference_size_parameter_count():
    net = DeAENet(3, 32, (128, 256, 512, 1024), 128)
    assert abs(sum(p.numel() for p in net.parameters()) - 18.1e6) < 0.05e6  # the reference network: 18.1M


def test_bad_resolution_and_widths():
    with pytest.raises(ValueError, match="power of two"):
        DeAENet(3, 24, (8, 16, 32), 16)
    with pytest.raises(ValueError, match="needs 4"):
        DeAENet(3, 32, (8, 16, 32), 16)


def test_masks_carry_the_signal():
    """Same pattern + different noise -> nearly the same latent after training is the goal; at init the latent
    must at least depend on the mask (it is the only per-example input)."""
    torch.manual_seed(0)
    net = DeAENet(1, 16, (16, 32, 64), 8).eval()
    p = DropoutPatterns(PatternSpec(net.mask_channels, "khot", (1, 2)))
    noise = torch.randn(1, 1, 16, 16).expand(2, -1, -1, -1)
    z = net.encode(noise, p.for_examples([0, 1]))
    assert not torch.allclose(z[0], z[1])


def test_random_shift_matches_reflect_pad_loop():
    x = torch.arange(2 * 1 * 3 * 10, dtype=torch.float32).view(2, 1, 3, 10)
    g = torch.Generator().manual_seed(3)
    y, code = random_shift(x, 4, g)
    r = torch.randint(-4, 5, (2,), generator=torch.Generator().manual_seed(3))
    for i in range(2):
        ri = int(r[i])
        if ri > 0:
            expect = F.pad(x[i:i + 1], (ri, 0, 0, 0), mode="reflect")[..., :-ri]
        elif ri < 0:
            expect = F.pad(x[i:i + 1], (0, -ri, 0, 0), mode="reflect")[..., -ri:]
        else:
            expect = x[i:i + 1]
        assert torch.equal(y[i:i + 1], expect)
        assert code[i] == pytest.approx(100 * (ri + 4) / 8)
    y0, c0 = random_shift(x, 0, g)
    assert torch.equal(y0, x) and torch.all(c0 == 50)


def test_bn_batch_mode_leaves_running_stats_untouched():
    net = DeAENet(1, 8, (8, 16), 8)
    before = [b.clone() for b in net.buffers()]
    with bn_mode(net, "batch"), torch.no_grad():
        masks = DropoutPatterns(PatternSpec(net.mask_channels, "khot", (1,))).for_examples(range(8))
        net(torch.randn(8, 1, 8, 8), masks)
        assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


def test_ema_warmup_and_update():
    lin = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(lin, max_decay=0.999, power=2 / 3, start=2, every=1)
    lin.weight.data.fill_(1.0)
    ema.update(lin, 1)  # before start: copy
    assert ema.model.weight.item() == 1.0
    lin.weight.data.fill_(3.0)
    d = ema.decay(5)
    ema.update(lin, 5)
    assert d == pytest.approx(1 - (1 + 2) ** (-2 / 3))
    assert ema.model.weight.item() == pytest.approx(1.0 * d + 3.0 * (1 - d))
    assert ema.decay(10**9) == 0.999


def test_laplacian_loss():
    loss = LaplacianPyramidLoss(3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(loss(x, x), torch.zeros(2))
    y = x + 0.1
    assert torch.allclose(loss(x, y), torch.full((2,), 0.1), atol=1e-5)  # a constant shift lives only in the base
    edge = x.clone()
    edge[..., ::2, :] += 0.2
    assert (loss(x, edge) > 0.1).all()
    bands = loss.pyramid(x)
    assert len(bands) == 4 and bands[-1].shape[-1] == 4


def test_constant_encoder_input_makes_the_latent_a_function_of_the_pattern():
    torch.manual_seed(0)
    net = DeAENet(1, 16, (16, 32, 64), 8, encoder_input="constant")
    masks = DropoutPatterns(PatternSpec(net.mask_channels, "khot", (1, 2))).for_examples(range(6))
    z1, z2 = net.encode(torch.randn(6, 1, 16, 16), masks), net.encode(torch.randn(6, 1, 16, 16), masks)
    torch.testing.assert_close(z1, z2)  # noise does not matter (batch norm in train mode included)
    assert z1.std(0).min() > 0  # patterns do
    assert isinstance(net.encoder[0], torch.nn.Identity) and net.constant.shape == (16, 8, 8)
    noisy = DeAENet(1, 16, (16, 32, 64), 8)
    assert not torch.allclose(noisy.encode(torch.randn(6, 1, 16, 16), masks),
                              noisy.encode(torch.randn(6, 1, 16, 16), masks))


@pytest.mark.parametrize("norm,layer", [("group", torch.nn.GroupNorm), ("none", None)])
def test_encoder_normalisation_options(norm, layer):
    net = DeAENet(3, 16, (16, 32, 64), 8, encoder_norm=norm)
    kinds = {type(m) for m in net.encoder.modules()}
    assert torch.nn.BatchNorm2d not in kinds and (layer is None or layer in kinds)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.decoder.modules())  # the decoder keeps BN
    masks = DropoutPatterns(PatternSpec(net.mask_channels, "khot", (1, 2))).for_examples(range(1))
    assert net(torch.randn(1, 3, 16, 16), masks).shape == (1, 3, 16, 16)  # per-example norms work at batch 1
    with pytest.raises(ValueError, match="normalisation"):
        DeAENet(3, 16, (16, 32, 64), 8, encoder_norm="layer")
