"""Streaming covariance (float64 accumulation, O(d^2) memory) and what is read from a covariance.

The data are never held as one (N, d) matrix: batches of rows are folded in one at a time. Each batch is
centred on its own mean, its (d, d) scatter is one float32 product, and the running mean and scatter are
merged in float64 (Chan, Golub & LeVeque's pairwise update), so the sums never lose the small differences
that an uncentred float32 sum of squares would. On the CPU the product is numpy's ``a.T @ a``, which BLAS
computes as a symmetric rank-k update (syrk): half the work of a general matmul of the same shape. It runs
on as many BLAS threads as torch has (``torch.get_num_threads()``).

Example:
    >>> x = torch.randn(1000, 5, dtype=torch.float64)
    >>> acc = StreamingCovariance(5)
    >>> for chunk in x.split(300):
    ...     _ = acc.update(chunk)
    >>> bool(torch.allclose(acc.covariance(), torch.from_numpy(np.cov(x.numpy().T)), atol=1e-6))
    True
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Iterable, Union

import numpy as np
import torch

from helpers.core.shards import ConcatRows
from helpers.core.store import ActivationStore

Batch = Union[torch.Tensor, np.ndarray]


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


def _scatter(xc: torch.Tensor) -> torch.Tensor:
    """xc^T xc as float64 (d, d) for a centred batch (B, d); on the CPU through numpy's syrk path."""
    if xc.device.type != "cpu":
        return (xc.T @ xc).double()
    a = xc.contiguous().numpy()
    controller = _blas_controller()
    limit = controller.limit(limits=torch.get_num_threads(), user_api="blas") if controller else contextlib.nullcontext()
    with limit:
        return torch.from_numpy(a.T @ a).double()       # numpy sees a.T @ a and calls BLAS syrk


def _rows(batch: Batch) -> torch.Tensor:
    """(..., d) -> (rows, d) float tensor on the CPU (float64 stays float64, everything else float32)."""
    if isinstance(batch, np.ndarray):
        batch = np.asarray(batch)
        batch = torch.from_numpy(batch if batch.flags.writeable else batch.copy())   # read-only arrays: copy the batch
    x = torch.as_tensor(batch)
    if x.ndim < 2:
        raise ValueError(f"a batch must have shape (rows, d) or (..., d), got {tuple(x.shape)}")
    x = x.detach().reshape(-1, x.shape[-1]).cpu()
    return x if x.dtype == torch.float64 else x.float()


class StreamingCovariance:
    """Running mean and covariance of rows seen so far; memory O(d^2), independent of how many rows.

    Example:
        >>> acc = StreamingCovariance().update(torch.tensor([[0.0, 1], [2, 3]]))
        >>> acc.n, acc.mean.tolist(), acc.covariance().tolist()
        (2, [1.0, 2.0], [[2.0, 2.0], [2.0, 2.0]])
    """

    def __init__(self, dim: int | None = None):
        self.dim, self.n = dim, 0
        self.mean: torch.Tensor | None = None       # (d,) float64
        self.scatter: torch.Tensor | None = None    # (d, d) float64: sum of outer products of centred rows

    def update(self, batch: Batch) -> "StreamingCovariance":
        """Fold in a batch of rows (B, d) (leading dims are flattened: (B, T, d) counts B*T rows)."""
        x = _rows(batch)
        b, d = x.shape
        if self.dim is None:
            self.dim = d
        if d != self.dim:
            raise ValueError(f"batch has {d} features, expected {self.dim} (shape {tuple(x.shape)})")
        if b == 0:
            return self
        if self.mean is None:
            self.mean = torch.zeros(d, dtype=torch.float64)
            self.scatter = torch.zeros(d, d, dtype=torch.float64)
        bmean = x.mean(0, dtype=torch.float64)                       # (d,)
        xc = x - bmean.to(x.dtype)                                  # (B, d) centred on the batch mean
        self.scatter += _scatter(xc)                                # the one (d, B) x (B, d) product
        delta = bmean - self.mean
        total = self.n + b
        self.scatter += torch.outer(delta, delta) * (self.n * b / total)
        self.mean += delta * (b / total)
        self.n = total
        return self

    def covariance(self, ddof: int = 1) -> torch.Tensor:
        """(d, d) float64 covariance, divided by ``n - ddof`` (``ddof=1`` as ``numpy.cov``, 0 for the MLE)."""
        if self.scatter is None or self.n - ddof <= 0:
            raise ValueError(f"need more than {ddof} rows for a covariance with ddof={ddof}, have {self.n}")
        return self.scatter / (self.n - ddof)

    def correlation(self) -> torch.Tensor:
        """(d, d) float64 correlation matrix (a constant feature gets 0 off the diagonal and 1 on it)."""
        return correlation_from_covariance(self.covariance())

    def __repr__(self) -> str:
        return f"StreamingCovariance(n={self.n}, d={self.dim})"


