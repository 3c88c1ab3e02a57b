"""A batch-1 sparse matrix-vector product that reads only the rows it needs (numba), and what it is timed against.

For ``y = x @ W`` with ``W`` of shape (n_in, n_out) stored row by row (the sparse dimension as rows; this is
``nn.Linear.weight.T``, made contiguous once), an input ``x`` with only the entries ``idx`` kept needs only those
rows of ``W``. At batch 1 the dense product is bound by memory bandwidth (it reads every weight once), so reading
a fraction ``1 - s`` of the rows can at best be ``1 / (1 - s)`` times faster. The kernel reads the kept rows in
place (no gathered copy: a copy reads and writes what it then reads again) four at a time, and splits the output
columns among numba's threads.

    rows = np.ascontiguousarray(linear.weight.detach().numpy().T)   # (n_in, n_out), once
    idx = kept_rows(x, threshold)                                   # entries with |x_i| > threshold
    y = gather_matvec(rows, x, idx)                                 # == (x * mask) @ rows
"""
from __future__ import annotations

import time

import numba
import numpy as np
import torch
from numba import njit, prange

COLUMN_BLOCK = 4096  # output columns per parallel chunk (all of them on one thread for a 4096-wide layer)


@njit(parallel=True, fastmath=True, boundscheck=False, nogil=True)
def _gather_matvec(rows, x, idx, out, block):  # pragma: no cover - compiled by numba
    n_out = rows.shape[1]
    k = idx.shape[0]
    k4 = k - k % 4
    for b in prange((n_out + block - 1) // block):
        c0 = b * block
        c1 = min(c0 + block, n_out)
        acc = out[c0:c1]
        acc[:] = 0.0
        for j in range(0, k4, 4):  # four kept rows per pass over the output chunk
            i0, i1, i2, i3 = idx[j], idx[j + 1], idx[j + 2], idx[j + 3]
            a0, a1, a2, a3 = x[i0], x[i1], x[i2], x[i3]
            r0, r1, r2, r3 = rows[i0, c0:c1], rows[i1, c0:c1], rows[i2, c0:c1], rows[i3, c0:c1]
            for c in range(c1 - c0):
                acc[c] += a0 * r0[c] + a1 * r1[c] + a2 * r2[c] + a3 * r3[c]
        for j in range(k4, k):
            i0 = idx[j]
            a0 = x[i0]
            r0 = rows[i0, c0:c1]
            for c in range(c1 - c0):
                acc[c] += a0 * r0[c]
    return out


def gather_matvec(rows: np.ndarray, x: np.ndarray, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``sum over i in idx of x[i] * rows[i]``: the product ``x @ rows`` with every entry outside ``idx`` dropped.

    ``rows`` is a C-contiguous float32 (n_in, n_out) array, ``x`` float32 (n_in,), ``idx`` int64 row indices
    (each at most once). Only the rows in ``idx`` are read. Returns ``out`` (float32, (n_out,)).

    Example:
        >>> rows = np.arange(12, dtype=np.float32).reshape(4, 3)
        >>> x = np.array([1, 0, 2, 0], dtype=np.float32)
        >>> gather_matvec(rows, x, np.array([0, 2])).tolist()     # row 0 + 2 * row 2
        [12.0, 15.0, 18.0]
    """
    if rows.ndim != 2 or rows.dtype != np.float32 or not rows.flags.c_contiguous:
        raise ValueError(f"rows must be a C-contiguous float32 (n_in, n_out) array, got {rows.dtype} "
                         f"{rows.shape} (contiguous: {rows.flags.c_contiguous}); use np.ascontiguousarray(w.T)")
    if x.shape != (rows.shape[0],) or x.dtype != np.float32:
        raise ValueError(f"x must be float32 of shape ({rows.shape[0]},), got {x.dtype} {x.shape}")
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= rows.shape[0]):
        raise ValueError(f"row indices must lie in [0, {rows.shape[0]}), got {idx.min()}..{idx.max()}")
    if out is None:
        out = np.empty(rows.shape[1], dtype=np.float32)
    return _gather_matvec(rows, x, idx, out, COLUMN_BLOCK)


def kept_rows(x: np.ndarray, threshold: float, col_norm: np.ndarray | None = None) -> np.ndarray:
    """Indices ``i`` with ``|x_i| > threshold`` (TEAL), or ``|x_i| * col_norm_i > threshold`` (WINA).

    Example:
        >>> kept_rows(np.array([0.1, -2.0, 0.5], dtype=np.float32), 0.3).tolist()
        [1, 2]
    """
    score = np.abs(x) if col_norm is None else np.abs(x) * col_norm
    return np.flatnonzero(score > threshold)


def set_threads(n: int) -> None:
    """Use ``n`` numba threads in the kernel (the timings of this project use one)."""
    numba.set_num_threads(n)


def flush_cache(nbytes: int = 96 << 20, _buf: list = []) -> float:
    """Read ``nbytes`` of other memory so that a weight matrix timed next comes from RAM, not from the caches.

    In a model every layer's weights are evicted by the other layers before they are used again; timing the same
    matrix back to back would let a small enough set of kept rows sit in the 32 MB L3 cache and flatter the
    sparse kernel. Returns the sum (so the read cannot be skipped).
    """
    if not _buf or _buf[0].nbytes != nbytes:
        _buf[:] = [torch.ones(nbytes // 4)]
    return float(_buf[0].sum())


def read_bandwidth(nbytes: int = 192 << 20, repeats: int = 5) -> float:
    """Memory read bandwidth in GB/s: the best of ``repeats`` sums over ``nbytes`` of float32 (torch's threads).

    Example:
        >>> read_bandwidth(8 << 20, repeats=2) > 0.1
        True
    """
    a = torch.ones(nbytes // 4)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return a.numel() * 4 / best / 1e9
