"""Activation functions by name, their derivatives written out, and two measures: dead units and mean shift.

``ACTIVATIONS`` maps a name to an :class:`Activation` (the function, its derivative in closed form, the matching
``torch.nn`` module and the formula as text). Names: ``relu``, ``leaky_relu`` (slope 0.01), ``elu`` (alpha 1),
``gelu`` (exact, with the normal CDF), ``silu`` (= swish with beta 1) and ``tanh`` (the classic saturating one).

Example:
    >>> import torch
    >>> from helpers.activation_functions import library as activations
    >>> x = torch.linspace(-2, 2, 5)
    >>> activations.apply("elu", x).round(decimals=3)
    tensor([-0.8650, -0.6320,  0.0000,  1.0000,  2.0000])
    >>> activations.derivative("relu", x)
    tensor([0., 0., 0., 1., 1.])
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Activation", "ACTIVATIONS", "get", "apply", "derivative", "dead_fraction", "mean_activation",
           "gaussian_mean"]

LEAKY_SLOPE = 0.01  # torch's default negative slope
ELU_ALPHA = 1.0


def _normal_pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def _one(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


@dataclass(frozen=True)
class Activation:
    """One activation function: ``fn(x)``, its derivative ``derivative(x)`` (elementwise), ``module()`` the matching
    ``torch.nn`` layer, and the formula for printing."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]
    module: Callable[[], nn.Module]
    formula: str


ACTIVATIONS: dict[str, Activation] = {
    a.name: a for a in [
        Activation("relu", torch.relu, lambda x: (x > 0).to(x.dtype), nn.ReLU, "max(0, x)"),
        Activation("leaky_relu", lambda x: F.leaky_relu(x, LEAKY_SLOPE),
                   lambda x: torch.where(x > 0, _one(x), torch.full_like(x, LEAKY_SLOPE)),
                   lambda: nn.LeakyReLU(LEAKY_SLOPE), f"x if x > 0 else {LEAKY_SLOPE} x"),
        # ELU: for x < 0 the derivative alpha*e^x equals elu(x) + alpha, which never reaches 0 (no dead units)
        Activation("elu", lambda x: F.elu(x, ELU_ALPHA),
                   lambda x: torch.where(x > 0, _one(x), ELU_ALPHA * torch.exp(x.clamp(max=0))),
                   lambda: nn.ELU(ELU_ALPHA), "x if x > 0 else (e^x - 1)"),
        # GELU: x * Phi(x); d/dx = Phi(x) + x * phi(x), with Phi / phi the standard normal CDF / density
        Activation("gelu", F.gelu, lambda x: _normal_cdf(x) + x * _normal_pdf(x), nn.GELU, "x * Phi(x)"),
        # SiLU: x * sigmoid(x); d/dx = s + x * s * (1 - s) = s * (1 + x * (1 - s))
        Activation("silu", F.silu, lambda x: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))), nn.SiLU,
                   "x * sigmoid(x)"),
        Activation("tanh", torch.tanh, lambda x: 1 - torch.tanh(x) ** 2, nn.Tanh, "tanh(x)"),
    ]
}


def get(name: str) -> Activation:
    """The :class:`Activation` called ``name``; raises ``ValueError`` listing the valid names.

    Example:
        >>> get("gelu").formula
        'x * Phi(x)'
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def apply(name: str, x: torch.Tensor) -> torch.Tensor:
    """``name``'s activation applied to ``x`` (any shape)."""
    return get(name).fn(x)


def derivative(name: str, x: torch.Tensor) -> torch.Tensor:
    """The derivative of ``name``'s activation at ``x``, elementwise, in closed form (at 0, ReLU's is taken as 0).

    Example:
        >>> derivative("silu", torch.zeros(1))
        tensor([0.5000])
    """
    return get(name).derivative(x)


def _per_unit(x: torch.Tensor) -> torch.Tensor:
    """(N, U) or (N, C, ...) -> (M, U): samples (and positions) in rows, units (features or channels) in columns."""
    if x.dim() < 2:
        raise ValueError(f"expected (N, units) or (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dim() > 2:  # conv maps: a unit is a channel, seen at every position of every image
        x = x.transpose(0, 1).reshape(x.shape[1], -1).T
    return x


def dead_fraction(pre: torch.Tensor, name: str, tol: float = 0.0) -> float:
    """Fraction of units that pass no gradient for any input of the batch: ``|phi'(pre)| <= tol`` everywhere.

    ``pre`` holds pre-activations, (N, units) or (N, C, H, W) (a unit is then a channel). With ``tol=0`` only
    ReLU units can be dead; ELU/GELU/SiLU keep a small gradient for negative inputs.

    Example:
        >>> dead_fraction(torch.tensor([[-1.0, 2.0], [-3.0, -1.0]]), "relu")  # unit 0 is never positive
        0.5
    """
    grads = derivative(name, _per_unit(pre)).abs()  # (M, U)
    return (grads <= tol).all(dim=0).float().mean().item()


def mean_activation(post: torch.Tensor) -> float:
    """Mean of the activations over samples and units: the "bias shift" the next layer sees (0 = centred).

    Example:
        >>> mean_activation(torch.relu(torch.tensor([[-1.0, 1.0], [3.0, -2.0]])))
        1.0
    """
    return _per_unit(post).mean().item()


def gaussian_mean(name: str, points: int = 20001, limit: float = 10.0) -> float:
    """E[phi(z)] for z ~ N(0, 1), by numerical integration (trapezoid rule); e.g. 1/sqrt(2 pi) = 0.399 for ReLU.

    Example:
        >>> round(gaussian_mean("relu"), 4), round(gaussian_mean("elu"), 4)
        (0.3989, 0.1605)
    """
    z = torch.linspace(-limit, limit, points, dtype=torch.float64)
    return torch.trapezoid(get(name).fn(z) * _normal_pdf(z), z).item()
