"""Massive activations: find them, ablate them, and fit their emergence over training.

    report = find_massive(acts["blocks.3"])          # (B, T, d) hidden states of one layer
    report.ratio, report.dims, report.positions, report.meets_criterion
    with edit(model, {"blocks.3": set_entries(report.dims[:1], 0.0)}): ...
    fit = fit_emergence(steps, ratios)               # A * exp(-lam t) * log(gamma t + t0) + K

Massive activations (Sun et al. 2024) are single scalars of a hidden state far larger than the rest:
their criterion is ``|h| > 100`` **and** ``|h| > 1000 x median(|h|)`` of that layer's hidden state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

ABS_THRESHOLD = 100.0   # Sun et al.'s absolute bar for a massive activation
REL_THRESHOLD = 1000.0  # ... and its bar relative to the median magnitude of the layer


@dataclass
class MassiveReport:
    """The largest entries of one layer's hidden state. Positions index dim -2 (tokens)."""
    top1: float
    median: float
    ratio: float            # top1 / median of |h|
    values: list[float]     # the ``top`` largest |h|, descending
    dims: list[int]         # their feature dimension
    positions: list[int]    # their token position
    sequences: list[int]    # their sequence (batch index; 0 for a 2-D input)
    meets_criterion: bool   # top1 > abs_threshold and ratio > rel_threshold

    def __str__(self) -> str:
        verdict = "meets" if self.meets_criterion else "does not meet"
        return (f"top-1 |h| {self.top1:.1f}, median {self.median:.3g}, ratio {self.ratio:.0f}x "
                f"({verdict} the >{ABS_THRESHOLD:.0f} and >{REL_THRESHOLD:.0f}x criterion); "
                f"dims {self.dims}, positions {self.positions}")


def top1_median_ratio(h: torch.Tensor) -> float:
    """``max |h| / median |h|`` over every entry of a hidden state.

    Example:
        >>> top1_median_ratio(torch.tensor([1., -2., 3., 400.]))  # median |h| = (2 + 3) / 2
        160.0
    """
    a = h.detach().abs().float().flatten()
    # torch.median returns the lower middle value; the mean of the two middle ones matches numpy
    mid = a.sort().values[[(a.numel() - 1) // 2, a.numel() // 2]].mean()
    return (a.max() / mid.clamp_min(1e-12)).item()


def find_massive(h: torch.Tensor, top: int = 5, abs_threshold: float = ABS_THRESHOLD,
                 rel_threshold: float = REL_THRESHOLD) -> MassiveReport:
    """The ``top`` largest |entries| of a hidden state ``(T, d)`` or ``(B, T, d)`` and where they are.

    Example:
        >>> h = torch.randn(2, 6, 8); h[1, 0, 3] = -5000.0
        >>> r = find_massive(h, top=1)
        >>> r.dims, r.positions, r.sequences, r.meets_criterion
        ([3], [0], [1], True)
    """
    if h.dim() not in (2, 3):
        raise ValueError(f"h must be (T, d) or (B, T, d), got shape {tuple(h.shape)}")
    h3 = h.detach().float().reshape(-1, *h.shape[-2:])  # (B, T, d)
    _, T, d = h3.shape
    a = h3.abs().flatten()
    ratio = top1_median_ratio(h3)
    values, index = a.topk(min(top, a.numel()))
    top1 = values[0].item()
    median = top1 / ratio if ratio else 0.0
    return MassiveReport(top1, median, ratio, values.tolist(), (index % d).tolist(),
                         ((index // d) % T).tolist(), (index // (d * T)).tolist(),
                         top1 > abs_threshold and ratio > rel_threshold)


# ---------------------------------------------------------------------------------------------
# Emergence over training: an exponentially modulated logarithm (Gallego-Feliciano et al. 2025).

def emergence_curve(t, A: float, lam: float, gamma: float, t0: float, K: float):
    """``A * exp(-lam * t) * log(gamma * t + t0) + K``: amplitude, decay rate, time scale, offset, baseline.

    The paper names these five parameters; where t0 sits is our reading (inside the log keeps the
    curve defined from step 0 when t0 >= 1).
    """
    t = np.asarray(t, dtype=float)
    return A * np.exp(-lam * t) * np.log(gamma * t + t0) + K


@dataclass
class EmergenceFit:
    A: float
    lam: float
    gamma: float
    t0: float
    K: float
    r2: float          # coefficient of determination on the fitted points
    scale: float       # steps were divided by this before fitting; parameters are in steps

    def __call__(self, t):
        return emergence_curve(t, self.A, self.lam, self.gamma, self.t0, self.K)

    def step_reaching(self, fraction: float = 0.5, t_max: Optional[float] = None) -> float:
        """First step where the curve has risen ``fraction`` of the way from its start to its value at ``t_max``."""
        t_max = self.scale if t_max is None else t_max
        grid = np.linspace(0.0, t_max, 4001)
        y = self(grid)
        goal = y[0] + fraction * (y[-1] - y[0])
        return float(grid[np.argmax(y >= goal)] if y[-1] >= y[0] else grid[np.argmax(y <= goal)])


def fit_emergence(steps: Sequence[float], values: Sequence[float]) -> EmergenceFit:
    """Least-squares fit of :func:`emergence_curve` to ``values`` measured at training ``steps``.

    Steps are rescaled to [0, 1] for the optimiser and the parameters converted back to steps.

    Example:
        >>> t = np.linspace(0, 1000, 12); y = emergence_curve(t, 5.0, 1e-4, 0.05, 1.0, 2.0)
        >>> fit_emergence(t, y).r2 > 0.999
        True
    """
    from scipy.optimize import curve_fit

    t = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if t.shape != y.shape or t.size < 5:
        raise ValueError(f"need at least 5 (step, value) pairs of equal length, got {t.size} and {y.size}")
    scale = float(t.max()) if t.max() > 0 else 1.0
    s = t / scale
    span = float(y.max() - y.min()) or 1.0
    # Bounds on the rescaled problem keep the five (partly redundant) parameters at the data's scale;
    # without them A and K run off to +-1e5 while cancelling each other.
    lower = [-10 * span, -5.0, 1e-3, 1.0, float(y.min()) - span]
    upper = [10 * span, 5.0, 1e4, 1e3, float(y.max())]
    best = None
    for gamma0 in (1.0, 100.0):  # two starts: the time scale is the hard parameter
        p0 = [span / np.log(gamma0 + 1.0), 0.0, gamma0, 1.0, float(y.min())]
        try:
            p, _ = curve_fit(emergence_curve, s, y, p0=p0, bounds=(lower, upper), maxfev=2000)
        except RuntimeError:
            continue
        sse = float(((emergence_curve(s, *p) - y) ** 2).sum())
        if best is None or sse < best[1]:
            best = (p, sse)
    if best is None:
        raise RuntimeError("the emergence curve could not be fitted to these values")
    (A, lam, gamma, t0, K), sse = best
    r2 = 1.0 - sse / float(((y - y.mean()) ** 2).sum() or 1.0)
    return EmergenceFit(float(A), float(lam) / scale, float(gamma) / scale, float(t0), float(K), r2, scale)
