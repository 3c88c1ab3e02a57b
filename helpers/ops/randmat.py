"""Random-matrix baselines for covariance spectra: the Marchenko-Pastur law, a noise level from the bulk, outliers.

For an (n, p) matrix of independent entries of variance sigma2, the eigenvalues of the sample covariance fill,
as n, p -> infinity with gamma = p / n <= 1, the interval [sigma2 (1 - sqrt(gamma))^2, sigma2 (1 + sqrt(gamma))^2]
with the Marchenko-Pastur density. Eigenvalues above the upper edge are "outliers" (signal).

The noise level is estimated from the bulk by matching medians: sigma2 = median(eigenvalues) / (median of the
MP law with sigma2 = 1). The median ignores the outliers as long as they are fewer than half of the eigenvalues.

Example:
    >>> round(mp_edges(0.25)[1], 4)
    2.25
    >>> fit = fit_mp(np.linalg.eigvalsh(np.cov(np.random.default_rng(0).normal(size=(4000, 100)).T)), n=4000)
    >>> abs(fit.sigma2 - 1) < 0.05, fit.n_outliers
    (True, 0)
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch


def mp_edges(gamma: float, sigma2: float = 1.0) -> tuple[float, float]:
    """Lower and upper edge of the Marchenko-Pastur support for aspect ratio ``gamma = p / n`` (0 < gamma <= 1)."""
    if not 0 < gamma <= 1:
        raise ValueError(f"the Marchenko-Pastur law here needs 0 < gamma = p / n <= 1, got {gamma:.3g}")
    return sigma2 * (1 - math.sqrt(gamma)) ** 2, sigma2 * (1 + math.sqrt(gamma)) ** 2


def mp_density(x: np.ndarray, gamma: float, sigma2: float = 1.0) -> np.ndarray:
    """Marchenko-Pastur density at ``x``: sqrt((l+ - x)(x - l-)) / (2 pi sigma2 gamma x) inside [l-, l+], else 0.

    Example:
        >>> from scipy.integrate import quad
        >>> round(quad(lambda t: mp_density(np.array([t]), 0.3)[0], *mp_edges(0.3))[0], 6)
        1.0
    """
    lo, hi = mp_edges(gamma, sigma2)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > lo) & (x < hi)
    out = np.zeros_like(x)
    xi = x[inside]
    out[inside] = np.sqrt((hi - xi) * (xi - lo)) / (2 * np.pi * sigma2 * gamma * xi)
    return out


@functools.lru_cache(maxsize=256)
def _cdf_table(gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """The MP cumulative distribution (sigma2 = 1) on a fine grid, by the trapezoid rule."""
    lo, hi = mp_edges(gamma)
    # a grid denser near the edges, where the density has square-root behaviour
    u = np.linspace(0, np.pi, 20_001)
    grid = lo + (hi - lo) * (1 - np.cos(u)) / 2
    dens = mp_density(grid, gamma)
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
    return grid, cdf / cdf[-1]


def mp_cdf(x: np.ndarray, gamma: float, sigma2: float = 1.0) -> np.ndarray:
    """Marchenko-Pastur cumulative distribution function at ``x``."""
    grid, cdf = _cdf_table(float(gamma))
    return np.interp(np.asarray(x, dtype=np.float64) / sigma2, grid, cdf, left=0.0, right=1.0)


def mp_median(gamma: float) -> float:
    """Median of the Marchenko-Pastur law with sigma2 = 1."""
    grid, cdf = _cdf_table(float(gamma))
    return float(np.interp(0.5, cdf, grid))


@dataclass
class MPFit:
    """A spectrum compared with Marchenko-Pastur: noise level, edges, outliers and the bulk's distance to MP."""
    eigenvalues: np.ndarray   # sorted, largest first
    n: int
    gamma: float
    sigma2: float
    lower: float
    upper: float
    n_outliers: int
    ks: float                 # Kolmogorov-Smirnov distance between the eigenvalues below the edge and MP

    @property
    def outliers(self) -> np.ndarray:
        return self.eigenvalues[: self.n_outliers]

    def fraction_outside(self, slack: float = 0.1) -> float:
        """Share of eigenvalues outside [(1 - slack) lower, (1 + slack) upper]."""
        ev = self.eigenvalues
        return float(((ev < (1 - slack) * self.lower) | (ev > (1 + slack) * self.upper)).mean())

    def __repr__(self) -> str:
        return (f"MPFit(p={len(self.eigenvalues)}, n={self.n}, gamma={self.gamma:.3f}, sigma2={self.sigma2:.4g}, "
                f"edges=[{self.lower:.4g}, {self.upper:.4g}], outliers={self.n_outliers}, ks={self.ks:.3f})")


