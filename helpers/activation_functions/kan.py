"""Kolmogorov-Arnold network (KAN) layers with B-spline edge functions, in plain torch.

An MLP puts a fixed non-linearity on each *node* and learns the weights on the edges. A KAN puts a
learnable one-dimensional function on each *edge* and only sums at the nodes:

    y_j = sum_i phi_ji(x_i),   phi_ji(x) = w_ji * silu(x) + sum_m c_jim * B_m(x)

where ``B_m`` are the ``grid_size + order`` B-spline basis functions of degree ``order`` on a uniform grid
over ``grid_range`` (Liu et al. 2024, "KAN: Kolmogorov-Arnold Networks"). The ``silu`` term keeps a
gradient outside the grid, where every ``B_m`` is zero. One edge costs ``grid_size + order + 1`` parameters.

Example:
    >>> import torch
    >>> net = kan([2, 3, 1], grid_size=5)
    >>> net(torch.rand(8, 2)).shape, n_params(net)
    (torch.Size([8, 1]), 81)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

__all__ = ["KANConfig", "KANLayer", "bspline_basis", "kan", "n_params", "uniform_knots"]


def uniform_knots(grid_size: int, order: int, grid_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """The ``grid_size + 2 * order + 1`` knots: a uniform grid over ``grid_range``, extended by ``order`` steps each side.

    The extension makes all ``grid_size + order`` basis functions complete (summing to one) inside the range.

    Example:
        >>> uniform_knots(2, 1).tolist()
        [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    if grid_size < 1 or order < 0:
        raise ValueError(f"grid_size must be >= 1 and order >= 0, got grid_size={grid_size}, order={order}")
    lo, hi = grid_range
    if not hi > lo:
        raise ValueError(f"grid_range must be (low, high) with high > low, got {grid_range}")
    step = (hi - lo) / grid_size
    return lo + step * torch.arange(-order, grid_size + order + 1, dtype=torch.float32)


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """B-spline basis functions of degree ``order`` at ``x``, by the Cox-de Boor recursion.

    ``x`` has any shape (...); the result is (..., len(knots) - order - 1). Degree 0 is the indicator of
    the half-open knot interval; each higher degree blends two neighbours of the degree below:

        B_{i,k}(x) = (x - t_i) / (t_{i+k} - t_i) * B_{i,k-1}(x) + (t_{i+k+1} - x) / (t_{i+k+1} - t_{i+1}) * B_{i+1,k-1}(x)

    Example:
        >>> basis = bspline_basis(torch.tensor([0.3]), uniform_knots(4, 3), 3)
        >>> basis.shape, round(basis.sum().item(), 6)
        (torch.Size([1, 7]), 1.0)
    """
    if order < 0 or knots.dim() != 1 or len(knots) < order + 2:
        raise ValueError(f"need a 1-D knot vector with at least order + 2 = {order + 2} knots and order >= 0, "
                         f"got {tuple(knots.shape)} knots and order {order}")
    t = knots.to(x.dtype)
    x = x.unsqueeze(-1)                                                     # (..., 1) against the knots
    basis = ((x >= t[:-1]) & (x < t[1:])).to(x.dtype)                       # (..., K - 1), degree 0
    for k in range(1, order + 1):
        left = (x - t[: -(k + 1)]) / (t[k:-1] - t[: -(k + 1)]) * basis[..., :-1]
        right = (t[k + 1:] - x) / (t[k + 1:] - t[1:-k]) * basis[..., 1:]
        basis = left + right                                                # (..., K - 1 - k)
    return basis


@dataclass
class KANConfig:
    """Grid of the edge functions: ``grid_size`` intervals over ``grid_range``, splines of degree ``order``."""

    grid_size: int = 5
    order: int = 3
    grid_range: tuple[float, float] = (-1.0, 1.0)
    init_scale: float = 0.1  # std of the initial spline coefficients (edges start close to w * silu)


class KANLayer(nn.Module):
    """``in_features -> out_features`` with one learnable function per edge (no bias, as in the KAN paper).

    Parameters: ``base_weight`` (out, in) for the silu part and ``spline_coef`` (out, in, grid_size + order).

    Example:
        >>> layer = KANLayer(3, 2, KANConfig(grid_size=4))
        >>> layer(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(self, in_features: int, out_features: int, config: KANConfig | None = None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be positive, got {in_features}, {out_features}")
        self.config = config or KANConfig()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("knots", uniform_knots(self.config.grid_size, self.config.order, self.config.grid_range))
        n_basis = self.config.grid_size + self.config.order
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))  # the same start as nn.Linear's weight
        self.spline_coef = nn.Parameter(torch.randn(out_features, in_features, n_basis) * self.config.init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"KANLayer expects (..., {self.in_features}), got {tuple(x.shape)}")
        basis = bspline_basis(x, self.knots, self.config.order)           # (..., in, n_basis)
        spline = torch.einsum("...im,oim->...o", basis, self.spline_coef)  # (..., out)
        return nn.functional.silu(x) @ self.base_weight.T + spline

    def edge_functions(self, x: torch.Tensor) -> torch.Tensor:
        """Every edge's function on a 1-D grid ``x`` (P,): (P, out, in), phi_ji(x_p) for plotting or checks."""
        basis = bspline_basis(x, self.knots, self.config.order)                 # (P, n_basis)
        spline = torch.einsum("pm,oim->poi", basis, self.spline_coef)          # (P, out, in)
        return nn.functional.silu(x)[:, None, None] * self.base_weight + spline

    def extra_repr(self) -> str:
        c = self.config
        return f"{self.in_features}, {self.out_features}, grid_size={c.grid_size}, order={c.order}, range={c.grid_range}"


def kan(widths: Sequence[int], grid_size: int = 5, order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0), init_scale: float = 0.1) -> nn.Sequential:
    """A KAN with layer widths ``widths`` (e.g. ``[2, 5, 1]``), all layers on the same grid.

    Example:
        >>> kan([1, 1], grid_size=3)
        Sequential(
          (0): KANLayer(1, 1, grid_size=3, order=3, range=(-1.0, 1.0))
        )
    """
    if len(widths) < 2:
        raise ValueError(f"widths needs at least an input and an output size, got {list(widths)}")
    config = KANConfig(grid_size, order, tuple(grid_range), init_scale)
    return nn.Sequential(*[KANLayer(a, b, config) for a, b in zip(widths[:-1], widths[1:])])


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters (what "equal parameter count" compares)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
