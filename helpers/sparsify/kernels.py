"""A batch-1 sparse matrix-vector product that reads only the rows it needs (numba), and what it is timed against.

For ``y = x @ W`` with ``W`` of shape (n_in, n_out) stored row by row (the sparse dimension as rows; this is
``nn.Linear.weight.T``, made contiguous once), an input ``x`` with only the entries ``idx`` kept needs only those
rows of ``W``. At batch 1 the dense product is bound by memory bandwidth (it reads every weight once), so reading
a fraction ``1 - s`` of the rows can at best be ``1 / (1 - s)`` times faster. The kernel reads the kept rows in
place (no gathered copy: a copy reads and writes what it then reads again) four at a time, and splits the output
columns among numba's threads (:func:`set_threads`; one by default).

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
_THREADS = [1]       # numba threads of the kernel; 1 = the serial build, which never starts numba's thread pool


def _gather_matvec_py(rows, x, idx, out, block):  # pragma: no cover - compiled by numba
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


# Two builds of one loop: numba's OpenMP thread pool, once started, also changes the number of threads torch
# uses (torch.get_num_threads() goes from 1 to the core count), so the one-thread build must not start it.
_serial = njit(parallel=False, fastmath=True, boundscheck=False, nogil=True)(_gather_matvec_py)
_parallel = njit(parallel=True, fastmath=True, boundscheck=False, nogil=True)(_gather_matvec_py)


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
    if _THREADS[0] == 1:
        return _serial(rows, x, idx, out, COLUMN_BLOCK)
    return _parallel(rows, x, idx, out, max(256, -(-rows.shape[1] // _THREADS[0])))


def kept_rows(x: np.ndarray, threshold: float, col_norm: np.ndarray | None = None) -> np.ndarray:
    """Indices ``i`` with ``|x_i| > threshold`` (TEAL), or ``|x_i| * col_norm_i > threshold`` (WINA).

    Example:
        >>> kept_rows(np.array([0.1, -2.0, 0.5], dtype=np.float32), 0.3).tolist()
        [1, 2]
    """
    score = np.abs(x) if col_norm is None else np.abs(x) * col_norm
    return np.flatnonzero(score > threshold)


def set_threads(n: int) -> None:
    """Use ``n`` numba threads in the kernel (default 1; the timings of this project use one).

    With ``n > 1`` numba's thread pool starts; torch's own thread count is put back afterwards.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    _THREADS[0] = n
    if n > 1:
        torch_threads = torch.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        _parallel(np.zeros((4, 4), np.float32), np.zeros(4, np.float32), np.arange(4), np.empty(4, np.float32), 4)
        torch.set_num_threads(torch_threads)


