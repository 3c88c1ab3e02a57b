"""Benchmark: the cost of capturing activations, against the field's libraries, in one run.

    python benchmarks/capture.py            # or: make bench  -> its section of benchmarks/RESULTS.md

On one randomly initialised 4-layer GPT-2-shaped model and one batch of tokens, times the bare
forward and captures of one layer and of all blocks + MLPs with helpers.capture, plain forward
hooks, TransformerLens run_with_cache (on a HookedTransformer of the same shape, as a ratio to
its own bare forward), nnsight and torchlens. Each repeat runs every method once, in rotating
order; a method's figure is the median over repeats of (its time / the bare forward's time in
the same repeat). Also times helpers.extract against the disk's sequential write speed.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import helpers
from results import write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent
N_LAYERS, D_MODEL, N_HEADS, VOCAB = 4, 256, 4, 1000


def hf_model():
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=N_HEADS, vocab_size=VOCAB, n_positions=256,
                     bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # let transformers install its own lazy hooks before timing
        model(torch.zeros(1, 2, dtype=torch.long), output_hidden_states=True)
    return model


def tl_model():
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_MODEL // N_HEADS,
                                  d_mlp=4 * D_MODEL, d_vocab=VOCAB, n_ctx=256, act_fn="gelu_new")
    return HookedTransformer(cfg).eval()


def plain_hooks(model, names: list[str], tokens) -> dict:
    """The baseline anyone would write: register_forward_hook + detach, removed in finally."""
    store, handles = {}, []
    modules = dict(model.named_modules())
    for name in names:
        def hook(mod, args, out, name=name):
            store[name] = (out[0] if isinstance(out, tuple) else out).detach()
        handles.append(modules[name].register_forward_hook(hook))
    try:
        model(tokens)
    finally:
        for h in handles:
            h.remove()
    return store


def methods(tokens) -> tuple[dict[str, tuple[str, Callable, str]], dict[str, Callable]]:
    """name -> (group, fn, baseline name); and the bare forwards."""
    hf = hf_model()
    one = ["transformer.h.1"]
    every = [f"transformer.h.{i}{s}" for i in range(N_LAYERS) for s in ("", ".mlp")]
    out: dict[str, tuple[str, Callable, str]] = {}
    bare = {"hf": lambda: hf(tokens)}

    def helpers_capture(names):
        def run():
            with helpers.capture(hf, names) as acts:
                hf(tokens)
            return acts
        return run

    out["helpers.capture | one layer"] = ("one", helpers_capture(one), "hf")
    out["helpers.capture | all blocks + MLPs"] = ("all", helpers_capture(every), "hf")
    out["plain forward hooks | one layer"] = ("one", lambda: plain_hooks(hf, one, tokens), "hf")
    out["plain forward hooks | all blocks + MLPs"] = ("all", lambda: plain_hooks(hf, every, tokens), "hf")

    try:
        tl = tl_model()
        bare["tl"] = lambda: tl(tokens)
        tl_one = {"blocks.1.hook_resid_post"}
        tl_all = {f"blocks.{i}.{h}" for i in range(N_LAYERS) for h in ("hook_resid_post", "hook_mlp_out")}
        out["TransformerLens run_with_cache | one layer"] = (
            "one", lambda: tl.run_with_cache(tokens, names_filter=lambda n: n in tl_one), "tl")
        out["TransformerLens run_with_cache | all blocks + MLPs"] = (
            "all", lambda: tl.run_with_cache(tokens, names_filter=lambda n: n in tl_all), "tl")
    except Exception as err:  # noqa: BLE001 - a missing optional library is reported, not fatal
        print(f"TransformerLens skipped: {err}", file=sys.stderr)

    try:
        from nnsight import NNsight
        nns = NNsight(hf)

        def nnsight_run(layers: list[int], mlps: bool):
            def run():
                saved = []
                with nns.trace(tokens):
                    for i in layers:  # nnsight wants values requested in execution order
                        if mlps:
                            saved.append(nns.transformer.h[i].mlp.output.save())
                        saved.append(nns.transformer.h[i].output.save())
                return saved
            return run
        out["nnsight .save() | one layer"] = ("one", nnsight_run([1], False), "hf")
        out["nnsight .save() | all blocks + MLPs"] = ("all", nnsight_run(list(range(N_LAYERS)), True), "hf")
    except Exception as err:  # noqa: BLE001
        print(f"nnsight skipped: {err}", file=sys.stderr)

    try:
        import torchlens
        trace = getattr(torchlens, "trace", None) or torchlens.log_forward_pass
        out["torchlens (all layers, its only mode)"] = ("all", lambda: trace(hf, tokens), "hf")
    except Exception as err:  # noqa: BLE001
        print(f"torchlens skipped: {err}", file=sys.stderr)
    return out, bare


def time_it(fn: Callable) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - t0


def disk_speed(folder: str, megabytes: int = 256) -> float:
    """Sequential write speed in MB/s (page cache included, as for extract; no fsync)."""
    block = np.random.default_rng(0).random(megabytes * 2**20 // 8)
    path = os.path.join(folder, "seq.bin")
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        f.write(block.tobytes())
    seconds = time.perf_counter() - t0
    os.remove(path)
    return megabytes / seconds


def extract_speed(folder: str, batches: int = 24, repeats: int = 3) -> tuple[float, float, float]:
    """(MB written, extract seconds, bare-forward seconds), medians of alternating repeats."""
    model = hf_model()
    tokens = torch.randint(0, VOCAB, (batches * 8, 128))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tokens), batch_size=8)
    forward_s, extract_s = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            for (x,) in loader:
                model(x)
        forward_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store = helpers.extract(model, loader, "transformer.h.*", out=os.path.join(folder, f"acts{r}"),
                                resume=False, progress=False)
        extract_s.append(time.perf_counter() - t0)
    megabytes = sum(store.numpy(n).nbytes for n in store.layers) / 2**20
    return megabytes, statistics.median(extract_s), statistics.median(forward_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"))
    args = parser.parse_args()
    helpers.setup(device="cpu", seed=0)
    tokens = torch.randint(0, VOCAB, (args.batch, args.tokens))
    table, bare = methods(tokens)
    for fn in list(bare.values()) + [m[1] for m in table.values()]:  # warm-up
        time_it(fn)
    ratios: dict[str, list[float]] = {name: [] for name in table}
    bare_times: dict[str, list[float]] = {k: [] for k in bare}
    names = list(table)
    slow = {n for n in names if n.startswith("torchlens")}
    for r in range(args.repeats):
        base = {k: time_it(fn) for k, fn in bare.items()}
        for k, v in base.items():
            bare_times[k].append(v)
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if name in slow and r >= 3:  # torchlens costs seconds a call: three repeats suffice
                continue
            group, fn, ref = table[name]
            ratios[name].append(time_it(fn) / base[ref])
    with tempfile.TemporaryDirectory(dir=ROOT.parent / "build" if (ROOT.parent / "build").exists() else None) as tmp:
        mb_s = disk_speed(tmp)
        megabytes, extract_s, forward_s = extract_speed(tmp)

    lines = ["## Activation capture and extraction", "",
             f"`python benchmarks/capture.py` on {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} thread(s); {time.strftime('%Y-%m-%d')}; 1-minute load average at the end "
             f"{os.getloadavg()[0]:.1f} (above 1 means other processes shared the cores, and timings are noisier).",
             f"Model: GPT-2-shaped, {N_LAYERS} layers, d {D_MODEL}, random weights; batch {args.batch} x {args.tokens} tokens. "
             f"Bare forward: HF {statistics.median(bare_times['hf']) * 1e3:.1f} ms"
             + (f", TransformerLens {statistics.median(bare_times['tl']) * 1e3:.1f} ms" if "tl" in bare_times else "")
             + f". Median over {args.repeats} interleaved repeats of time / bare forward of the same repeat "
             f"(TransformerLens against its own model's forward); spread = interquartile range.", "",
             "### Capture", "", "| method | what | ratio to bare forward | spread |", "|---|---|---:|---:|"]
    for name in names:
        method, what = name.split(" | ") if " | " in name else (name, "all layers")
        values = sorted(ratios[name])
        q1, q3 = np.percentile(values, [25, 75])
        lines.append(f"| {method} | {what} | {statistics.median(values):.3f} | {q1:.3f}-{q3:.3f} |")
    lines += ["", "### Extract to disk", "",
              f"`helpers.extract` of all {N_LAYERS} blocks, {megabytes:.0f} MB of activations: {extract_s:.2f} s; "
              f"the bare forwards of the same batches: {forward_s:.2f} s (medians of 3 alternating runs; extract "
              f"stops after the last block, so it skips the unembedding). End to end that is "
              f"{megabytes / extract_s:.0f} MB/s; the writing itself adds {max(extract_s - forward_s, 0):.2f} s, "
              f"against {megabytes / mb_s:.2f} s for the same bytes at the disk's sequential write speed of "
              f"{mb_s:.0f} MB/s measured in the same run (both through the page cache)."]
    text = "\n".join(lines) + "\n"
    write_section(args.out, "capture", text)  # the other scripts' sections stay as they are
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
