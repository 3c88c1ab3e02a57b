"""KAN edge functions beyond B-splines: other function spaces, bells made of activations, selectable spaces.

A KAN edge computes ``phi(x) = sum_m c_m b_m(x)`` for some basis ``b_1..b_n`` (:mod:`kan` uses cubic
B-splines). Here the basis is a small module (a *space*), and a layer can use any of them:

- :class:`BSplineSpace` (the KAN paper), :class:`ChebyshevSpace` (polynomials ``T_0..T_{n-1}``),
  :class:`FourierSpace` (``1, sin(k pi u), cos(k pi u)``), each on a range mapped to ``u in [-1, 1]``;
- :class:`BellSpace`: bumps made from an activation function ``f``, ``(f(x - s_m) f(e_m - x))^2``
  normalised to peak 1. With ``f = relu`` this is ReLU-KAN's basis; AF-KAN (2025) puts other
  activations (SiLU, GELU, ...) in place of ReLU;
- :class:`SelectableKANLayer`: every edge mixes several spaces with softmax weights (S-KAN, 2024, lets
  each node choose its activation space); :meth:`SelectableKANLayer.prune` keeps one space per edge.

Example:
    >>> import torch
    >>> from helpers.activation_functions.kan import n_params
    >>> layer = SpaceKANLayer(2, 3, ChebyshevSpace(5))
    >>> layer(torch.rand(4, 2)).shape, n_params(layer)
    (torch.Size([4, 3]), 30)
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from helpers.activation_functions.kan import bspline_basis, uniform_knots

__all__ = ["BSplineSpace", "BellSpace", "ChebyshevSpace", "FourierSpace", "PrunedKANLayer",
           "SelectableKANLayer", "SpaceKANLayer"]


class _Space(nn.Module):
    """A basis of ``n_basis`` functions on ``grid_range``: ``(...,)`` -> ``(..., n_basis)``."""

    n_basis: int

    def __init__(self, grid_range: tuple[float, float]):
        super().__init__()
        lo, hi = grid_range
        if not hi > lo:
            raise ValueError(f"grid_range must be (low, high) with high > low, got {grid_range}")
        self.grid_range = (float(lo), float(hi))

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` mapped affinely so that the range becomes [-1, 1]."""
        lo, hi = self.grid_range
        return (2 * x - (lo + hi)) / (hi - lo)


