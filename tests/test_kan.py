"""helpers.activation_functions: kan (B-spline basis, KAN layers) and fourier (DARUAN, Fourier series)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from helpers.activation_functions.fourier import (DARUAN, FourierActivation, daruan_spectrum, encoding_weights,
                                        measured_spectrum)
from helpers.activation_functions.kan import KANConfig, KANLayer, bspline_basis, kan, n_params, uniform_knots


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_bspline_basis_matches_scipy(order):
    knots = uniform_knots(6, order, (-1.0, 2.0)).double()
    x = torch.linspace(-1.0, 1.999, 97, dtype=torch.float64)
    ours = bspline_basis(x, knots, order)
    scipys = BSpline.design_matrix(x.numpy(), knots.numpy(), order).toarray()
    assert ours.shape == (97, 6 + order)
    np.testing.assert_allclose(ours.numpy(), scipys, atol=1e-12)
    assert torch.allclose(ours.sum(-1), torch.ones(97, dtype=torch.float64))  # partition of unity inside the grid


def test_basis_is_zero_outside_the_extended_grid_and_keeps_batch_shape():
    knots = uniform_knots(4, 3)
    assert bspline_basis(torch.tensor([-5.0, 5.0]), knots, 3).abs().max() == 0
    assert bspline_basis(torch.rand(2, 3, 5), knots, 3).shape == (2, 3, 5, 7)


def test_kan_layer_is_the_sum_of_its_edge_functions():
    torch.manual_seed(0)
    layer = KANLayer(3, 2, KANConfig(grid_size=5))
    x = torch.rand(11, 3) * 2 - 1
    basis = bspline_basis(x, layer.knots, 3)                                # (11, 3, 8)
    manual = torch.zeros(11, 2)
    for j in range(2):
        for i in range(3):
            phi = layer.base_weight[j, i] * torch.nn.functional.silu(x[:, i]) + basis[:, i] @ layer.spline_coef[j, i]
            manual[:, j] += phi
    assert torch.allclose(layer(x), manual, atol=1e-6)
    grid = torch.linspace(-1, 1, 7)
    edges = layer.edge_functions(grid)                                      # (7, 2, 3)
    assert torch.allclose(edges.sum(-1), layer(grid[:, None].expand(7, 3)), atol=1e-6)


def test_parameter_count_and_errors():
    net = kan([2, 5, 1], grid_size=3, order=3)
    assert n_params(net) == (2 * 5 + 5 * 1) * (3 + 3 + 1)
    with pytest.raises(ValueError, match="at least an input"):
        kan([2])
    with pytest.raises(ValueError, match="high > low"):
        uniform_knots(3, 3, (1.0, -1.0))
    with pytest.raises(ValueError, match=r"expects \(\.\.\., 2\)"):
        net(torch.zeros(4, 3))


def test_a_one_edge_kan_fits_a_smooth_curve_by_least_squares():
    # a KAN edge is linear in its spline coefficients: the best fit is a least-squares solve
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)
    y = torch.sin(3 * x)
    basis = bspline_basis(x, uniform_knots(8, 3).double(), 3)
    coef = torch.linalg.lstsq(basis, y[:, None]).solution
    assert (basis @ coef - y[:, None]).abs().max() < 1e-3


# ----------------------------------------------------------------- Fourier-type (DARUAN, series) edge functions
def _rz(t):
    return torch.linalg.matrix_exp(-0.5j * t * torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128))


def _ry(t):
    return torch.linalg.matrix_exp(-0.5j * t * torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128))


def test_daruan_equals_the_circuit_written_with_matrix_exponentials():
    torch.manual_seed(0)
    act = DARUAN(n_features=2, repetitions=3, weights="powers_of_2")
    with torch.no_grad():
        act.weights.add_(torch.randn(2, 3) * 0.1)
        act.scale.fill_(1.5)
        act.shift.fill_(-0.2)
    x = torch.randn(5, 2)
    z = torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128)
    expected = torch.zeros(5, 2)
    for n in range(5):
        for f in range(2):
            angles = act.angles[f].detach().double()
            psi = torch.tensor([1, 0], dtype=torch.complex128)
            for layer in range(4):
                if layer > 0:
                    psi = _rz(act.weights[f, layer - 1].item() * x[n, f].item()) @ psi
                a, b, c = angles[layer]
                psi = _rz(a) @ _ry(b) @ _rz(c) @ psi
            expected[n, f] = 1.5 * (psi.conj() @ z @ psi).real - 0.2
    assert torch.allclose(act(x), expected, atol=1e-5)


@pytest.mark.parametrize("scheme, highest", [("ones", 3), ("powers_of_2", 7), ("ternary", 13)])
def test_daruan_spectrum_measured_by_fft_matches_the_analytic_set(scheme, highest):
    act = DARUAN(n_features=4, repetitions=3, weights=scheme, generator=torch.Generator().manual_seed(1))
    x = torch.arange(128) * 2 * math.pi / 128
    with torch.no_grad():
        values = act(x[:, None].expand(128, 4)).T                          # (4, 128)
    assert measured_spectrum(values) == [int(f) for f in daruan_spectrum(encoding_weights(3, scheme).tolist())]
    assert max(measured_spectrum(values)) == highest


def test_fourier_activation_formula_and_errors():
    act = FourierActivation(n_features=2, n_frequencies=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(6, 2)
    k = torch.arange(1, 4.0)
    manual = act.bias + act.linear * x + (act.sin_coef * torch.sin(x[..., None] * k)).sum(-1) \
        + (act.cos_coef * torch.cos(x[..., None] * k)).sum(-1)
    assert torch.allclose(act(x), manual, atol=1e-6)
    assert n_params(act) == 2 * (2 * 3 + 2)
    with pytest.raises(ValueError, match="valid: ones, powers_of_2, ternary"):
        encoding_weights(2, "fibonacci")
    with pytest.raises(ValueError, match=r"expects \(\.\.\., 3\)"):
        DARUAN(3, 1)(torch.zeros(2, 2))
