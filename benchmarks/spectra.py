"""Benchmark: streaming covariance against a plain matmul and numpy.cov; linear CKA at n = 50,000 x d = 512.

    python benchmarks/spectra.py                 # or: make bench  -> its section of benchmarks/RESULTS.md

Streaming covariance (helpers.ops.covariance): rows per second of ``StreamingCovariance.update`` on batches of
``--batch`` rows x ``--dim`` float32, against the plain float32 matmul ``x.T @ x`` of the same batch (the limit:
the update's only O(B d^2) work) and against ``numpy.cov`` on ``--rows`` rows held in memory. The three are timed in
interleaved repeats in one run; the figure is the median. Memory: the peak resident memory of a fresh process that
streams N rows generated batch by batch (no N x d array anywhere), for two N: independent of N when the streaming
is right.

Linear CKA (helpers.ops.similarity.linear_cka): time and peak memory above the inputs for n = ``--cka-n`` rows of
d = ``--dim`` on each side, in a fresh process (feature-space form; the n x n Gram matrices it never builds would
take n^2 x 8 bytes each).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # numpy's BLAS gets the same number of threads as torch (and no idle spinning threads)
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np
import torch

from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent


def peak_mb() -> float:
    """Peak resident memory of this process in MB (Linux VmHWM; getrusage's maxrss keeps the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start the peak over from the current resident memory (Linux >= 4.0; otherwise a no-op)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def child(kind: str, n: int, dim: int, batch: int) -> dict:
    """Run in a fresh process: peak memory (and time) of streaming n rows, or of CKA on n rows."""
    from helpers.ops import covariance, similarity
    torch.set_num_threads(int(os.environ.get("ACTIVATION_LAB_THREADS", "1")))
    g = torch.Generator().manual_seed(0)
    torch.randn(batch, dim, generator=g) @ torch.randn(dim, dim, generator=g)   # warm the allocator and BLAS
    reset_peak()
    before = peak_mb()
    if kind == "stream":
        acc = covariance.StreamingCovariance(dim)
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            acc.update(torch.randn(min(batch, n - start), dim, generator=g))
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "peak_mb": peak_mb() - before, "n": acc.n}
    x = torch.randn(n, dim, generator=g)
    y = torch.tanh(x @ torch.randn(dim, dim, generator=g) / dim ** 0.5)
    inputs = peak_mb() - before
    reset_peak()
    before = peak_mb()
    t0 = time.perf_counter()
    value = similarity.linear_cka(x, y)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": peak_mb() - before, "inputs_mb": inputs, "cka": value}


def run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT.parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--rows", type=int, default=65536, help="rows for numpy.cov in memory")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cka-n", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    parser.add_argument("--child", nargs=4, metavar=("KIND", "N", "DIM", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["ACTIVATION_LAB_THREADS"] = str(args.threads)
    if args.child:
        kind, n, dim, batch = args.child
        print(json.dumps(child(kind, int(n), int(dim), int(batch))))
        return 0
    from helpers.ops import covariance
    pin_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.dim, generator=g) * 3 + 1     # (B, d) float32
    big = np.random.default_rng(0).normal(size=(args.rows, args.dim)).astype(np.float32)
    acc = covariance.StreamingCovariance(args.dim)
    xn = x.numpy()
    table = {"matmul x.T @ x (torch float32, the limit)": (lambda: x.T @ x, args.batch),
             "symmetric product a.T @ a (numpy float32, BLAS syrk)": (lambda: xn.T @ xn, args.batch),
             "helpers StreamingCovariance.update": (lambda: acc.update(x), args.batch),
             "numpy.cov in memory": (lambda: np.cov(big, rowvar=False), args.rows)}
    for fn, _ in table.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {name: [] for name in table}
    names = list(table)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, rows = table[name]
            t0 = time.perf_counter()
            fn()
            rates[name].append(rows / (time.perf_counter() - t0))
    med = {name: statistics.median(v) for name, v in rates.items()}
    limit = med[names[0]]
    syrk = med[names[1]]
    rows_out = [f"| {name} | {med[name] / 1e6:.3f} | {med[name] / limit:.2f} | {med[name] / syrk:.2f} |"
                for name in names]
    for row in rows_out:
        print(row, flush=True)

    mem = {n: run_child("stream", str(n), str(args.dim), str(args.batch)) for n in (50_000, 400_000)}
    for n, m in mem.items():
        print(f"stream N={n}: peak +{m['peak_mb']:.0f} MB, {n / m['seconds'] / 1e6:.3f} M rows/s", flush=True)
    cka = run_child("cka", str(args.cka_n), str(args.dim), str(args.batch))
    print(f"cka: {cka}", flush=True)
    gram_gb = args.cka_n ** 2 * 8 / 1e9

    lines = ["## Covariance and CKA", "",
             machine_line(f"python benchmarks/spectra.py --threads {args.threads}", f", numpy {np.__version__}"), "",
             f"### Streaming covariance (d = {args.dim})", "",
             f"Rows per second, median of {args.repeats} interleaved repeats; matmul, syrk and update on one batch of "
             f"{args.batch} float32 rows, numpy.cov on {args.rows} rows in memory (it converts them to float64). "
             f"Goal: the update at >= 0.80 of the matmul.", "",
             "The update's product is numpy's `a.T @ a`, which BLAS runs as a symmetric rank-k update (half the "
             "flops of the general matmul), so it can beat the matmul; the syrk row is the limit for that path.", "",
             "| method | M rows/s | ratio to matmul | ratio to syrk |", "|---|---:|---:|---:|", *rows_out, "",
             "Peak resident memory added while streaming N rows generated batch by batch (fresh process each): " +
             ", ".join(f"N = {n:,}: {m['peak_mb']:.0f} MB ({n / m['seconds'] / 1e6:.2f} M rows/s incl. generating "
                       f"the rows)" for n, m in mem.items()) +
             f". The N x d float32 matrix would be {400_000 * args.dim * 4 / 1e6:.0f} MB at the larger N.", "",
             f"### Linear CKA, n = {args.cka_n:,}, d = {args.dim} on each side", "",
             f"Feature-space form, chunks of 8192 rows: {cka['seconds']:.2f} s, peak memory above the inputs "
             f"{cka['peak_mb']:.0f} MB (inputs {cka['inputs_mb']:.0f} MB). One n x n Gram matrix in float64 would be "
             f"{gram_gb:.0f} GB."]
    text = "\n".join(lines) + "\n"
    write_section(args.out, "spectra", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
