"""Benchmark: top-k SAE training, helpers.decompose against SAELens's training SAE, in one run.

    python benchmarks/sae.py                 # -> its section of benchmarks/RESULTS.md
    python benchmarks/sae.py --steps 12 --threads 1

Both trainers see the same in-memory activations: synthetic sparse data of width d_in = 576 (SmolLM2's
residual width), each token a nonnegative combination of ~20 of 8192 random unit directions plus noise, so
that an SAE has real structure to find. Both train an SAE of 8 x 576 latents, top-k 32, batch 4096, Adam
(lr 1e-3) for the same steps on the same batches. SAELens: ``TopKTrainingSAE.training_forward_pass`` then
``loss.backward()`` and ``Adam.step()`` (its trainer's inner step). helpers: ``topk_gradients`` (hand-written
gradients that touch only the k active latents) and the same Adam. The limit is the encoder's forward matmul
alone at the same shape, timed in the same run. FVU is measured on held-out tokens after the last step.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from helpers.decompose.quality import fvu
from helpers.decompose.sae import SparseAutoencoder, topk_gradients
from results import write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent
D_IN, EXPANSION, K, BATCH = 576, 8, 32, 4096


def synthetic(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(8192, D_IN, generator=torch.Generator().manual_seed(1234))
    dirs /= dirs.norm(dim=1, keepdim=True)
    idx = torch.randint(0, 8192, (n, 20), generator=g)
    mags = torch.rand(n, 20, generator=g) * 2
    x = torch.nn.functional.embedding_bag(idx, dirs, per_sample_weights=mags, mode="sum")
    return x + 0.05 * torch.randn(n, D_IN, generator=g) + 0.5


def saelens_trainer(data: torch.Tensor):
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D_IN, d_sae=EXPANSION * D_IN, k=K))
    with torch.no_grad():
        sae.b_dec.copy_(data.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    dead = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)

    def step(x, i):
        opt.zero_grad(set_to_none=True)
        out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=dead,
                                                       n_training_steps=i, is_logging_step=False))
        out.loss.backward()
        opt.step()

    return step, lambda x: sae(x)


def helpers_trainer(data: torch.Tensor):
    sae = SparseAutoencoder(D_IN, EXPANSION * D_IN, k=K)
    with torch.no_grad():
        sae.b_dec.copy_(data.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    dead = torch.zeros(sae.d_sae, dtype=torch.bool)

    def step(x, i):
        grads, _, _ = topk_gradients(sae, x, dead)
        for name, p in sae.named_parameters():
            p.grad = grads[name]
        opt.step()
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True)

    return step, lambda x: sae(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data, held_out = synthetic(BATCH * args.steps, 0), synthetic(4096, 1)
    batches = data.split(BATCH)
    trainers = {"helpers.decompose": helpers_trainer(data), "SAELens TopKTrainingSAE": saelens_trainer(data)}
    w_enc, b_enc = torch.randn(D_IN, EXPANSION * D_IN) * 0.05, torch.zeros(EXPANSION * D_IN)
    times: dict[str, list[float]] = {name: [] for name in [*trainers, "limit"]}
    for i, x in enumerate(batches):  # interleaved: each step of each trainer, then the limit, on the same batch
        for name, (step, _) in trainers.items():
            t0 = time.perf_counter()
            step(x, i)
            times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        torch.addmm(b_enc, x - x.mean(0), w_enc)
        times["limit"].append(time.perf_counter() - t0)
    sec = {name: statistics.median(ts[1:]) for name, ts in times.items()}  # first step warms up
    with torch.no_grad():
        fvus = {name: fvu(held_out, fwd(held_out)) for name, (_, fwd) in trainers.items()}
    ours, lib = trainers
    rows = [f"| {name} | {BATCH / sec[name]:,.0f} | {sec[lib] / sec[name]:.2f}x | {sec['limit'] / sec[name]:.0%} "
            f"| {fvus[name]:.4f} |" for name in trainers]
    text = "\n".join([
        "## SAE training (top-k, d_in 576, 8x expansion, k 32, batch 4096)",
        "",
        f"`python benchmarks/sae.py --steps {args.steps} --threads {args.threads}`; torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {args.threads} thread(s); synthetic sparse activations "
        f"(20 of 8192 directions per token); median step time over {args.steps - 1} interleaved steps; FVU on 4096 "
        f"held-out tokens after {args.steps * BATCH:,} training tokens (same batches, same Adam).",
        "",
        "| trainer | tokens/s | vs SAELens | share of the encoder-matmul limit | FVU |",
        "|---|---:|---:|---:|---:|",
        *rows,
        f"| encoder forward matmul alone (the limit) | {BATCH / sec['limit']:,.0f} | "
        f"{sec[lib] / sec['limit']:.2f}x | 100% | |",
    ])
    print(text)
    if not args.no_write:
        write_section(ROOT / "RESULTS.md", "sae", text)


if __name__ == "__main__":
    main()