def flush_cache(nbytes: int = 96 << 20, _buf: list = []) -> float:
    """Read ``nbytes`` of other memory so that a weight matrix timed next comes from RAM, not from the caches.

    In a model every layer's weights are evicted by the other layers before they are used again; timing the same
    matrix back to back would let a small enough set of kept rows sit in the 32 MB L3 cache and flatter the
    sparse kernel. Returns the sum (so the read cannot be skipped).
    """
    if not _buf or _buf[0].nbytes != nbytes:
        _buf[:] = [torch.ones(nbytes // 4)]
    return float(_buf[0].sum())


def read_bandwidth(nbytes: int = 192 << 20, repeats: int = 5, blocks: int = 4) -> float:
    """Memory read bandwidth in GB/s: a torch sum over ``nbytes`` of float32 in ``blocks`` pieces, each timed after
    :func:`flush_cache`, the best of ``repeats`` per piece (short calls, as in :func:`time_matvec`).

    Example:
        >>> read_bandwidth(8 << 20, repeats=2, blocks=2) > 0.1
        True
    """
    pieces = torch.ones(nbytes // 4).chunk(blocks)
    best = [float("inf")] * len(pieces)
    for _ in range(repeats):
        for i, p in enumerate(pieces):
            best[i] = min(best[i], _seconds(p.sum))
    return nbytes / sum(best) / 1e9


def _seconds(fn) -> float:
    flush_cache()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def time_matvec(rows: np.ndarray, sparsities: list[float], repeats: int = 9, seed: int = 0,
                blocks: int = 4) -> list[dict]:
    """Time the batch-1 product with ``rows`` (n_in, n_out) dense and sparse, side by side, caches flushed.

    For every sparsity ``s`` and repeat a fresh random set of ``round((1 - s) * n_in)`` kept rows is drawn (as a new
    token would give) and these are timed in rotating order, each after :func:`flush_cache`: ``kernel`` (only the
    kept rows) and ``torch_gather`` (``x[idx] @ W[idx]`` with the kept rows copied into a buffer allocated once).
    The dense product is timed in ``blocks`` row blocks (each still far larger than the cache), ``torch``
    (``x[a:b] @ W[a:b]``, views) and ``kernel_all`` (the kernel on every row of the block), and summed: on a
    machine shared with other jobs a call is preempted with a probability that grows with its length, so a dense
    call several times longer than a sparse one would be measured unfairly slow. Every figure is the best over
    repeats (per block for the dense ones). Returns one dict per sparsity with these seconds, ``dense`` (the faster
    dense product), ``speedup`` = ``dense / kernel``, ``gather_speedup`` alike, ``ideal`` = 1 / (1 - s), and
    ``speedup_median_pair`` (the median over repeats of the ratio within a repeat, dense timed in one call).
    The sparse result is checked against the dense product of the masked input first.
    """
    rng = np.random.default_rng(seed)
    n_in = rows.shape[0]
    w = torch.from_numpy(rows)  # (n_in, n_out), shares memory
    cuts = np.linspace(0, n_in, blocks + 1).astype(int)
    block_rows = [np.arange(a, b) for a, b in zip(cuts[:-1], cuts[1:])]
    dense_t: dict[str, list[list[float]]] = {"torch": [[] for _ in block_rows], "kernel_all": [[] for _ in block_rows]}
    all_rows = np.arange(n_in)
    out = []
    for s in sparsities:
        keep = round((1.0 - s) * n_in)
        times: dict[str, list[float]] = {"kernel": [], "torch_gather": [], "dense_one_call": []}
        buf = torch.empty(keep, w.shape[1])  # allocated once: page faults would be timed otherwise
        for r in range(repeats + 1):  # repeat 0 warms up (first touch of the buffer, pages) and is not recorded
            x = rng.standard_normal(n_in).astype(np.float32)
            idx = np.sort(rng.choice(n_in, keep, replace=False))
            xt, it = torch.from_numpy(x), torch.from_numpy(idx)
            if r == 0:
                masked = np.zeros_like(x)
                masked[idx] = x[idx]
                ref = torch.from_numpy(masked).double() @ w.double()
                got = torch.from_numpy(gather_matvec(rows, x, idx)).double()
                if not torch.allclose(got, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max())):
                    raise AssertionError(f"the sparse kernel disagrees with the dense product at sparsity {s}")
            fns = {"kernel": lambda: gather_matvec(rows, x, idx),
                   "torch_gather": lambda: xt[it] @ torch.index_select(w, 0, it, out=buf),
                   "dense_one_call": lambda: gather_matvec(rows, x, all_rows)}
            for b, (a, e) in enumerate(zip(cuts[:-1], cuts[1:])):
                fns[f"torch{b}"] = lambda a=a, e=e: xt[a:e] @ w[a:e]
                fns[f"kernel_all{b}"] = lambda b=b: gather_matvec(rows, x, block_rows[b])
            names = list(fns)
            for k in names[r % len(names):] + names[:r % len(names)]:
                t = _seconds(fns[k])
                if r == 0:
                    continue
                if k in times:
                    times[k].append(t)
                else:
                    kind = "torch" if k.startswith("torch") else "kernel_all"
                    dense_t[kind][int(k[len(kind):])].append(t)
        out.append({"sparsity": s, **{k: float(np.min(v)) for k, v in times.items()}, "ideal": 1.0 / (1.0 - s),
                    "speedup_median_pair": float(np.median(np.array(times["dense_one_call"]) / times["kernel"]))})
    best = {k: float(sum(min(t) for t in v)) for k, v in dense_t.items()}  # dense does not depend on s
    for o in out:
        o.update(best, dense=min(best.values()))
        o.update(speedup=o["dense"] / o["kernel"], gather_speedup=o["dense"] / o["torch_gather"])
    return out
