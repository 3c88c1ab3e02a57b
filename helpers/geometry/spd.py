"""Covariance matrices as points on the manifold of symmetric positive definite (SPD) matrices.

Two metrics that respect the geometry (a straight line between two covariances in the plain matrix space leaves
the "shape" of the ellipsoids behind):

* log-Euclidean: d(A, B) = ||log A - log B||_F. The matrix log flattens the manifold, so means and linear models
  work on the vectors ``log_vectors(C)`` (upper triangle, off-diagonals times sqrt 2, so Euclidean distances agree).
* Bures-Wasserstein: d(A, B)^2 = tr A + tr B - 2 tr (A^1/2 B A^1/2)^1/2, the 2-Wasserstein distance between the
  zero-mean Gaussians N(0, A) and N(0, B); it stays well behaved for ill-conditioned matrices.

``nearest_mean`` is the minimum-distance-to-mean classifier of covariance-based BCI decoding (one mean per class,
each test matrix to the closest), here under either metric.

Example:
    >>> a, b = torch.diag(torch.tensor([1.0, 4.0])), torch.eye(2)
    >>> round(bures_wasserstein(a, b).item(), 6), round(log_euclidean(a, b).item(), 6)
    (1.0, 1.386294)
"""
from __future__ import annotations

import torch


def _check_spd(c: torch.Tensor, what: str = "matrices") -> torch.Tensor:
    c = torch.as_tensor(c)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{what} must be square, shape (..., d, d), got {tuple(c.shape)}")
    return c.double()


def _eig_apply(c: torch.Tensor, fn) -> torch.Tensor:
    """Apply a scalar function to the eigenvalues of symmetric matrices (..., d, d)."""
    ev, vec = torch.linalg.eigh((c + c.transpose(-1, -2)) / 2)
    return vec @ torch.diag_embed(fn(ev)) @ vec.transpose(-1, -2)


def spd_covariances(h: torch.Tensor, shrink: float = 1e-4) -> torch.Tensor:
    """Per-sample covariance over positions: (B, C, H, W) or (B, C, T) -> (B, C, C), made positive definite.

    ``shrink`` adds that fraction of the mean variance to the diagonal (a matrix from fewer positions than
    channels, or with a dead channel, is only semi-definite and has no logarithm).
    """
    h = torch.as_tensor(h).double().flatten(2)                   # (B, C, positions)
    if h.ndim != 3 or h.shape[-1] < 2:
        raise ValueError(f"need activations (B, C, positions...) with >= 2 positions, got {tuple(h.shape)}")
    hc = h - h.mean(-1, keepdim=True)
    cov = hc @ hc.transpose(1, 2) / (h.shape[-1] - 1)
    ridge = shrink * cov.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-12)
    return cov + ridge[:, None, None] * torch.eye(cov.shape[-1], dtype=cov.dtype)


def spd_log(c: torch.Tensor) -> torch.Tensor:
    """Matrix logarithm of SPD matrices (..., d, d); raises if one is not positive definite."""
    c = _check_spd(c)
    if (torch.linalg.eigvalsh(c) <= 0).any():
        raise ValueError("a matrix is not positive definite (an eigenvalue <= 0): add shrinkage first")
    return _eig_apply(c, torch.log)


def log_vectors(c: torch.Tensor) -> torch.Tensor:
    """(..., d, d) SPD -> (..., d(d+1)/2) vectors whose Euclidean distance is the log-Euclidean distance."""
    lg = spd_log(c)
    d = lg.shape[-1]
    iu = torch.triu_indices(d, d)
    weight = torch.where(iu[0] == iu[1], 1.0, 2 ** 0.5).double()
    return lg[..., iu[0], iu[1]] * weight


def log_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Log-Euclidean distance ||log A - log B||_F (broadcast over leading dims)."""
    return (spd_log(a) - spd_log(b)).flatten(-2).norm(dim=-1)


def bures_wasserstein(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bures-Wasserstein distance between SPD matrices (broadcast over leading dims)."""
    a, b = _check_spd(a, "a"), _check_spd(b, "b")
    ra = _eig_apply(a, lambda e: e.clamp_min(0).sqrt())
    cross = torch.linalg.eigvalsh(ra @ b @ ra).clamp_min(0).sqrt().sum(-1)   # tr (A^1/2 B A^1/2)^1/2
    d2 = a.diagonal(dim1=-2, dim2=-1).sum(-1) + b.diagonal(dim1=-2, dim2=-1).sum(-1) - 2 * cross
    return d2.clamp_min(0).sqrt()


def bures_wasserstein_mean(c: torch.Tensor, iters: int = 50, tol: float = 1e-10) -> torch.Tensor:
    """Bures-Wasserstein barycentre of SPD matrices (n, d, d) by the fixed-point iteration
    S <- S^-1/2 (mean_i (S^1/2 C_i S^1/2)^1/2)^2 S^-1/2, started at the arithmetic mean."""
    c = _check_spd(c)
    s = c.mean(0)
    for _ in range(iters):
        rs = _eig_apply(s, lambda e: e.clamp_min(1e-300).sqrt())
        irs = _eig_apply(s, lambda e: e.clamp_min(1e-300).rsqrt())
        t = _eig_apply(rs @ c @ rs, lambda e: e.clamp_min(0).sqrt()).mean(0)
        new = irs @ t @ t @ irs
        if (new - s).norm() <= tol * s.norm():
            return new
        s = new
    return s


def nearest_mean(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, metric: str) -> torch.Tensor:
    """Minimum distance to the class mean: predicted label of each test matrix (m,).

    metric "log-euclidean" (class mean = exp of the mean log) or "bures-wasserstein" (class mean = barycentre).
    """
    labels = torch.as_tensor(labels)
    if labels.shape != (len(train),):
        raise ValueError(f"need one label per training matrix: {tuple(train.shape)} vs labels {tuple(labels.shape)}")
    classes = labels.unique()
    if metric == "log-euclidean":
        tv, sv = log_vectors(train), log_vectors(test)
        means = torch.stack([tv[labels == k].mean(0) for k in classes])
        dist = torch.cdist(sv, means)
    elif metric == "bures-wasserstein":
        means = torch.stack([bures_wasserstein_mean(_check_spd(train)[labels == k]) for k in classes])
        dist = bures_wasserstein(_check_spd(test)[:, None], means[None])
    else:
        raise ValueError(f"unknown metric {metric!r}; valid: 'log-euclidean', 'bures-wasserstein'")
    return classes[dist.argmin(1)]
