"""Benchmark: sizes and errors of tinyworld-gpt with its MLPs compressed to low rank, in one table.

    python benchmarks/compression.py                 # -> its section of benchmarks/RESULTS.md
    python benchmarks/compression.py --threads 2

The eight MLP matrices of ``tinyworld-gpt`` (128 -> 512 ``fc`` and 512 -> 128 ``proj`` in 4 blocks) are
factorised at equal rank by weight SVD, ASVD (alpha 0.5) and whitened SVD (SVD-LLM's Cholesky; CARE's square
root gives the same matrices), and at equal total rank by CARE's adjusted ranks (whitened), calibrated on
64 tinyworld sequences and scored on 64 others: parameter bytes (float32), next-token loss, and the wall time
of a forward pass on 8 x 64 tokens as a ratio to the uncompressed model (median of interleaved pairs).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers import zoo
from helpers.compress import lowrank, ranks
from helpers.data import tinyworld
from helpers.ops import whitening
from helpers.quantize import int8 as q8
from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent


def loss(model, data) -> float:
    with torch.no_grad():
        logits = model(data[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), data[:, 1:].flatten()).item()


def time_ratio(model, dense, x, repeats: int) -> float:
    """Median over interleaved pairs of (time of model) / (time of dense) on the same input."""
    ratios = []
    with torch.no_grad():
        model(x), dense(x)                                       # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter(); model(x); t1 = time.perf_counter(); dense(x); t2 = time.perf_counter()
            ratios.append((t1 - t0) / (t2 - t1))
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    pin_threads(args.threads)

    gpt, _ = zoo.load("tinyworld-gpt", device="cpu")
    gpt.eval()
    cal = tinyworld.Corpus(tinyworld.CorpusConfig(n_ctx=64), seed=20_000).batch(64)
    test = tinyworld.Corpus(tinyworld.CorpusConfig(n_ctx=64), seed=30_000).batch(64)
    names = [f"blocks.{i}.mlp.{p}" for i in range(gpt.cfg.n_layer) for p in ("fc", "proj")]
    grams = whitening.input_grams(gpt, names, list(cal[:, :-1].split(16)))
    spectra = {n: lowrank.factorize(gpt.get_submodule(n).weight, 1, "cholesky", grams[n]).spectrum for n in names}
    depth = {n: int(n.split(".")[1]) for n in names}
    x_time = test[:8, :-1]
    dense_bytes, dense_loss = lowrank.parameter_bytes(gpt), loss(gpt, test)
    mlp_numbers = sum(gpt.get_submodule(n).weight.numel() for n in names)

    rows = [f"| uncompressed | - | {dense_bytes:,} | 1.00 | {dense_loss:.3f} | 1.00 |"]
    # Quantized rows (lesson 16), on the same held-out set: real int8 products, and weights stored in 8 or 4 bits
    # (simulated; bytes as packed codes plus one float32 scale and zero point per output channel).
    real = q8.quantize_linears(gpt)
    b = q8.model_bytes(real)
    rows.append(f"| int8 weights and activations, every Linear (torch._int_mm) | - | {b:,} | {b / dense_bytes:.2f} | "
                f"{loss(real, test):.3f} | {time_ratio(real, gpt, x_time, args.repeats):.2f} |")
    linears = [m for m in gpt.modules() if isinstance(m, torch.nn.Linear)]
    float_weight_bytes = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    for bits in (8, 4):
        sim = q8.fake_quantize_model(gpt, test[:1, :-1], weight_bits=bits, act_bits=None, layer_types=(torch.nn.Linear,))
        b = dense_bytes - float_weight_bytes + sum(q8.storage_bytes(m.weight.numel(), bits, len(m.weight)) for m in linears)
        rows.append(f"| {bits}-bit weights, every Linear (simulated; packed size) | - | {b:,} | {b / dense_bytes:.2f} | "
                    f"{loss(sim, test):.3f} | - |")
    for r in args.ranks:
        total = r * len(names)
        plans = {"weight SVD": ("svd", ranks.uniform_ranks(spectra, total)),
                 "ASVD": ("asvd", ranks.uniform_ranks(spectra, total)),
                 "whitened (SVD-LLM / CARE)": ("cholesky", ranks.uniform_ranks(spectra, total)),
                 "whitened, CARE ranks": ("cholesky", ranks.care_ranks(spectra, total, depth=depth))}
        for label, (method, allocation) in plans.items():
            fac = {n: lowrank.factorize(gpt.get_submodule(n).weight, allocation[n], method, grams[n]) for n in names}
            small = lowrank.replace_linears(gpt, fac)
            kept = sum(f.n_params() for f in fac.values()) / mlp_numbers
            b = lowrank.parameter_bytes(small)
            rows.append(f"| {label} | {r} ({kept:.0%} of MLP numbers) | {b:,} | {b / dense_bytes:.2f} | "
                        f"{loss(small, test):.3f} | {time_ratio(small, gpt, x_time, args.repeats):.2f} |")
        print(rows[-4:], flush=True)

    text = "\n".join([
        "## Compressed tinyworld-gpt: bytes and error of every method in one table (lessons 16 and 17)",
        "",
        machine_line(f"python benchmarks/compression.py --threads {args.threads}"),
        "",
        "Quantized rows: every Linear layer in int8 (real products) or its weights stored in 8 / 4 bits (simulated, size "
        "as packed codes plus a float32 scale and zero point per output channel). Low-rank rows "
        "replace all eight MLP matrices by two factors (r x (in + out) numbers each); bytes are all "
        "parameters and buffers of the model as stored (float32). Loss: mean next-token cross-entropy on 64 held-out "
        "sequences (calibration on 64 others). Time: forward of 8 x 64 tokens, compressed / uncompressed, median of "
        f"{args.repeats} interleaved pairs.",
        "",
        "| method | rank per matrix (average) | bytes | bytes / original | loss | time / original |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
    ])
    write_section(args.out, "compression", text)
    print(text)


if __name__ == "__main__":
    main()
