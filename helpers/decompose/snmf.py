"""Semi-nonnegative matrix factorisation of activations (Ding, Li & Jordan 2010), as Shafran et al. (2025) use it
to decompose MLP activations: ``A ≈ F Gᵀ`` with ``A`` (d, N) the activations of N tokens, ``F`` (d, k) free
(each column a sparse group of neurons, kept sparse by winner-take-all) and ``G`` (N, k) >= 0 (how much each
token uses each feature).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(200, 3, generator=g) @ torch.randn(3, 16, generator=g)   # 200 tokens, 16 neurons, 3 causes
    >>> fit = semi_nmf(x, k=3, iters=200, keep=1.0)
    >>> fit.relative_error(x) < 0.1
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

EPS = 1e-10


@dataclass
class SemiNMF:
    """``features`` F (d, k), ``codes`` G (N, k) >= 0; reconstruction of the tokens is ``G Fᵀ`` (N, d)."""
    features: torch.Tensor
    codes: torch.Tensor

    def reconstruct(self) -> torch.Tensor:
        return self.codes @ self.features.T

    def relative_error(self, x: torch.Tensor) -> float:
        """``||X - G Fᵀ||_F / ||X||_F`` for the tokens the codes belong to."""
        return float((x.double() - self.reconstruct().double()).norm() / x.double().norm())


def _pos(m: torch.Tensor) -> torch.Tensor:
    return (m.abs() + m) / 2


def _neg(m: torch.Tensor) -> torch.Tensor:
    return (m.abs() - m) / 2


def update_codes(a: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """One multiplicative update of G >= 0 for fixed F (Ding et al., eq. 10), A (d, N):
    ``G ← G ⊙ sqrt(((AᵀF)⁺ + G(FᵀF)⁻) / ((AᵀF)⁻ + G(FᵀF)⁺))``."""
    atf, ftf = a.T @ f, f.T @ f
    return g * torch.sqrt((_pos(atf) + g @ _neg(ftf)) / (_neg(atf) + g @ _pos(ftf) + EPS))


def winner_take_all(f: torch.Tensor, keep: float) -> torch.Tensor:
    """Keep the ``keep`` fraction of largest-|entry| rows in every column of F (at least one), zero the rest."""
    n_keep = max(1, round(keep * f.shape[0]))
    if n_keep >= f.shape[0]:
        return f
    idx = f.abs().topk(n_keep, dim=0).indices
    return torch.zeros_like(f).scatter(0, idx, f.gather(0, idx))


def semi_nmf(x: torch.Tensor, k: int, iters: int = 200, keep: float = 0.05, ridge: float = 1e-6) -> SemiNMF:
    """Factor tokens x (N, d) as ``G Fᵀ``: F (d, k) sparse, G (N, k) >= 0.

    Per iteration, as in Shafran et al.'s code: F by ridge least squares ``F = A G (GᵀG + rI)⁻¹``;
    winner-take-all keeps the ``keep`` fraction of neurons per feature (they use 1-5 %); G's columns are
    scaled to unit norm (F takes the scale); then one multiplicative update of G. Initialised from the SVD
    (``F = U√Σ``, ``G = max(V√Σ, 0)``), so the result is deterministic. Float64 throughout.
    """
    if x.ndim != 2:
        raise ValueError(f"expected tokens x (N, d), got {tuple(x.shape)}")
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k must be between 1 and min(N, d) = {min(x.shape)}, got {k}")
    if not 0 < keep <= 1:
        raise ValueError(f"keep is a fraction of the neurons in (0, 1], got {keep}")
    a = x.double().T                                             # (d, N)
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    f = u[:, :k] * s[:k].sqrt()
    g = (vh[:k].T * s[:k].sqrt()).clamp_min(0) + 1e-4           # strictly positive, so updates can move it
    eye = torch.eye(k, dtype=a.dtype)
    for _ in range(iters):
        f = torch.linalg.solve(g.T @ g + ridge * eye, (a @ g).T).T   # (d, k)
        f = winner_take_all(f, keep)
        norms = g.norm(dim=0).clamp_min(EPS)
        g, f = g / norms, f * norms
        g = update_codes(a, f, g)
    return SemiNMF(f.float(), g.float())


def encode(x: torch.Tensor, features: torch.Tensor, iters: int = 100) -> torch.Tensor:
    """Codes G (N, k) >= 0 of new tokens x (N, d) for fixed features F (d, k): multiplicative updates from a
    least-squares start (clamped positive)."""
    a, f = x.double().T, features.double()
    g = torch.linalg.lstsq(f, a).solution.T.clamp_min(0) + 1e-4
    for _ in range(iters):
        g = update_codes(a, f, g)
    return g.float()
