"""Curves through points and along paths: a least-squares circle, points on an arc, a curve read at a level.

Used to test whether class centroids (e.g. the days of the week) lie on a circle, to walk along that circle,
and to compare two paths at the same value of one quantity (e.g. equal target probability).

Example:
    >>> t = torch.linspace(0, 6.2832, 8)[:-1]
    >>> fit = fit_circle(torch.stack([1 + 2 * t.cos(), -3 + 2 * t.sin()], 1))
    >>> [round(v, 3) for v in fit.centre.tolist()], round(fit.radius, 3), fit.residual < 1e-5
    ([1.0, -3.0], 2.0, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class CircleFit:
    """A circle fitted to points in the plane."""

    centre: torch.Tensor  # (2,)
    radius: float
    residual: float       # RMS of (distance to centre - radius), divided by the radius
    angles: torch.Tensor  # (N,) angle of every point around the centre, in (-pi, pi]


def fit_circle(points: torch.Tensor) -> CircleFit:
    """Least-squares circle through ``points`` (N, 2), N >= 3 (Kasa's algebraic fit).

    Solves ``|p|^2 = 2 c . p + (R^2 - |c|^2)`` for the centre ``c`` and radius ``R`` in float64; the
    residual is relative to the radius, so it does not depend on the scale of the points.

    Example:
        >>> round(fit_circle(torch.tensor([[1., 0.], [0., 1.], [-1., 0.], [0., -1.]])).radius, 6)
        1.0
    """
    if points.dim() != 2 or points.shape[1] != 2 or len(points) < 3:
        raise ValueError(f"points must be (N, 2) with N >= 3, got {tuple(points.shape)}")
    p = points.double()
    a = torch.cat([2 * p, torch.ones(len(p), 1, dtype=p.dtype)], 1)
    b = p.pow(2).sum(1, keepdim=True)
    sol = torch.linalg.lstsq(a, b).solution[:, 0]
    centre = sol[:2]
    radius = math.sqrt(max(float(sol[2] + centre.pow(2).sum()), 0.0))
    dist = (p - centre).norm(dim=1)
    residual = float((dist - radius).pow(2).mean().sqrt() / radius) if radius > 0 else float("inf")
    angles = torch.atan2(p[:, 1] - centre[1], p[:, 0] - centre[0])
    return CircleFit(centre.float(), radius, residual, angles.float())


def is_cyclic_order(angles: torch.Tensor) -> bool:
    """Whether points at ``angles`` (N,), in their given order, go once around the circle in one direction.

    Example:
        >>> is_cyclic_order(torch.tensor([0.0, 1.0, 2.0, 3.0, -2.0])), is_cyclic_order(torch.tensor([0.0, 2.0, 1.0, 3.0]))
        (True, False)
    """
    steps = torch.remainder(angles.roll(-1) - angles, 2 * math.pi)  # each step, counter-clockwise, in [0, 2 pi)
    turns = steps.sum() / (2 * math.pi)
    back = torch.remainder(angles - angles.roll(-1), 2 * math.pi).sum() / (2 * math.pi)
    return bool(torch.isclose(turns, torch.tensor(1.0, dtype=turns.dtype), atol=1e-4)
                or torch.isclose(back, torch.tensor(1.0, dtype=back.dtype), atol=1e-4))


def arc_points(centre: torch.Tensor, r0: float, r1: float, a0: float, a1: float, ts: torch.Tensor) -> torch.Tensor:
    """Points (T, 2) from angle ``a0`` to ``a1`` the short way round, the radius going linearly from r0 to r1.

    Example:
        >>> arc_points(torch.zeros(2), 1.0, 1.0, 0.0, math.pi / 2, torch.tensor([0.0, 1.0])).round(decimals=4)
        tensor([[1., 0.],
                [0., 1.]])
    """
    turn = (a1 - a0 + math.pi) % (2 * math.pi) - math.pi  # in [-pi, pi)
    theta = a0 + ts.double() * turn
    r = r0 + ts.double() * (r1 - r0)
    return (centre.double() + torch.stack([r * theta.cos(), r * theta.sin()], 1)).float()


def value_at_level(x: torch.Tensor, y: torch.Tensor, level: float) -> float:
    """``y`` linearly interpolated where ``x`` (sampled along a path) first reaches ``level``; nan if never.

    Example:
        >>> value_at_level(torch.tensor([0.0, 0.2, 0.6]), torch.tensor([1.0, 2.0, 4.0]), 0.4)
        3.0
    """
    if x.shape != y.shape or x.dim() != 1:
        raise ValueError(f"x and y must be 1-D of one length, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x[0] >= level:
        return float(y[0])
    for i in range(1, len(x)):
        if x[i] >= level:
            f = (level - x[i - 1]) / (x[i] - x[i - 1])
            return float(y[i - 1] + f * (y[i] - y[i - 1]))
    return float("nan")
