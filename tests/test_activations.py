"""helpers.activation_functions.library: registry, closed-form derivatives against autograd, dead units, mean shift."""
import math

import pytest
import torch

from helpers.activation_functions import library as activations


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_function_matches_torch_module_and_derivative_matches_autograd(name):
    act = activations.get(name)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    x = x[x != 0].requires_grad_()  # ReLU-type kinks at 0 are a convention, not a derivative
    y = act.fn(x)
    assert torch.allclose(y, act.module()(x))
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(activations.derivative(name, x.detach()), grad, atol=1e-10)


def test_known_values():
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert torch.allclose(activations.apply("elu", x), torch.tensor([math.exp(-1) - 1, 0.0, 2.0]))
    assert torch.allclose(activations.apply("leaky_relu", x), torch.tensor([-0.01, 0.0, 2.0]))
    assert torch.allclose(activations.derivative("gelu", torch.zeros(1)), torch.tensor([0.5]))
    assert activations.derivative("relu", torch.zeros(1)).item() == 0.0


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="relu, leaky_relu, elu"):
        activations.get("swish")


def test_dead_fraction_units_and_channels():
    pre = torch.tensor([[-1.0, 2.0, -0.5], [-3.0, -1.0, -2.0]])  # units 0 and 2 never positive
    assert activations.dead_fraction(pre, "relu") == pytest.approx(2 / 3)
    assert activations.dead_fraction(pre, "elu") == 0.0  # the negative side still has a gradient
    assert activations.dead_fraction(pre, "leaky_relu") == 0.0
    maps = torch.randn(4, 5, 3, 3)
    maps[:, 1] = -maps[:, 1].abs()  # channel 1 is negative at every position of every image
    assert activations.dead_fraction(maps, "relu") == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="expected"):
        activations.dead_fraction(torch.randn(5), "relu")


def test_mean_shift_on_gaussian_inputs():
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(0))[:, None]
    relu_mean = activations.mean_activation(activations.apply("relu", z))
    elu_mean = activations.mean_activation(activations.apply("elu", z))
    assert relu_mean == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.01)
    # closed form: E[elu(z)] = 1/sqrt(2 pi) + e^(1/2) Phi(-1) - 1/2
    phi_minus_1 = 0.5 * (1 + math.erf(-1 / math.sqrt(2)))
    expected_elu = 1 / math.sqrt(2 * math.pi) + math.exp(0.5) * phi_minus_1 - 0.5
    assert elu_mean == pytest.approx(expected_elu, abs=0.01)
    assert activations.gaussian_mean("elu") == pytest.approx(expected_elu, abs=1e-6)
    assert abs(activations.gaussian_mean("tanh")) < 1e-9
