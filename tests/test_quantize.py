"""helpers.ops.quantization and helpers.quantize: against torch.ao.quantization's observers and torch's fake-quant
ops, exact int8 products, bad input, and models left unchanged."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from helpers.ops.quantization import check_bits, dequantize, fake_quant, int_range, qparams, quantize, sqnr_db
from helpers.quantize import calibration, int8, mixed_bits

warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver  # noqa: E402


def _same_up_to_ties(ours: torch.Tensor, torchs: torch.Tensor, scale: torch.Tensor) -> None:
    """torch multiplies by 1/scale instead of dividing: an entry within float error of a rounding boundary may land
    one step away; allow that for under 1% of the entries, nothing more."""
    off = (ours - torchs).abs() / scale
    assert off.max() <= 1.001 and (off > 1e-4).float().mean() < 0.01


@pytest.fixture
def acts() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, 32, generator=g)
    x[..., 5] *= 40.0                                      # an outlier channel
    x[..., 7] = x[..., 7].abs() + 1.0                      # a channel whose range does not contain 0
    return x


@pytest.mark.parametrize("bits", [8, 4])
def test_per_tensor_affine_equals_minmax_observer(acts, bits):
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=0, quant_max=2 ** bits - 1)
    obs(acts)
    scale, zero = obs.calculate_qparams()
    qp = calibration.calibrate(acts, bits, "minmax", symmetric=False)
    assert torch.allclose(scale, qp.scale.reshape(scale.shape), rtol=1e-6)
    assert int(zero) == int(qp.zero_point)
    ref = torch.fake_quantize_per_tensor_affine(acts, scale.item(), int(zero), 0, 2 ** bits - 1)
    _same_up_to_ties(fake_quant(acts, qp), ref, scale)


def test_symmetric_equals_minmax_observer_with_restricted_range(acts):
    obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127)
    obs(acts)
    scale, zero = obs.calculate_qparams()
    qp = calibration.calibrate(acts, 8, "minmax", symmetric=True)
    assert torch.allclose(scale, qp.scale.reshape(scale.shape), rtol=1e-6) and int(zero) == 0 == int(qp.zero_point)


@pytest.mark.parametrize("axis", [2, 1])
def test_per_channel_equals_per_channel_observer(acts, axis):
    obs = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.quint8, qscheme=torch.per_channel_affine)
    obs(acts)
    scale, zero = obs.calculate_qparams()
    qp = calibration.calibrate(acts, 8, "minmax", symmetric=False, axis=axis)
    assert torch.allclose(scale, qp.scale, rtol=1e-6) and torch.equal(zero.long(), qp.zero_point.long())
    ref = torch.fake_quantize_per_channel_affine(acts, scale, zero.int(), axis, 0, 255)
    _same_up_to_ties(fake_quant(acts, qp), ref, scale.reshape(1, -1, 1) if axis == 1 else scale)


def test_mse_range_is_as_good_as_histogram_observer_and_beats_minmax():
    x = torch.cat([torch.randn(4000), torch.tensor([60.0, -45.0])])  # heavy tails: clipping pays
    hist = HistogramObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    hist(x)
    s, z = hist.calculate_qparams()
    err_hist = sqnr_db(x, torch.fake_quantize_per_tensor_affine(x, s.item(), int(z), 0, 255))
    err_mse = sqnr_db(x, fake_quant(x, calibration.calibrate(x, 8, "mse")))
    err_minmax = sqnr_db(x, fake_quant(x, calibration.calibrate(x, 8, "minmax")))
    assert err_mse >= err_minmax and err_mse > err_hist - 1.5


def test_quantize_dequantize_roundtrip_and_codes_in_range(acts):
    for bits in (2, 3, 8, 16):
        for symmetric in (True, False):
            qp = calibration.calibrate(acts, bits, symmetric=symmetric, axis=2)
            q = quantize(acts, qp)
            lo, hi = int_range(bits, symmetric)
            assert q.min() >= lo and q.max() <= hi and q.dtype == torch.int32
            assert torch.allclose(dequantize(q, qp), fake_quant(acts, qp))
            # min-max never clips: the error of every entry is at most half a step (plus float rounding)
            step = qp.scale.reshape(1, 1, -1)
            assert ((fake_quant(acts, qp) - acts).abs() <= step / 2 * 1.001 + 1e-6 * acts.abs()).all()


def test_per_channel_and_percentile_beat_per_tensor_minmax_with_an_outlier(acts):
    other = torch.ones(acts.shape[-1], dtype=torch.bool)
    other[5] = False                                        # the channels that are not the outlier
    tensor = fake_quant(acts, calibration.calibrate(acts, 4))[..., other]
    channel = fake_quant(acts, calibration.calibrate(acts, 4, axis=2))[..., other]
    assert sqnr_db(acts[..., other], channel) > sqnr_db(acts[..., other], tensor) + 10
    x = torch.cat([torch.randn(20_000), torch.tensor([80.0])])
    clipped = sqnr_db(x, fake_quant(x, calibration.calibrate(x, 4, "percentile", symmetric=True)))
    assert clipped > sqnr_db(x, fake_quant(x, calibration.calibrate(x, 4, "minmax", symmetric=True))) + 3


@pytest.mark.parametrize("bad", [1, 0, 17, 32, 2.5, "8", True])
def test_bad_bit_widths_raise_before_work(bad):
    with pytest.raises(ValueError, match="from 2 to 16"):
        check_bits(bad)
    with pytest.raises(ValueError, match="from 2 to 16"):
        calibration.calibrate(torch.randn(4), bad)
    with pytest.raises(ValueError, match="from 2 to 16"):
        qparams(-1.0, 1.0, bad)
    model = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="from 2 to 16"):
        int8.fake_quantize_model(model, None, weight_bits=bad)   # None would fail differently if used first
    with pytest.raises(ValueError, match="from 2 to 16"):
        mixed_bits.MixedBitQuantizer(torch.zeros(2), torch.ones(2), b_min=bad if bad != 17 else 1)


def test_other_bad_input():
    with pytest.raises(ValueError, match="method must be one of minmax, percentile, mse"):
        calibration.calibrate(torch.randn(4), 8, "kl")
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        calibration.calibrate(torch.randn(4, 4), 8, axis=3)
    with pytest.raises(ValueError, match=r"percentile must be in \(50, 100\]"):
        calibration.percentile_range(torch.randn(4), 20.0)
    with pytest.raises(ValueError, match="budget"):
        mixed_bits.greedy_bits(torch.ones(3), torch.zeros(3), torch.ones(3), budget=9.0)
    with pytest.raises(ValueError, match="not Linear layers"):
        int8.quantize_linears(nn.Sequential(nn.Linear(2, 2)), skip=["head"])


def test_int8_matmul_is_exact_integer_arithmetic():
    g = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(5, 7, 48, generator=g), torch.randn(24, 48, generator=g), torch.randn(24, generator=g)
    qw, sw = int8.int8_weight(w)
    qx, sx = int8.int8_rows(x.reshape(-1, 48))
    exact = (qx.double() @ qw.double().t()) * sx.double()[:, None] * sw.double()[None, :]
    got = int8.int8_matmul(x, qw, sw)
    assert got.shape == (5, 7, 24)
    assert torch.allclose(got.reshape(-1, 24).double(), exact, rtol=1e-5, atol=1e-5)
    lin = nn.Linear(48, 24)
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    q = int8.Int8Linear.from_linear(lin)
    assert q.qweight.dtype == torch.int8
    assert torch.allclose(q(x), got + b, atol=1e-6)
    assert sqnr_db(lin(x), q(x)) > 30


def test_transforms_never_change_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    before = copy.deepcopy(model.state_dict())
    x = torch.rand(16, 3, 8, 8)
    y = model(x)
    sim = int8.fake_quantize_model(model, x, 4, 4)
    fast = int8.quantize_linears(model)
    assert not torch.allclose(sim(x), y)                      # the copy is quantized ...
    assert torch.allclose(fast(x), y, atol=0.05)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())   # ... the original is not
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    assert isinstance(model[3], nn.Linear) and torch.equal(model(x), y)


def test_model_bytes():
    net = nn.Sequential(nn.Linear(100, 50), nn.Linear(50, 10))
    assert int8.model_bytes(net) == 4 * (100 * 50 + 50 + 50 * 10 + 10)
    q = int8.quantize_linears(net)
    assert int8.model_bytes(q) == (100 * 50 + 50 * 10) + 4 * (50 + 10) * 2     # codes + scales + float biases
    assert int8.storage_bytes(100, 3, n_scales=2) == 38 + 16


def test_round_to_budget_and_greedy_keep_the_budget():
    g = torch.Generator().manual_seed(0)
    for budget in (2.0, 2.5, 3.25, 6.0):
        cont = 2 + 6 * torch.rand(40, generator=g)
        b = mixed_bits.round_to_budget(cont, budget, 2, 8)
        assert b.sum() <= budget * 40 + 1e-6 and b.min() >= 2 and b.max() <= 8 and torch.equal(b, b.round())
        gb = mixed_bits.greedy_bits(torch.rand(40, generator=g), torch.zeros(40), torch.ones(40), budget)
        assert gb.sum() == int(budget * 40) and gb.min() >= 2
    # the channel that matters 100x more gets more bits, a useless one stays at b_min
    gb = mixed_bits.greedy_bits(torch.tensor([100.0, 1.0, 0.0]), torch.zeros(3), torch.ones(3), budget=4.0)
    assert gb[0] > gb[1] and gb[2] == 2


def test_learned_bits_follow_channel_importance():
    # a linear read-out that depends strongly on channel 0, weakly on 1, not at all on 2 and 3
    torch.manual_seed(0)
    x = torch.rand(512, 4)
    w = torch.tensor([10.0, 1.0, 0.0, 0.0])
    y = x @ w
    q = mixed_bits.MixedBitQuantizer(torch.zeros(4), torch.ones(4), b_min=2, b_max=8)
    mixed_bits.train_bits(q, lambda q, step: ((q(x) @ w - y) ** 2).mean(), budget=4.0, steps=200, lam=1.0)
    bits = q.harden(4.0)
    assert bits.mean() <= 4.0 and bits[0] == bits.max() and bits[0] > bits[2] and bits[0] > bits[3]
    assert torch.equal(q.bits(), bits)


def test_quantize_channels_passes_gradients_straight_through():
    x = torch.rand(10, 3, requires_grad=True)
    bits = torch.full((3,), 3.0, requires_grad=True)
    out = mixed_bits.quantize_channels(x, bits, torch.zeros(3), torch.ones(3))
    out.sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x)) and bits.grad is not None
    assert len(torch.unique(out.detach())) <= 8
