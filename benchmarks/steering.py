"""Benchmark: tokens per second of greedy generation on SmolLM2-135M with a steering vector vs without, in one run.

    python benchmarks/steering.py             # or: make bench  -> its section of benchmarks/RESULTS.md
    python benchmarks/steering.py --threads 2

A steering vector is fitted at ``model.layers.15`` (the middle of the 30 blocks) from two contrastive prompts
with ``helpers.intervene.steering.fit``; ``model.generate`` (greedy, KV cache) then runs with and without
``vector.apply(model, alpha)`` around it, in alternating order. Each figure is the median over repeats of
(seconds per generated token); the ratio is steered / plain, taken within each repeat. Goal: at most 1.05.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from helpers import zoo
from helpers.intervene import steering
from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent
LAYER = "model.layers.15"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--alpha", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    pin_threads(args.threads)

    model, info = zoo.load("smollm2-135m", device="cpu")
    model.eval()
    tok = info.tokenizer
    ids = lambda text: torch.tensor([tok(text).input_ids])  # noqa: E731
    vec = steering.fit(model, LAYER, ids("I love this. It makes me feel"), ids("I hate this. It makes me feel"))
    prompt = ids("Tell me about your day at the park.")
    gen = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)

    def plain():
        with torch.no_grad():
            return model.generate(prompt, **gen)

    def steered():
        with torch.no_grad(), vec.apply(model, args.alpha):
            return model.generate(prompt, **gen)

    same = torch.equal(plain(), steered())  # warm-up; the vector must change the text, or nothing was timed
    if same:
        raise SystemExit("The steered generation equals the plain one: the vector was not applied.")
    per_token: dict[str, list[float]] = {"plain": [], "steered": []}
    ratios = []
    for r in range(args.repeats):
        times = {}
        for name, fn in ((("plain", plain), ("steered", steered)) if r % 2 == 0 else
                         (("steered", steered), ("plain", plain))):
            t0 = time.perf_counter()
            fn()
            times[name] = (time.perf_counter() - t0) / args.new_tokens
            per_token[name].append(times[name])
        ratios.append(times["steered"] / times["plain"])
    q1, q3 = np.percentile(ratios, [25, 75])
    med = {k: statistics.median(v) for k, v in per_token.items()}
    rows = [f"| generate, no steering | {1 / med['plain']:.1f} | 1.00 | |",
            f"| generate, steering vector at `{LAYER}` | {1 / med['steered']:.1f} | {statistics.median(ratios):.3f} | "
            f"{q1:.3f}-{q3:.3f} |"]
    for row in rows:
        print(row, flush=True)
    lines = ["## Steered generation", "",
             machine_line(f"python benchmarks/steering.py --threads {args.threads}"),
             f"SmolLM2-135M-Instruct, greedy `model.generate` of {args.new_tokens} new tokens (KV cache) after a "
             f"{prompt.shape[1]}-token prompt; steering vector from `helpers.intervene.steering.fit` (difference in "
             f"means of two prompts) added with alpha {args.alpha} through `vector.apply`. Ratio = seconds per token "
             f"steered / plain within one repeat; median over {args.repeats} repeats in alternating order; spread = "
             f"interquartile range. Goal: ratio at most 1.05.", "",
             "| run | tokens/s | ratio to plain | spread |", "|---|---:|---:|---:|", *rows]
    text = "\n".join(lines) + "\n"
    write_section(args.out, "steering", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
