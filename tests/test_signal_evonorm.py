"""helpers.activation_functions.propagation (deep MLP at init) and .evonorm (EvoNorm-B0/S0): parity with manual computations."""
import math

import pytest
import torch
from torch import nn

from helpers.activation_functions import evonorm
from helpers.activation_functions import propagation as signal
from helpers.models.cnn import WildCNNConfig


def test_init_std_values_and_errors():
    assert signal.init_std("kaiming", 100, 7) == pytest.approx(math.sqrt(2 / 100))
    assert signal.init_std("xavier", 100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert signal.init_std("naive", 100, 300, naive_std=0.05) == 0.05
    assert signal.init_std("kaiming", 64, 64) == pytest.approx(nn.init.calculate_gain("relu") / 8)
    with pytest.raises(ValueError, match="naive, xavier, kaiming"):
        signal.init_std("he", 10, 10)
    with pytest.raises(ValueError, match="unknown activation"):
        signal.SignalConfig(activation="swish")
    with pytest.raises(ValueError, match="nets"):
        signal.SignalConfig(nets=0)


def test_propagate_matches_a_manual_loop():
    cfg = signal.SignalConfig(depth=4, width=16, batch=8, init="xavier", activation="elu", seed=3)
    trace = signal.propagate(cfg)
    gen = torch.Generator().manual_seed(3)  # the documented draw order: input, weights, read-out
    a = torch.randn(8, 16, dtype=torch.float64, generator=gen)
    ws = [(torch.randn(16, 16, dtype=torch.float64, generator=gen) * math.sqrt(2 / 32)).requires_grad_()
          for _ in range(4)]
    r = torch.randn(8, 16, dtype=torch.float64, generator=gen)
    hs = []
    for w in ws:
        h = a @ w.T
        h.retain_grad()
        hs.append(h)
        a = torch.nn.functional.elu(h)
    ((a * r).sum() / math.sqrt(8)).backward()
    assert torch.allclose(trace.variance, torch.stack([h.var() for h in hs]).detach())
    assert torch.allclose(trace.grad_variance, torch.stack([h.grad.var() for h in hs]))
    assert torch.allclose(trace.grad_norm, torch.stack([w.grad.norm() for w in ws]))
    assert trace.mean[-1].item() == pytest.approx(a.mean().item())


def test_variance_across_depth_follows_the_theory():
    kw = dict(depth=12, width=128, batch=32, nets=8, activation="relu")
    kaiming = signal.propagate(signal.SignalConfig(init="kaiming", **kw))
    assert 0.6 < kaiming.ratio() < 1.6
    xavier = signal.propagate(signal.SignalConfig(init="xavier", **kw))
    # sigma_w^2 * width = 1 halves E[h^2] per layer: 11 halvings between layer 1 and 12
    assert math.log2(xavier.ratio()) == pytest.approx(-11, abs=1.0)
    naive = signal.propagate(signal.SignalConfig(init="naive", **kw))
    per_layer = 128 * 0.01 ** 2 / 2
    assert math.log10(naive.ratio()) == pytest.approx(11 * math.log10(per_layer), abs=0.5)
    traces = signal.sweep(["naive", "kaiming"], ["relu", "tanh"], depth=3, width=8, batch=4)
    assert set(traces) == {("naive", "relu"), ("naive", "tanh"), ("kaiming", "relu"), ("kaiming", "tanh")}


def _b0_manual(x, running_var=None, eps=1e-5):
    """The paper's formula written per element with explicit loops over channels."""
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        xc = x[:, c]  # (N, H, W)
        bvar = xc.var(unbiased=False) if running_var is None else running_var[c]
        ivar = xc.reshape(len(xc), -1).var(dim=1, unbiased=False)[:, None, None]  # (N, 1, 1)
        out[:, c] = xc / torch.maximum(torch.sqrt(bvar + eps) * torch.ones_like(xc), xc + torch.sqrt(ivar + eps))
    return out


def test_evonorm_b0_matches_the_formula_in_train_and_eval_mode():
    torch.manual_seed(0)
    x = torch.randn(5, 6, 4, 4) * 2 + 0.5
    layer = evonorm.EvoNormB0(6, momentum=0.5)
    assert torch.allclose(layer(x), _b0_manual(x), atol=1e-6)
    batch_var = x.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(layer.running_var.flatten(), 0.5 * 1 + 0.5 * batch_var)
    layer.eval()
    assert torch.allclose(layer(x), _b0_manual(x, layer.running_var.flatten()), atol=1e-6)
    # in training mode the batch matters: the first image's output changes with its batch-mates
    layer.train()
    assert not torch.allclose(layer(x)[:1], layer(x[:2])[:1])


def test_evonorm_s0_matches_the_formula_and_ignores_the_batch():
    torch.manual_seed(1)
    layer = evonorm.EvoNormS0(8, groups=2)
    with torch.no_grad():
        layer.v.uniform_(0.5, 1.5)
        layer.gamma.uniform_(0.5, 1.5)
        layer.beta.uniform_(-0.5, 0.5)
    x = torch.randn(3, 8, 5, 5)
    expected = torch.empty_like(x)
    for n in range(3):
        for g in range(2):
            cs = slice(4 * g, 4 * g + 4)
            std = torch.sqrt(x[n, cs].var(unbiased=False) + 1e-5)
            v, gamma, beta = (p[0, cs] for p in (layer.v, layer.gamma, layer.beta))
            expected[n, cs] = x[n, cs] * torch.sigmoid(v * x[n, cs]) / std * gamma + beta
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.allclose(layer(x)[1:2], layer(x[1:2]), atol=1e-6)
    assert evonorm.EvoNormS0(16).groups == 16  # 32 groups capped at the channel count
    with pytest.raises(ValueError, match="divisible"):
        evonorm.EvoNormS0(12, groups=8)
    with pytest.raises(ValueError, match=r"expects \(N, 8, H, W\)"):
        layer(torch.randn(2, 4, 3, 3))


def test_wild_cnn_variants():
    cfg = WildCNNConfig(channels=(8, 16, 16), n_classes=4)
    x = torch.rand(2, 3, 32, 32)
    for name, kind in [("bn_relu", nn.BatchNorm2d), ("evonorm_b0", evonorm.EvoNormB0),
                       ("evonorm_s0", evonorm.EvoNormS0)]:
        net = evonorm.wild_cnn(name, cfg, **({"groups": 4} if name == "evonorm_s0" else {}))
        assert isinstance(net.blocks[1].bn2, kind)
        assert net(x).shape == (2, 4)
        n_relu = sum(isinstance(m, nn.ReLU) for m in net.modules())
        assert n_relu == (5 if name == "bn_relu" else 0)
    with pytest.raises(ValueError, match="bn_relu, evonorm_b0, evonorm_s0"):
        evonorm.wild_cnn("groupnorm", cfg)
    with pytest.raises(ValueError, match="nothing to swap"):
        evonorm.swap_norm_act(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), evonorm.EvoNormS0)
