"""Benchmark: a full residual-stream patching sweep, helpers vs TransformerLens vs a plain loop, in one run.

    python benchmarks/patching.py                 # -> its section of benchmarks/RESULTS.md
    python benchmarks/patching.py --threads 2

On a 4-block GPT (helpers.models.gpt, the tinyworld-gpt shape, random weights: cost does not depend
on them) and one clean/corrupted pair of 16 tokens, every (layer, position) of the residual stream
entering each block is patched (denoising) with
- ``helpers.intervene.patching.residual_sweep``: all variants in one batched forward; cells whose clean
  and corrupted activations are identical (positions before the corrupted token) are not run;
- TransformerLens ``patching.get_act_patch_resid_pre`` on a ``HookedTransformer`` with the same weights
  (``run_with_cache`` of the clean run included), one forward per cell;
- a plain loop: one hooked forward per cell on the helpers GPT.
The three results are asserted identical (1e-4) before timing. Also: attribution patching
(2 forwards + 1 backward) as a ratio to one forward. Median over interleaved repeats.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import torch

import helpers
from helpers.intervene import attribution, patching
from helpers.intervene.transformerlens import hooked_transformer
from helpers.models.gpt import GPT, GPTConfig
from results import machine_line, pin_threads, write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent


def plain_loop(model, clean, corrupt, metric):
    names = patching.resid_pre_names(model.cfg.n_layer)
    mods = dict(model.named_modules())
    with torch.no_grad(), helpers.capture(model, names) as acts:
        model(clean)
    out = torch.zeros(len(names), clean.shape[1])
    for l, name in enumerate(names):
        for p in range(clean.shape[1]):
            def hook(m, a, o, name=name, p=p):
                o = o.clone()
                o[:, p] = acts[name][:, p]
                return o
            h = mods[name].register_forward_hook(hook)
            try:
                with torch.no_grad():
                    out[l, p] = metric(model(corrupt)[None])[0]
            finally:
                h.remove()
    return out


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    pin_threads(args.threads)
    from transformer_lens import patching as tl_patching

    model = GPT(GPTConfig(vocab_size=160, n_ctx=64, n_layer=4, n_head=4, d_model=128, d_mlp=512)).eval()
    ht = hooked_transformer(model)
    metric = patching.logit_diff([5], [6])
    tl_metric = lambda logits: metric(logits[None])[0]  # noqa: E731
    clean = torch.randint(1, 160, (1, args.tokens))
    rows, checks = [], []
    for pos in (args.tokens * 5 // 8, 1):  # an IOI-like corruption late in the prompt, and one near the start
        corrupt = clean.clone()
        corrupt[0, pos] = (clean[0, pos] + 1) % 160

        def tl_sweep():
            with contextlib.redirect_stderr(io.StringIO()):
                _, cache = ht.run_with_cache(clean)
                return tl_patching.get_act_patch_resid_pre(ht, corrupt, cache, tl_metric)

        impls = {"helpers batched": lambda: patching.residual_sweep(model, clean, corrupt, metric).values,
                 "TransformerLens": tl_sweep, "plain loop": lambda: plain_loop(model, clean, corrupt, metric)}
        results = {k: f() for k, f in impls.items()}  # warm-up and the identity check
        for k, v in results.items():
            gap = (v.float() - results["helpers batched"]).abs().max().item()
            assert gap < 1e-4, (k, gap)
            checks.append(gap)
        times = {k: [] for k in impls}
        forward, atp = [], []
        names = list(impls)
        for r in range(args.repeats):
            for k in names[r % 3:] + names[:r % 3]:
                times[k].append(seconds(impls[k]))
            with torch.no_grad():
                forward.append(seconds(lambda: [model(corrupt) for _ in range(20)]) / 20)
            atp.append(seconds(lambda: attribution.attribution_sweep(model, clean, corrupt, metric)))
        med = {k: statistics.median(v) for k, v in times.items()}
        f_ms = statistics.median(forward) * 1e3
        for k in names:
            rows.append(f"| {pos} | {k} | {med[k] * 1e3:.1f} | {med['TransformerLens'] / med[k]:.2f} | "
                        f"{med[k] * 1e3 / f_ms:.1f} |")
            print(rows[-1], flush=True)
        rows.append(f"| {pos} | attribution patching (2 forwards + 1 backward) | "
                    f"{statistics.median(atp) * 1e3:.1f} | {med['TransformerLens'] / statistics.median(atp):.1f} | "
                    f"{statistics.median(atp) * 1e3 / f_ms:.1f} |")
        print(rows[-1], flush=True)

    lines = ["## Activation patching sweep", "",
             machine_line(f"python benchmarks/patching.py --threads {args.threads}"),
             f"Model: a 4-block GPT (d 128, 4 heads, d_mlp 512, vocab 160, random weights); one clean/corrupted pair of "
             f"{args.tokens} tokens differing at one position; denoising sweep of the residual stream entering each block "
             f"({4 * args.tokens} cells). The three sweeps agree to {max(checks):.1e} (asserted < 1e-4). helpers runs the "
             f"cells in one batched forward and skips cells whose clean and corrupted activations are identical "
             f"(positions before the corrupted token: 10 of 16 when it is at position 10, 1 when at position 1). "
             f"Median over {args.repeats} interleaved repeats; `x TL` = TransformerLens time / this time; "
             f"`x fwd` = this time / one bare `no_grad` forward of the pair (mean of 20) ({f_ms:.2f} ms).", "",
             "| corrupted position | implementation | ms | x TL (speed-up) | x fwd |", "|---:|---|---:|---:|---:|",
             *rows]
    text = "\n".join(lines) + "\n"
    write_section(args.out, "patching", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