class BSplineSpace(_Space):
    """The KAN paper's cubic (degree ``order``) B-splines on ``grid_size`` intervals: ``grid_size + order`` functions.

    Example:
        >>> round(BSplineSpace(4)(torch.tensor([0.2])).sum().item(), 6)   # a partition of unity inside the range
        1.0
    """

    def __init__(self, grid_size: int = 4, order: int = 3, grid_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__(grid_range)
        self.order, self.n_basis = order, grid_size + order
        self.register_buffer("knots", uniform_knots(grid_size, order, self.grid_range))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bspline_basis(x, self.knots, self.order)


class ChebyshevSpace(_Space):
    """Chebyshev polynomials ``T_0..T_{n-1}`` of ``u`` (``T_{k+1} = 2 u T_k - T_{k-1}``).

    Example:
        >>> ChebyshevSpace(4)(torch.tensor([0.5])).tolist()  # 1, u, 2u^2 - 1, 4u^3 - 3u
        [[1.0, 0.5, -0.5, -1.0]]
    """

    def __init__(self, n_basis: int = 7, grid_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__(grid_range)
        if n_basis < 2:
            raise ValueError(f"n_basis must be >= 2, got {n_basis}")
        self.n_basis = n_basis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.unit(x)
        terms = [torch.ones_like(u), u]
        while len(terms) < self.n_basis:
            terms.append(2 * u * terms[-1] - terms[-2])
        return torch.stack(terms, -1)


class FourierSpace(_Space):
    """``1, sin(pi u), cos(pi u), ..., sin(K pi u), cos(K pi u)``: ``2K + 1`` functions, period = the range.

    Example:
        >>> FourierSpace(1)(torch.tensor([0.5])).round(decimals=4).abs().tolist()  # 1, sin(pi/2), |cos(pi/2)|
        [[1.0, 1.0, 0.0]]
    """

    def __init__(self, n_frequencies: int = 3, grid_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__(grid_range)
        if n_frequencies < 1:
            raise ValueError(f"n_frequencies must be >= 1, got {n_frequencies}")
        self.n_basis = 2 * n_frequencies + 1
        self.register_buffer("k", torch.arange(1, n_frequencies + 1, dtype=torch.float32) * math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ku = self.unit(x).unsqueeze(-1) * self.k.to(x.dtype)
        sin_cos = torch.stack([torch.sin(ku), torch.cos(ku)], -1).flatten(-2)   # (..., 2K) interleaved
        return torch.cat([torch.ones_like(ku[..., :1]), sin_cos], -1)


class BellSpace(_Space):
    """Bumps built from an activation ``f``: ``b_m(x) = (f(x - s_m) f(e_m - x))^2 / peak``.

    The intervals ``[s_m, e_m]`` are ``order + 1`` grid steps wide, shifted by one step each, like the
    supports of degree-``order`` B-splines: ``grid_size + order`` bumps. With ``f = relu`` each bump is
    zero outside its interval (ReLU-KAN); a smooth ``f`` such as SiLU leaks small tails (AF-KAN's choice
    of activation). ``peak`` makes every bump 1 at its centre.

    Example:
        >>> relu_bells = BellSpace(4, activation=torch.relu)
        >>> b = relu_bells(torch.tensor([0.0]))
        >>> b.shape, round(b.max().item(), 4)
        (torch.Size([1, 7]), 1.0)
    """

    def __init__(self, grid_size: int = 4, order: int = 3, activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu,
                 grid_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__(grid_range)
        lo, hi = self.grid_range
        step = (hi - lo) / grid_size
        self.activation, self.n_basis = activation, grid_size + order
        start = lo + step * torch.arange(-order, grid_size, dtype=torch.float32)
        self.register_buffer("start", start)
        self.register_buffer("end", start + (order + 1) * step)
        half = torch.tensor((order + 1) * step / 2)
        self.register_buffer("peak", activation(half) ** 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(-1)
        return (self.activation(x - self.start) * self.activation(self.end - x)) ** 2 / self.peak


class SpaceKANLayer(nn.Module):
    """``y_j = sum_i phi_ji(x_i)`` with ``phi_ji = sum_m c_jim b_m`` for the basis of ``space`` (no bias)."""

    def __init__(self, in_features: int, out_features: int, space: _Space, init_scale: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.in_features, self.out_features, self.space = in_features, out_features, space
        self.coef = nn.Parameter(torch.randn(out_features, in_features, space.n_basis, generator=generator) * init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...im,oim->...o", self.space(x), self.coef)


class SelectableKANLayer(nn.Module):
    """Every edge mixes ``spaces`` (same ``n_basis`` not required): ``phi = sum_s softmax(logits)_s phi_s``.

    Parameters: one coefficient tensor per space ``(out, in, n_s)`` and ``logits`` ``(out, in, S)``,
    starting equal (each space weighted ``1 / S``). :meth:`weights` gives the mixture; :meth:`prune`
    keeps, per edge, the space of largest weight.

    Example:
        >>> layer = SelectableKANLayer(2, 1, {"poly": ChebyshevSpace(3), "fourier": FourierSpace(1)})
        >>> layer.weights().shape, layer.prune().choice.tolist()
        (torch.Size([1, 2, 2]), [[0, 0]])
    """

    def __init__(self, in_features: int, out_features: int, spaces: dict[str, _Space], init_scale: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not spaces:
            raise ValueError("need at least one space")
        self.in_features, self.out_features = in_features, out_features
        self.names = list(spaces)
        self.spaces = nn.ModuleList(spaces.values())
        self.coefs = nn.ParameterList([
            nn.Parameter(torch.randn(out_features, in_features, s.n_basis, generator=generator) * init_scale)
            for s in self.spaces])
        self.logits = nn.Parameter(torch.zeros(out_features, in_features, len(self.spaces)))
        self.temperature = 1.0  # lower it during training to push each edge towards one space

    def weights(self) -> torch.Tensor:
        """The mixture weights ``(out, in, S)``: ``softmax(logits / temperature)`` over the spaces of each edge."""
        return (self.logits / self.temperature).softmax(-1)

    def edge_parts(self, x: torch.Tensor) -> torch.Tensor:
        """Each space's edge function at ``x`` ``(..., in)``: ``(..., out, in, S)``, before weighting."""
        return torch.stack([torch.einsum("...im,oim->...oi", s(x), c) for s, c in zip(self.spaces, self.coefs)], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.edge_parts(x) * self.weights()).sum((-1, -2))

    def prune(self) -> "PrunedKANLayer":
        """One space per edge (largest weight); its coefficients times its weight carry over."""
        choice = self.weights().argmax(-1)                                        # (out, in)
        w = self.weights().detach()
        return PrunedKANLayer(self.names, list(self.spaces), choice,
                              [c.detach() * w[..., s:s + 1] for s, c in enumerate(self.coefs)])


class PrunedKANLayer(nn.Module):
    """A KAN layer whose edge ``(j, i)`` uses space ``choice[j, i]``; only the chosen coefficients are parameters.

    ``coefs[s]`` is space ``s``'s full coefficient tensor ``(out, in, n_s)``; the rows of the edges that
    chose ``s`` are kept.

    Example:
        >>> spaces = [ChebyshevSpace(2), FourierSpace(1)]            # 1, u   and   1, sin(pi u), cos(pi u)
        >>> coefs = [torch.tensor([[[0.0, 2.0], [9.0, 9.0]]]), torch.tensor([[[9.0, 9.0, 9.0], [0.0, 1.0, 0.0]]])]
        >>> layer = PrunedKANLayer(["poly", "fourier"], spaces, torch.tensor([[0, 1]]), coefs)
        >>> layer(torch.tensor([[0.25, 0.5]])).tolist()              # 2 * 0.25 + sin(pi / 2)
        [[1.5]]
        >>> layer.chosen(), sum(p.numel() for p in layer.parameters())
        ([['poly', 'fourier']], 5)
    """

    def __init__(self, names: Sequence[str], spaces: Sequence[_Space], choice: torch.Tensor,
                 coefs: Sequence[torch.Tensor]):
        super().__init__()
        if len(names) != len(spaces) or len(coefs) != len(spaces):
            raise ValueError(f"need one name and one coefficient tensor per space, got {len(names)} names, "
                             f"{len(spaces)} spaces, {len(coefs)} coefficient tensors")
        self.names = list(names)
        self.spaces = nn.ModuleList(spaces)
        self.register_buffer("choice", choice.clone())
        self.out_features, self.in_features = choice.shape
        self.coefs = nn.ParameterList()
        for s, c in enumerate(coefs):
            mask = choice == s
            out_idx, in_idx = mask.nonzero(as_tuple=True)
            self.register_buffer(f"out_idx{s}", out_idx)                             # (edges using s,)
            self.register_buffer(f"in_idx{s}", in_idx)
            self.coefs.append(nn.Parameter(c.detach()[mask].clone()))               # (edges using s, n_s)

    def chosen(self) -> list[list[str]]:
        """The name of every edge's space, ``[out][in]``."""
        return [[self.names[s] for s in row] for row in self.choice.tolist()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(*x.shape[:-1], self.out_features)
        for s, (space, coef) in enumerate(zip(self.spaces, self.coefs)):
            if coef.numel() == 0:
                continue
            out_idx, in_idx = getattr(self, f"out_idx{s}"), getattr(self, f"in_idx{s}")
            values = torch.einsum("...em,em->...e", space(x)[..., in_idx, :], coef)  # (..., edges)
            out = out.index_add(-1, out_idx, values)
        return out
