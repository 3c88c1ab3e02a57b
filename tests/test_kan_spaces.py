"""KAN edge-function spaces: each basis against its closed form, layers against sums written out by hand."""
import math

import pytest
import torch

from helpers.activation_functions import kan, kan_spaces as ks


def test_chebyshev_is_cos_of_k_arccos():
    x = torch.linspace(-1.9, 1.9, 41, dtype=torch.float64)          # range (-2, 2): u = x / 2
    basis = ks.ChebyshevSpace(6, (-2.0, 2.0))(x)
    k = torch.arange(6, dtype=torch.float64)
    expected = torch.cos(k * torch.arccos(x / 2)[:, None])
    assert torch.allclose(basis, expected, atol=1e-10)


def test_fourier_columns():
    x = torch.linspace(0.0, 4.0, 33, dtype=torch.float64)           # range (0, 4): u = x / 2 - 1
    basis = ks.FourierSpace(2, (0.0, 4.0))(x)
    u = x / 2 - 1
    expected = torch.stack([torch.ones_like(u), torch.sin(math.pi * u), torch.cos(math.pi * u),
                            torch.sin(2 * math.pi * u), torch.cos(2 * math.pi * u)], -1)
    assert basis.shape == (33, 5)
    assert torch.allclose(basis, expected, atol=1e-6)


def test_bspline_space_is_the_kan_basis():
    x = torch.linspace(-0.99, 0.99, 50)
    space = ks.BSplineSpace(4, 3)
    assert torch.allclose(space(x), kan.bspline_basis(x, kan.uniform_knots(4, 3), 3))
    assert torch.allclose(space(x).sum(-1), torch.ones(50), atol=1e-5)


def test_relu_bells_are_relu_kan():
    # ReLU-KAN: R_m(x) = [relu(e_m - x) relu(x - s_m)]^2 * 16 / (e_m - s_m)^4, zero outside [s_m, e_m]
    space = ks.BellSpace(4, 3, torch.relu)
    x = torch.linspace(-2.5, 2.5, 401, dtype=torch.float64)
    s, e = space.start.double(), space.end.double()
    expected = (torch.relu(e - x[:, None]) * torch.relu(x[:, None] - s)) ** 2 * 16 / (e - s) ** 4
    assert torch.allclose(space(x.float()).double(), expected, atol=1e-5)
    centre = ((s + e) / 2).float()
    assert torch.allclose(space(centre).diagonal(), torch.ones(7), atol=1e-5)   # every bump peaks at 1
    assert space.n_basis == 7 and torch.allclose(e - s, torch.full((7,), 2.0, dtype=torch.float64))


def test_smooth_bells_leak_outside_the_interval():
    silu_bells = ks.BellSpace(4, 3, torch.nn.functional.silu)
    far = torch.tensor([3.0])                                        # right of every interval
    assert (silu_bells(far).abs() > 0).all() and (ks.BellSpace(4, 3)(far) == 0).all()


def test_space_layer_is_a_sum_of_edges():
    torch.manual_seed(0)
    layer = ks.SpaceKANLayer(3, 2, ks.FourierSpace(2))
    x = torch.rand(5, 3) * 2 - 1
    basis = layer.space(x)                                           # (5, 3, 5)
    by_hand = torch.stack([sum(basis[:, i] @ layer.coef[j, i] for i in range(3)) for j in range(2)], -1)
    assert torch.allclose(layer(x), by_hand, atol=1e-6)
    assert kan.n_params(layer) == 2 * 3 * 5


def test_selectable_layer_mixes_with_softmax_weights():
    torch.manual_seed(0)
    spaces = {"poly": ks.ChebyshevSpace(4), "fourier": ks.FourierSpace(1)}
    layer = ks.SelectableKANLayer(2, 3, spaces)
    with torch.no_grad():
        layer.logits.normal_()
    x = torch.rand(6, 2) * 2 - 1
    w = layer.logits.softmax(-1)
    parts = [ks.SpaceKANLayer(2, 3, sp) for sp in spaces.values()]
    by_hand = 0
    for s, (part, coef) in enumerate(zip(parts, layer.coefs)):
        with torch.no_grad():
            part.coef.copy_(coef * w[..., s:s + 1])
        by_hand = by_hand + part(x)
    assert torch.allclose(layer(x), by_hand, atol=1e-5)
    layer.temperature = 0.5
    assert torch.allclose(layer.weights(), (layer.logits / 0.5).softmax(-1))


def test_prune_keeps_the_heaviest_space_and_its_function():
    torch.manual_seed(1)
    layer = ks.SelectableKANLayer(2, 2, {"poly": ks.ChebyshevSpace(4), "fourier": ks.FourierSpace(1)})
    choice = torch.tensor([[0, 1], [1, 0]])
    with torch.no_grad():
        layer.logits.copy_(torch.nn.functional.one_hot(choice, 2) * 50.0)   # weights one-hot up to 1e-21
    pruned = layer.prune()
    assert pruned.choice.tolist() == choice.tolist()
    assert pruned.chosen() == [["poly", "fourier"], ["fourier", "poly"]]
    x = torch.rand(7, 2) * 2 - 1
    assert torch.allclose(pruned(x), layer(x), atol=1e-5)
    assert kan.n_params(pruned) == 2 * 4 + 2 * 3                     # only the chosen coefficients remain


def test_bad_arguments():
    with pytest.raises(ValueError, match="high > low"):
        ks.ChebyshevSpace(4, (1.0, 1.0))
    with pytest.raises(ValueError, match="n_frequencies"):
        ks.FourierSpace(0)
    with pytest.raises(ValueError, match="at least one space"):
        ks.SelectableKANLayer(1, 1, {})
