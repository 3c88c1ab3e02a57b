"""Local Interaction Basis (Bushnaq et al., 2024), in a small form for MLPs whose layer maps can be written as
functions: a basis per layer that keeps only the directions the *next* layer's basis depends on.

Backwards from the output (whose basis is its PCA basis): PCA-whiten the layer's activations (dropping
directions of no variance), compute ``M = E_x[JᵀJ]`` with ``J`` the Jacobian of the next layer's LIB
coordinates with respect to the whitened coordinates, and rotate into ``M``'s eigenbasis scaled by
``√eigenvalue``, dropping directions whose eigenvalue is below ``tol`` times the largest. This is the
project's reading of the paper's summary (the integrated-gradient interaction graph is not built).

Example:
    >>> x = torch.randn(500, 3) * torch.tensor([1.0, 1.0, 5.0])
    >>> out = output_basis(x[:, :2])                         # the "next layer" reads only the first two dims
    >>> lib = lib_layer(x, lambda v: out.coords(v[..., :2]))
    >>> lib.size, pca_size(x, 0.99)
    (2, 3)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.func import jacrev, vmap


@dataclass
class LIBLayer:
    """Coordinates of activations x (..., d): ``((x - mean) @ whiten) @ rotate``; ``eigenvalues`` of the kept directions."""
    mean: torch.Tensor
    whiten: torch.Tensor
    rotate: torch.Tensor
    eigenvalues: torch.Tensor

    @property
    def size(self) -> int:
        return self.rotate.shape[1]

    def coords(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) @ self.whiten) @ self.rotate


def _pca(x: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = x.double()
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    var = s.pow(2) / len(x)
    keep = var > tol * var.max()
    return mean, vh[keep].T, var[keep]                                # (d,), (d, r), (r,)


def pca_size(x: torch.Tensor, explained: float = 0.99) -> int:
    """How many principal directions of x (N, d) explain the fraction ``explained`` of its variance."""
    _, _, var = _pca(x, 0.0)
    return int((var.cumsum(0) / var.sum() < explained).sum()) + 1


def output_basis(y: torch.Tensor, tol: float = 1e-8) -> LIBLayer:
    """The output layer's basis: its principal directions (not whitened), directions of no variance dropped."""
    mean, v, var = _pca(y, tol)
    return LIBLayer(mean.float(), v.float(), torch.eye(v.shape[1]), var.float())


def lib_layer(x: torch.Tensor, next_coords: Callable[[torch.Tensor], torch.Tensor], tol: float = 1e-3,
              pca_tol: float = 1e-8) -> LIBLayer:
    """LIB basis of a layer with activations x (N, d), given ``next_coords``: one activation vector (d,) -> the next
    layer's LIB coordinates (m,) (plain torch ops, so that ``torch.func.vmap`` and ``jacrev`` apply)."""
    if x.ndim != 2:
        raise ValueError(f"expected activations (N, d), got {tuple(x.shape)}")
    mean, v, var = _pca(x, pca_tol)
    whiten = (v / var.sqrt()).float()                               # (d, r): whitened coords have unit variance
    unwhiten = (v * var.sqrt()).T.float()                           # (r, d)
    xw = ((x.double() - mean) @ whiten.double()).float()            # (N, r)
    mean = mean.float()
    jac = vmap(jacrev(lambda w: next_coords(mean + w @ unwhiten)))(xw)   # (N, m, r)
    m = torch.einsum("nmr,nms->rs", jac.double(), jac.double()) / len(x)
    evals, evecs = torch.linalg.eigh(m)
    evals, evecs = evals.flip(0), evecs.flip(1)                     # largest first
    keep = evals > tol * evals[0]
    rotate = (evecs[:, keep] * evals[keep].sqrt()).float()
    return LIBLayer(mean, whiten, rotate, evals[keep].float())