def covariance(data: Union[Batch, ActivationStore, Iterable[Batch]], layer: str | None = None, *,
               batch_size: int = 4096, warn: bool = True) -> StreamingCovariance:
    """Accumulate the covariance of a tensor/array, one layer of an ``ActivationStore``, or any iterable of batches.

    A tensor or a memory-mapped array is read ``batch_size`` rows at a time, so a store on disk is never loaded
    whole. Warns when there are fewer samples than dimensions (the Marchenko-Pastur law needs n >= d).

    Example:
        >>> acc = covariance(torch.randn(500, 3), batch_size=128)
        >>> acc.n, tuple(acc.covariance().shape)
        (500, (3, 3))
    """
    if isinstance(data, ActivationStore):
        if layer is None:
            raise ValueError(f"an ActivationStore needs layer=...; its layers: {data.layers}")
        data = data.numpy(layer)
    elif layer is not None:
        raise ValueError("layer=... is only for an ActivationStore")
    acc = StreamingCovariance()
    if isinstance(data, (torch.Tensor, np.ndarray, ConcatRows)):  # read batch_size rows at a time
        if data.ndim < 2:
            raise ValueError(f"data must have shape (N, d) or (N, ..., d), got {tuple(data.shape)}")
        for start in range(0, data.shape[0], batch_size):
            acc.update(data[start:start + batch_size])
    else:
        for batch in data:
            acc.update(batch)
    if acc.n == 0:
        raise ValueError("no rows: the data were empty")
    if warn and acc.n < acc.dim:
        warnings.warn(f"covariance of {acc.n} samples in {acc.dim} dimensions: with fewer samples than dimensions "
                      f"{acc.dim - acc.n + 1} or more eigenvalues are exactly 0 and the Marchenko-Pastur law does not "
                      f"apply; it needs at least {acc.dim} samples (and about {4 * acc.dim} for a clear bulk)",
                      stacklevel=2)
    return acc


def correlation_from_covariance(cov: torch.Tensor) -> torch.Tensor:
    """Correlation matrix of a covariance matrix (d, d); constant features get 0 off the diagonal.

    Example:
        >>> correlation_from_covariance(torch.tensor([[4.0, 2], [2, 9]])).tolist()
        [[1.0, 0.3333333432674408], [0.3333333432674408, 1.0]]
    """
    _check_square(cov, "cov")
    sd = cov.diagonal().clamp_min(0).sqrt()
    safe = torch.where(sd > 0, sd, torch.ones_like(sd))
    corr = cov / safe[:, None] / safe[None, :]
    corr = torch.where((sd[:, None] > 0) & (sd[None, :] > 0), corr, torch.zeros_like(corr))
    return corr.fill_diagonal_(1.0)


def partial_correlations(cov: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """Partial correlation of each pair given all other variables, from the precision matrix.

    Theta = (cov + ridge * mean(diag) * I)^-1 and rho_ij = -Theta_ij / sqrt(Theta_ii Theta_jj), diagonal 1.
    ``ridge > 0`` makes a singular covariance invertible (a shrinkage toward the identity).

    Example:
        >>> c = torch.tensor([[1.0, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 1.0]])   # a chain x -> y -> z
        >>> abs(partial_correlations(c)[0, 2].item()) < 1e-12
        True
    """
    _check_square(cov, "cov")
    c = cov.double()
    if ridge:
        c = c + ridge * c.diagonal().mean() * torch.eye(len(c), dtype=c.dtype)
    try:
        theta = torch.linalg.inv(c)
    except RuntimeError as err:  # singular
        raise ValueError("the covariance is singular (fewer samples than variables, or a constant variable); "
                         "pass ridge > 0, e.g. ridge=1e-3") from err
    d = theta.diagonal().sqrt()
    rho = -theta / d[:, None] / d[None, :]
    return rho.fill_diagonal_(1.0)


def _check_square(m: torch.Tensor, what: str) -> None:
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{what} must be a square (d, d) matrix, got shape {tuple(m.shape)}")