def fit_mp(eigenvalues: np.ndarray | torch.Tensor, n: int, sigma2: float | None = None) -> MPFit:
    """Compare covariance eigenvalues of ``n`` samples with Marchenko-Pastur.

    ``sigma2=None`` estimates the noise level from the bulk (median matching, see the module docstring);
    pass a number to impose it (e.g. 1.0 for standardised, independent columns).
    """
    ev = np.sort(np.asarray(torch.as_tensor(eigenvalues).double().cpu()))[::-1]
    if ev.ndim != 1 or len(ev) < 2:
        raise ValueError(f"need a 1-D array of at least 2 eigenvalues, got shape {ev.shape}")
    p = len(ev)
    if n < p:
        warnings.warn(f"{n} samples for {p} dimensions: fewer samples than dimensions, so the Marchenko-Pastur law "
                      f"(gamma = p/n <= 1) does not apply; it needs at least {p} samples", stacklevel=2)
        gamma = 1.0
    else:
        gamma = p / n
    if sigma2 is None:
        sigma2 = float(np.median(ev) / mp_median(gamma))
    lower, upper = mp_edges(gamma, sigma2)
    n_out = int((ev > upper).sum())
    bulk = np.sort(ev[n_out:])
    # KS distance of the bulk's empirical CDF to the MP CDF (scaled to the bulk's share of eigenvalues)
    theo = mp_cdf(bulk, gamma, sigma2)
    emp_hi = np.arange(1, len(bulk) + 1) / len(bulk)
    ks = float(max(np.abs(emp_hi - theo).max(), np.abs(emp_hi - 1 / len(bulk) - theo).max())) if len(bulk) else 1.0
    return MPFit(ev, n, gamma, sigma2, lower, upper, n_out, ks)


def effective_rank(eigenvalues: np.ndarray | torch.Tensor) -> float:
    """exp(Shannon entropy) of the normalised covariance eigenvalues p_i = lambda_i / sum(lambda).

    Convention: the eigenvalues of the covariance (variances, = squared singular values / n), not Roy & Vetterli's
    singular values; both give d for an isotropic cloud and 1 for a line, but this one is smaller in between.

    Example:
        >>> effective_rank(np.ones(8)), effective_rank(np.array([5.0, 0, 0]))
        (8.0, 1.0)
    """
    ev = np.asarray(torch.as_tensor(eigenvalues).double().cpu()).clip(min=0)
    if ev.ndim != 1 or ev.sum() <= 0:
        raise ValueError(f"need a 1-D array of eigenvalues with a positive sum, got shape {ev.shape}")
    p = ev[ev > 0] / ev.sum()
    return float(round(np.exp(-(p * np.log(p)).sum()), 12))


def shuffle_columns(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Permute each column of (n, d) independently: keeps every marginal, destroys every correlation.

    Example:
        >>> x = torch.arange(12.0).reshape(6, 2)
        >>> sorted(shuffle_columns(x)[:, 1].tolist()) == x[:, 1].tolist()
        True
    """
    if x.ndim != 2:
        raise ValueError(f"need an (n, d) matrix, got shape {tuple(x.shape)}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.argsort(torch.rand(x.shape, generator=g), dim=0).to(x.device)
    return torch.gather(x, 0, idx)
