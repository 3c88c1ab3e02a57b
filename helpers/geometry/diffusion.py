"""Diffusion spectral entropy (DSE) and diffusion spectral mutual information (DSMI), after Liao et al. (2023).

DSE of points X (n, d) at bandwidth sigma and diffusion time t:
    G_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))          Gaussian affinities
    P = D^-1 G                                           the diffusion (random-walk) operator, D = diag(row sums)
    p_i = |lambda_i(P)|^t / sum_j |lambda_j(P)|^t        (P has the eigenvalues of D^-1/2 G D^-1/2: symmetric, real)
    DSE = -sum_i p_i log2 p_i                            bits; near 0 for one tight cluster, up to log2(n)

DSMI(X; Y) for labels Y = sum_y P(y) [DSE(random subset of X of size n_y) - DSE(X | Y = y)]: the entropy of the
whole set minus the entropy inside each class, with sizes matched because DSE grows with n.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> line = torch.zeros(300, 16); line[:, 0] = torch.rand(300, generator=g) * 4
    >>> plane = torch.zeros(300, 16); plane[:, :2] = torch.rand(300, 2, generator=g) * 4
    >>> diffusion_spectral_entropy(line, 0.5, 2) < diffusion_spectral_entropy(plane, 0.5, 2)
    True
"""
from __future__ import annotations

import torch


def diffusion_eigenvalues(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Eigenvalues (descending, float64) of the diffusion operator of the rows of ``x`` (n, d) at bandwidth sigma."""
    x = torch.as_tensor(x)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need points as an (n, d) matrix with n >= 2, got shape {tuple(x.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    x = x.double()
    d2 = torch.cdist(x, x).pow(2)                       # (n, n) squared distances
    g = torch.exp(-d2 / (2 * sigma ** 2))
    inv_sqrt = g.sum(1).rsqrt()
    sym = inv_sqrt[:, None] * g * inv_sqrt[None, :]     # D^-1/2 G D^-1/2, same spectrum as D^-1 G
    return torch.linalg.eigvalsh(sym).flip(0)


def diffusion_spectral_entropy(x: torch.Tensor, sigma: float, t: int) -> float:
    """DSE in bits of the rows of ``x`` (n, d), Gaussian bandwidth ``sigma``, diffusion time ``t`` (see module)."""
    if t < 1:
        raise ValueError(f"the diffusion time t must be a positive integer, got {t}")
    lam = diffusion_eigenvalues(x, sigma).abs().pow(t)
    p = lam / lam.sum()
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


def diffusion_spectral_mi(x: torch.Tensor, labels: torch.Tensor, sigma: float, t: int, seed: int = 0) -> float:
    """DSMI in bits between the rows of ``x`` (n, d) and integer ``labels`` (n,) (see the module docstring).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(200) % 2
        >>> x = torch.randn(200, 8, generator=g) * 0.3 + 3 * y[:, None]     # the label moves the points
        >>> diffusion_spectral_mi(x, y, 1.0, 2) > diffusion_spectral_mi(x, y[torch.randperm(200, generator=g)], 1.0, 2)
        True
    """
    labels = torch.as_tensor(labels)
    if labels.shape != (len(x),):
        raise ValueError(f"need one label per row: x has shape {tuple(x.shape)}, labels {tuple(labels.shape)}")
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for y in labels.unique():
        inside = (labels == y).nonzero().flatten()
        if len(inside) < 2:
            continue
        subset = torch.randperm(len(x), generator=g)[: len(inside)]
        share = len(inside) / len(x)
        total += share * (diffusion_spectral_entropy(x[subset], sigma, t) - diffusion_spectral_entropy(x[inside], sigma, t))
    return total
