"""Integrated gradients (Sundararajan et al., 2017) of any batched function, with the completeness gap.

``IG_i = (x_i - x'_i) * (1/m) * sum_{s=1..m} df/dx_i at x' + (s/m)(x - x')`` (right Riemann sum, m steps),
all m points evaluated in one batched call. Completeness: ``sum_i IG_i ~= f(x) - f(x')``.

Example:
    >>> f = lambda z: (z ** 2).sum(-1)             # (K, 3) -> (K,)
    >>> ig = integrated_gradients(f, torch.ones(3), torch.zeros(3), steps=1000)
    >>> round(ig.sum().item(), 2)                  # f(1,1,1) - f(0,0,0) = 3
    3.0
"""
from __future__ import annotations

from typing import Callable

import torch


def integrated_gradients(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                         steps: int = 64, batch_size: int = 64) -> torch.Tensor:
    """Attribution of ``f(x) - f(baseline)`` to every entry of ``x`` (same shape as ``x``).

    ``f`` maps a batch of points (K, *x.shape) to (K,) values; ``batch_size`` points per call.
    Equals Captum's ``IntegratedGradients(..., method="riemann_right", n_steps=steps)``.
    """
    if x.shape != baseline.shape:
        raise ValueError(f"x {tuple(x.shape)} and baseline {tuple(baseline.shape)} must have the same shape.")
    x, baseline = x.detach(), baseline.detach()
    delta = x - baseline
    total = torch.zeros_like(x)
    alphas = torch.arange(1, steps + 1, dtype=x.dtype, device=x.device) / steps
    for start in range(0, steps, batch_size):
        a = alphas[start:start + batch_size].view(-1, *([1] * x.dim()))
        points = (baseline + a * delta).requires_grad_(True)  # (k, *x.shape)
        (grad,) = torch.autograd.grad(f(points).sum(), points)
        total += grad.sum(0)
    return delta * total / steps


def completeness_gap(attribution: torch.Tensor, f_x: float, f_baseline: float) -> float:
    """|sum(IG) - (f(x) - f(x'))| relative to |f(x) - f(x')| (IG's completeness axiom says 0 in the limit).

    Example:
        >>> completeness_gap(torch.tensor([1.0, 1.98]), 3.0, 0.0)
        0.0067
    """
    diff = f_x - f_baseline
    if diff == 0:
        raise ValueError("f(x) equals f(baseline): completeness cannot be judged relative to a zero difference.")
    return round(abs(attribution.sum().item() - diff) / abs(diff), 4)
