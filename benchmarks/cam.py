"""Benchmark: the cost of class activation maps, helpers.cam against pytorch-grad-cam and Captum, in one run.

    python benchmarks/cam.py                 # or: make bench  -> its section of benchmarks/RESULTS.md
    python benchmarks/cam.py --threads 2

On one torchvision ResNet-18 (random weights: cost does not depend on them) and one batch of 16
images at 224 px, with one distinct target per image, times Grad-CAM, Grad-CAM++ and Eigen-CAM at
``layer4`` through helpers.cam, pytorch-grad-cam and Captum (which has Grad-CAM only). Score-CAM
runs one masked forward per channel (512 here), so it is timed on a smaller batch (``--score-images``).
Each figure is the median over interleaved repeats of (time of the method / time of the bare
``torch.no_grad()`` forward of the same batch in the same repeat).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from helpers.explain import cam
from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent
LAYER = "layer4"


def library_methods(model, x, targets) -> dict[str, dict[str, Callable]]:
    """method -> implementation -> a function computing the maps for the whole batch."""
    import pytorch_grad_cam as pgc
    from captum.attr import LayerGradCam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = dict(model.named_modules())[LAYER]
    lib_targets = [ClassifierOutputTarget(int(t)) for t in targets]

    def ours(cls, **kw):
        explainer = cls(model, LAYER, **kw)
        return lambda: explainer(x, targets)

    def library(cls):
        def run():  # hooks are attached at construction and stay until release: build and release per call
            with cls(model, [layer]) as lib:
                return lib(x, lib_targets)
        return run

    captum = LayerGradCam(model, layer)
    return {
        "Grad-CAM": {"helpers.cam": ours(cam.GradCAM), "pytorch-grad-cam": library(pgc.GradCAM),
                     "Captum LayerGradCam": lambda: captum.attribute(x, target=targets)},
        "Grad-CAM++": {"helpers.cam": ours(cam.GradCAMPlusPlus), "pytorch-grad-cam": library(pgc.GradCAMPlusPlus)},
        "Eigen-CAM": {"helpers.cam": ours(cam.EigenCAM), "pytorch-grad-cam": library(pgc.EigenCAM)},
    }


def score_cam_methods(model, x, targets, batch_size: int) -> dict[str, Callable]:
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = dict(model.named_modules())[LAYER]
    explainer = cam.ScoreCAM(model, LAYER, batch_size=batch_size)

    def library():
        with pgc.ScoreCAM(model, [layer]) as lib, contextlib.redirect_stderr(io.StringIO()):  # tqdm bars
            return lib(x, [ClassifierOutputTarget(int(t)) for t in targets])

    return {"helpers.cam": lambda: explainer(x, targets), "pytorch-grad-cam": library}


def seconds(fn: Callable, no_grad: bool = False) -> float:
    t0 = time.perf_counter()
    with torch.no_grad() if no_grad else contextlib.nullcontext():
        fn()
    return time.perf_counter() - t0


def interleaved(bare: Callable, table: dict[str, Callable], repeats: int) -> tuple[dict[str, list[float]], list[float]]:
    """Ratios to the bare forward of the same repeat, methods in rotating order; and the bare times."""
    names = list(table)
    ratios: dict[str, list[float]] = {n: [] for n in names}
    bare_s = []
    for r in range(repeats):
        base = seconds(bare, no_grad=True)
        bare_s.append(base)
        for name in names[r % len(names):] + names[:r % len(names)]:
            ratios[name].append(seconds(table[name]) / base)
    return ratios, bare_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--score-images", type=int, default=1, help="images for the Score-CAM timing")
    parser.add_argument("--score-repeats", type=int, default=2)
    parser.add_argument("--score-batch", type=int, default=16, help="helpers.cam ScoreCAM masked images per forward")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    pin_threads(args.threads)
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    targets = torch.arange(args.batch) * 7 % 1000  # distinct: a random net predicts one class for every image
    bare = lambda: model(x)  # noqa: E731

    rows = []
    for method, impls in library_methods(model, x, targets).items():
        for fn in impls.values():  # warm-up
            fn()
        ratios, bare_s = interleaved(bare, impls, args.repeats)
        for impl, values in ratios.items():
            q1, q3 = np.percentile(values, [25, 75])
            rows.append(f"| {method} | {impl} | {args.batch} | {statistics.median(values):.2f} | {q1:.2f}-{q3:.2f} |")
            print(rows[-1], flush=True)
    bare_ms = statistics.median(bare_s) * 1e3

    xs, ts = x[:args.score_images], targets[:args.score_images]
    impls = score_cam_methods(model, xs, ts, args.score_batch)
    ratios, score_bare = interleaved(lambda: model(xs), impls, args.score_repeats)
    for impl, values in ratios.items():
        rows.append(f"| Score-CAM (512 masked forwards per image) | {impl} | {args.score_images} | "
                    f"{statistics.median(values):.1f} | {min(values):.1f}-{max(values):.1f} |")
        print(rows[-1], flush=True)

    lines = ["## Class activation maps", "",
             machine_line(f"python benchmarks/cam.py --threads {args.threads}"),
             f"Model: torchvision ResNet-18 (random weights), target layer `{LAYER}`, {args.size} px, one distinct "
             f"target per image. Bare `no_grad` forward of {args.batch} images: {bare_ms:.0f} ms; of "
             f"{args.score_images}: {statistics.median(score_bare) * 1e3:.0f} ms. Ratio = time of the maps / bare "
             f"forward of the same batch in the same repeat; median over {args.repeats} interleaved repeats "
             f"({args.score_repeats} for Score-CAM); spread = interquartile range (Score-CAM: min-max). "
             f"Score-CAM: helpers.cam {args.score_batch} masked images per forward (pytorch-grad-cam 16), masks built "
             f"chunk by chunk, channels-last batches; pytorch-grad-cam builds all 512 masked copies first. "
             f"Captum has no Grad-CAM++, Eigen-CAM or Score-CAM.", "",
             "| method | implementation | images | ratio to bare forward | spread |", "|---|---|---:|---:|---:|",
             *rows]
    text = "\n".join(lines) + "\n"
    write_section(args.out, "cam", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
