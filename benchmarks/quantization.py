"""Benchmark: real int8 vs float32 matrix products on this CPU, and the sizes and errors of quantized zoo models.

    python benchmarks/quantization.py                 # -> its section of benchmarks/RESULTS.md
    python benchmarks/quantization.py --threads 2

1. Products ``x @ W.T`` at several shapes, timed in one run with interleaved repeats (median):
   float32 ``torch.mm``; int8 ``torch._int_mm`` on codes prepared beforehand (the kernel alone); the full int8
   path of ``helpers.quantize.int8.int8_matmul`` (per-row quantization of x, the int8 product, rescaling); and
   ``torch.ao.quantization.quantize_dynamic`` on an ``nn.Linear`` of the same shape. The weight bytes each one
   reads are beside them. Every int8 result is checked against the float product (SQNR) before timing.
2. One table of model sizes and errors: tinyworld-gpt (held-out loss) and wild-cnn (test accuracy) in float32,
   with int8 Linear layers (real, ``Int8Linear``) or simulated W8A8 / W4A4 (weights per channel, activations per
   tensor; the bytes are those of packed codes plus a float32 scale and zero point per channel).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from helpers import zoo
from helpers.data import tinyworld, wild
from helpers.ops.quantization import sqnr_db
from helpers.quantize import int8
from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent
SHAPES = [(1, 4096, 4096), (16, 4096, 4096), (256, 1024, 1024), (1024, 128, 512)]   # (tokens M, in K, out N)
warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")


def seconds(fn, inner: int) -> tuple[float, float]:
    """Wall-clock and CPU (process) seconds per call. On a shared machine the CPU time is the steadier one:
    it leaves out the time this process waited for a core."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner, (time.process_time() - c0) / inner


