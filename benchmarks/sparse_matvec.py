"""Benchmark: batch-1 sparse matrix-vector product vs dense on an 11008 x 4096 layer, and SmolLM2 decoding with
sparse MLPs, in one run.

    python benchmarks/sparse_matvec.py                 # -> its section of benchmarks/RESULTS.md
    python benchmarks/sparse_matvec.py --threads 2

1. The layer of a 7B model's MLP down-projection, float32 (180 MB), stored with the sparse dimension as rows.
   ``helpers.sparsify.kernels.time_matvec`` times, per sparsity, torch's dense ``x @ W``, the numba kernel with every
   row, the kernel reading only the kept rows, and torch's gather (kept rows copied into a preallocated buffer,
   then multiplied), each right after reading 96 MB of other memory, fresh random kept rows per repeat, rotating
   order; the best of the repeats of each. The read bandwidth is measured in the same run (a torch sum over
   192 MB), and the bandwidth each product achieves is derived from the bytes it must read.
2. SmolLM2-135M, greedy decoding at batch 1 (Hugging Face ``generate`` with the KV cache): dense vs every MLP
   through ``sparse_mlp.sparse_mlps`` at 50 % TEAL sparsity of the MLP inputs (gate/up and down), interleaved
   repeats, tokens/s of the fastest repeat of each; the loss of both on a held-out paragraph.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from helpers.sparsify import kernels, sparse_mlp
from helpers.sparsify import thresholds as th
from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent
CALIB = ("The river runs through the old town, past the market and the stone bridge. In the morning the traders set up "
         "their stalls, and by noon the square is full of people buying bread, fish and fruit. The town grew rich from "
         "this trade over many centuries, and its churches and houses still show that wealth.")
TEST = ("A small robot lived in a workshop at the edge of the city. Every night it cleaned the floor, sorted the tools "
        "and charged its battery by the window. One day the inventor who built it left a note on the bench asking the "
        "robot to finish a clock she had started, and the robot worked on it until morning.")


def matvec_table(repeats: int, threads: int) -> tuple[list[str], str]:
    rows = np.random.default_rng(0).standard_normal((11008, 4096), dtype=np.float32)
    kernels.gather_matvec(rows, rows[:, 0].copy(), np.arange(8))  # compile
    bandwidth = kernels.read_bandwidth()
    res = kernels.time_matvec(rows, [0.25, 0.5, 0.6, 0.75, 0.8, 0.9], repeats=repeats)
    bandwidth = max(bandwidth, kernels.read_bandwidth())  # before and after the products: the better of the two
    gb = rows.nbytes / 1e9
    out = []
    for r in res:
        s = r["sparsity"]
        out.append(f"| {s:.2f} | {r['torch'] * 1e3:.2f} | {r['kernel_all'] * 1e3:.2f} | {r['dense_one_call'] * 1e3:.2f} | "
                   f"{r['kernel'] * 1e3:.2f} | "
                   f"{r['torch_gather'] * 1e3:.2f} | **{r['speedup']:.2f}** | {r['ideal']:.2f} | "
                   f"{r['speedup'] / r['ideal']:.0%} | {r['speedup_median_pair']:.2f} | {r['gather_speedup']:.2f} | "
                   f"{(1 - s) * gb / r['kernel']:.1f} |")
        print(out[-1], flush=True)
    dense = res[0]["dense"]
    note = (f"Read bandwidth measured in this run: {bandwidth:.1f} GB/s (torch sum over 192 MB in 4 pieces, best of 5 "
            f"each). The dense product reads {rows.nbytes / 1e6:.0f} MB: torch's `x @ W` {gb / res[0]['torch']:.1f} "
            f"GB/s, the kernel with every row {gb / res[0]['kernel_all']:.1f} GB/s; dense reference "
            f"{dense * 1e3:.2f} ms (the faster of the two). Threads: {threads} (torch and numba).")
    return out, note


def smollm2_rows(repeats: int, n_new: int) -> list[str]:
    from helpers import zoo

    lm, info = zoo.load("smollm2-135m", device="cpu")
    tok = info.tokenizer
    mlps = sparse_mlp.llama_mlps(lm)
    rules = th.calibrate(lm, [f"{n}.{p}" for n in mlps for p in ("gate_proj", "down_proj")],
                         tok(CALIB, return_tensors="pt").input_ids, 0.5, "teal")
    prompt = tok("Once upon a time", return_tensors="pt").input_ids
    test = tok(TEST, return_tensors="pt").input_ids

    def run(sparse: bool) -> tuple[float, float]:
        import contextlib
        ctx = sparse_mlp.sparse_mlps(lm, rules) if sparse else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            t0 = time.perf_counter()
            lm.generate(prompt, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False)
            dt = time.perf_counter() - t0
            logits = lm(test).logits[0, :-1]
        return dt, torch.nn.functional.cross_entropy(logits, test[0, 1:]).item()

    run(True), run(False)  # warm-up (numba compile, allocator)
    times = {False: [], True: []}
    loss = {}
    for r in range(repeats):
        for sparse in ((False, True) if r % 2 == 0 else (True, False)):
            dt, loss[sparse] = run(sparse)
            times[sparse].append(dt)
    best = {k: min(v) for k, v in times.items()}
    return [f"| dense | {n_new / best[False]:.1f} | 1.00 | {loss[False]:.3f} |",
            f"| MLPs at 50 % (TEAL, numba kernel) | {n_new / best[True]:.1f} | **{best[False] / best[True]:.2f}** | "
            f"{loss[True]:.3f} |"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--lm-repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    pin_threads(args.threads)
    kernels.set_threads(args.threads)
    mv_rows, note = matvec_table(args.repeats, args.threads)
    lm_rows = smollm2_rows(args.lm_repeats, args.tokens)
    for r in lm_rows:
        print(r)
    lines = ["## Sparse matrix-vector product at batch 1 (activation sparsity, lesson 15)", "",
             machine_line(f"python benchmarks/sparse_matvec.py --threads {args.threads}"),
             "Layer 11008 x 4096 float32, stored with the sparse (input) dimension as rows; x has random kept entries "
             "(fresh each repeat). Each product is timed after reading 96 MB of other memory (weights come from RAM, "
             f"as in a model); best of {args.repeats} interleaved repeats. The dense products (torch `x @ W` and the "
             "kernel with every row) are timed in 4 row blocks of 45 MB and summed (best per block), so that a dense "
             "call is not much longer than a sparse one: on a shared machine long calls are preempted more often; "
             "`one call` is the kernel over all rows in one call, for comparison. `x dense` = the faster dense product "
             "/ the kept-rows time; `of ideal` = `x dense` / (1 / (1 - s)); `median pair` = the median within one "
             "repeat of one-call dense / kept rows (more sensitive to other jobs); `gather` = torch copying the kept "
             "rows into a preallocated buffer, then multiplying; GB/s = bytes of the kept rows / kernel time. " + note, "",
             "| sparsity | torch dense ms | kernel all rows ms | one call ms | kernel kept rows ms | torch gather ms | "
             "x dense | ideal | of ideal | median pair | gather x dense | kernel GB/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *mv_rows, "",
             f"SmolLM2-135M greedy decoding at batch 1, {args.tokens} new tokens (`generate` with the KV cache), best of "
             f"{args.lm_repeats} interleaved repeats; loss on a held-out paragraph. Only the MLPs are sparsified "
             "(attention, norms, unembedding and the generation loop are not), so the end-to-end gain is far below "
             "the kernel's.", "",
             "| model | tokens/s | x dense | loss |", "|---|---:|---:|---:|", *lm_rows]
    text = "\n".join(lines) + "\n"
    write_section(args.out, "sparse_matvec", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
