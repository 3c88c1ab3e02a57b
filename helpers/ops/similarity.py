"""Linear CKA (centred kernel alignment) between two sets of activations of the same inputs, in feature space.

CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) for column-centred X (n, p) and Y (n, q)
(Kornblith et al., 2019). It equals the n x n Gram-matrix form HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with
K = X X^T, L = Y Y^T, but costs O(n (p + q)^2) time and O((p + q)^2) memory instead of O(n^2): the rows are
folded in ``chunk`` at a time, so n = 50,000 is cheap.

Example:
    >>> x = torch.randn(200, 8)
    >>> round(linear_cka(x, 3 * x @ torch.linalg.qr(torch.randn(8, 8))[0]), 6)   # invariant to rotation and scale
    1.0
"""
from __future__ import annotations

from typing import Sequence

import torch


def _flat(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"{what} must have shape (n, d) or (n, ..., d) with one row per input, got {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1) if x.ndim > 2 else x


def _chunked_mean(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Column means in float64 without a float64 copy of the whole matrix."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        total += x[start:start + chunk].sum(0, dtype=torch.float64)
    return total / x.shape[0]


def linear_cka(x: torch.Tensor, y: torch.Tensor, chunk: int = 8192) -> float:
    """Linear CKA of activations ``x`` (n, p) and ``y`` (n, q) of the same n inputs; in [0, 1].

    Inputs with more dims are flattened per row ((n, T, d) -> (n, T*d)). Each chunk's products are
    computed in the inputs' precision (float32 unless one is float64) and summed in float64.
    """
    x, y = _flat(x, "x"), _flat(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA compares the same inputs: x has {x.shape[0]} rows (shape {tuple(x.shape)}) but y has "
                         f"{y.shape[0]} (shape {tuple(y.shape)})")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 rows, got shape {tuple(x.shape)}")
    mx, my = _chunked_mean(x, chunk), _chunked_mean(y, chunk)
    p, q = x.shape[1], y.shape[1]
    work = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    xx = torch.zeros(p, p, dtype=torch.float64, device=x.device)
    yy = torch.zeros(q, q, dtype=torch.float64, device=x.device)
    yx = torch.zeros(q, p, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):   # centred chunk products in float32, sums in float64
        xc = x[start:start + chunk].to(work) - mx.to(work)          # (c, p)
        yc = y[start:start + chunk].to(work) - my.to(work)          # (c, q)
        xx += (xc.T @ xc).double()
        yy += (yc.T @ yc).double()
        yx += (yc.T @ xc).double()
    denom = xx.norm() * yy.norm()
    if denom == 0:
        raise ValueError("one of the activation sets is constant over the inputs: CKA is undefined")
    return float(yx.pow(2).sum() / denom)


def cka_matrix(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Linear CKA between every pair: (len(xs), len(ys)) float64; ``ys=None`` compares ``xs`` with itself.

    Example:
        >>> a = torch.randn(50, 4)
        >>> cka_matrix([a, a]).tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    ys = xs if ys is None else ys
    out = torch.empty(len(xs), len(ys), dtype=torch.float64)
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            out[i, j] = round(linear_cka(x, y), 12) if ys is not xs or j >= i else out[j, i]
    return out