def matmul_rows(repeats: int) -> list[str]:
    rows = []
    for m, k, n in SHAPES:
        g = torch.Generator().manual_seed(0)
        x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g) / k ** 0.5
        qw, sw = int8.int8_weight(w)
        qx, _ = int8.int8_rows(x)
        wt = w.t().contiguous()
        lin = nn.Linear(k, n, bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        dyn = torch.ao.quantization.quantize_dynamic(nn.Sequential(lin), {nn.Linear}, dtype=torch.qint8)
        exact = x @ wt
        checks = {"int8_matmul": sqnr_db(exact, int8.int8_matmul(x, qw, sw)),
                  "ao dynamic": sqnr_db(exact, dyn(x).detach())}
        assert min(checks.values()) > 25, checks
        impls = {"float32 mm": lambda: x @ wt, "int8 _int_mm (kernel)": lambda: torch._int_mm(qx, qw.t()),
                 "int8 helpers (quantize x + kernel + rescale)": lambda: int8.int8_matmul(x, qw, sw),
                 "torch.ao dynamic Linear": lambda: dyn(x)}
        inner = max(1, int(2e8 // (m * k * n)))
        times = {name: [] for name in impls}
        cpu = {name: [] for name in impls}
        with torch.no_grad():
            for f in impls.values():
                f()
            names = list(impls)
            for r in range(repeats):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    wall, proc = seconds(impls[name], inner)
                    times[name].append(wall)
                    cpu[name].append(proc)
        med = {name: statistics.median(v) for name, v in times.items()}
        med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
        w_bytes = {"float32 mm": w.numel() * 4, "torch.ao dynamic Linear": w.numel() + 8}
        for name in names:
            wb = w_bytes.get(name, qw.numel() + 4 * n)
            rows.append(f"| {m}x{k}x{n} | {name} | {med_cpu[name] * 1e3:.3f} | "
                        f"{med_cpu['float32 mm'] / med_cpu[name]:.2f} | {med['float32 mm'] / med[name]:.2f} | "
                        f"{wb / 1e6:.2f} |")
            print(rows[-1], flush=True)
    return rows


def gpt_rows() -> list[str]:
    gpt, _ = zoo.load("tinyworld-gpt", device="cpu")
    held = tinyworld.Corpus(tinyworld.CorpusConfig(n_ctx=64), seed=10_000).batch(32)
    calib = tinyworld.Corpus(tinyworld.CorpusConfig(n_ctx=64), seed=20_000).batch(16)[:, :-1]

    def loss(model) -> float:
        with torch.no_grad():
            return F.cross_entropy(model(held[:, :-1]).flatten(0, 1), held[:, 1:].flatten()).item()

    base, base_bytes = loss(gpt), int8.model_bytes(gpt)
    rows = [f"| tinyworld-gpt | float32 | {base_bytes:,} | 1.00 | loss {base:.4f} |"]
    real = int8.quantize_linears(gpt)
    rows.append(f"| tinyworld-gpt | int8 Linear layers (real, `Int8Linear`; embeddings, LayerNorms float) | "
                f"{int8.model_bytes(real):,} | {int8.model_bytes(real) / base_bytes:.2f} | "
                f"loss +{loss(real) - base:.4f} |")
    for bits in (8, 4):
        sim = int8.fake_quantize_model(gpt, calib, bits, bits, layer_types=(nn.Linear,))
        b = simulated_bytes(gpt, bits, (nn.Linear,))
        rows.append(f"| tinyworld-gpt | W{bits}A{bits} simulated (Linear weights packed, rest float) | {b:,} | "
                    f"{b / base_bytes:.2f} | loss +{loss(sim) - base:.4f} |")
    return rows


def cnn_rows() -> list[str]:
    cnn, _ = zoo.load("wild-cnn", device="cpu")
    test, calib = wild(1000, "test", seed=0), wild(128, "train", seed=0).images

    def acc(model) -> float:
        with torch.no_grad():
            return (model(test.images).argmax(1) == test.targets).float().mean().item()

    base, base_bytes = acc(cnn), int8.model_bytes(cnn)
    rows = [f"| wild-cnn | float32 | {base_bytes:,} | 1.00 | accuracy {base:.3f} |"]
    for bits in (8, 4):
        sim = int8.fake_quantize_model(cnn, calib, bits, bits)
        b = simulated_bytes(cnn, bits, (nn.Conv2d, nn.Linear))
        rows.append(f"| wild-cnn | W{bits}A{bits} simulated (conv/linear weights packed, BatchNorm float) | {b:,} | "
                    f"{b / base_bytes:.2f} | accuracy {acc(sim) - base:+.3f} |")
    return rows


def simulated_bytes(model: nn.Module, bits: int, types: tuple) -> int:
    """Bytes if the weights of ``types`` layers were stored as packed b-bit codes with a scale and zero point per
    output channel, everything else as it is."""
    quantized = {id(m.weight) for m in model.modules() if isinstance(m, types)}
    total = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())
                if id(t) not in quantized)
    for m in model.modules():
        if isinstance(m, types):
            total += int8.storage_bytes(m.weight.numel(), bits, n_scales=m.weight.shape[0])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    pin_threads(args.threads)
    mm = matmul_rows(args.repeats)
    sizes = gpt_rows() + cnn_rows()
    for r in sizes:
        print(r, flush=True)
    lines = ["## Quantization: int8 products and quantized model sizes", "",
             machine_line(f"python benchmarks/quantization.py --threads {args.threads}"),
             "", "Products `x @ W.T` (M tokens, K in, N out), median of interleaved repeats of the process CPU time per "
             "call (steadier than wall time when other processes share the cores; both ratios are given); every int8 result was "
             "checked against the float product first (SQNR > 25 dB). `torch._int_mm` and `torch.ao` dynamic "
             "quantization both run on this CPU (torch.ao warns that it is deprecated); there is no eager int8 "
             "convolution without torch.ao's static workflow, so the CNN row below is simulated.", "",
             "| M x K x N | implementation | CPU ms per call | speed-up vs float32 (CPU time) | (wall time) | weight MB read |",
             "|---|---|---:|---:|---:|---:|",
             *mm, "", "Quantized zoo models: bytes of parameters and buffers, and the error against float "
             "(tinyworld-gpt: held-out loss on 32 sequences of 64 tokens; wild-cnn: accuracy on 1000 test images).", "",
             "| model | format | bytes | ratio | error |", "|---|---|---:|---:|---|", *sizes]
    write_section(args.out, "quantization", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
