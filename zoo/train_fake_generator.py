"""Train ``wild-generator``, the small autoencoder whose outputs are the "generated" images of notebook 07.

    python zoo/train_fake_generator.py                          # -> data/zoo/wild-generator/ (about 3 min, 1 thread)
    python zoo/train_fake_generator.py --steps 5 --out /tmp/g   # smoke run (used by tests/test_fakes.py)

It learns to reproduce ``wild`` training images (mean squared error, Adam) through a 16x16x16 code. Training is
short on purpose: the decoder's stride-2 transposed convs still leave their checkerboard and the narrow code
blurs fine texture, the artefacts a detector can find. Writes ``model.safetensors`` and ``info.json`` (config,
PSNR on a fixed test set, train time, threads, the exact command, SHA-256 of the weights). Everything is drawn
from ``--seed``; on another CPU the weights may differ in the last bits.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers.data import wild
from helpers.models.generator import GeneratorConfig, WildGenerator, save_generator
from helpers.ops.batching import predict
from helpers.core.paths import ROOT

EVAL_N, EVAL_SEED = 1000, 12345  # the fixed test set on which the recorded PSNR is measured


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return 10 * math.log10(1.0 / F.mse_loss(a, b).item())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--n-train", type=int, default=8000, help="wild training images (drawn once)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-n", type=int, default=EVAL_N)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "zoo" / "wild-generator")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    data = wild(args.n_train, "train", seed=1000 + args.seed).images  # (N, 3, 64, 64)
    model = WildGenerator(GeneratorConfig())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    order = torch.randperm(args.steps * args.batch) % len(data)  # each image seen about equally often
    t0, losses = time.time(), []
    model.train()
    for step in range(args.steps):
        x = data[order[step * args.batch:(step + 1) * args.batch]]
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            print(f"  step {step + 1}/{args.steps}  mse {sum(losses[-100:]) / 100:.4f}  {time.time() - t0:.0f}s",
                  flush=True)
    train_time = time.time() - t0
    model.eval()
    test = wild(args.eval_n, "test", seed=EVAL_SEED).images
    info = {
        "name": "wild-generator",
        "psnr_test_db": round(psnr(predict(model, test), test), 2),
        "eval": {"split": "test", "n": args.eval_n, "seed": EVAL_SEED},
        "train_time_s": round(train_time, 1),
        "final_mse": round(sum(losses[-50:]) / len(losses[-50:]), 5),
        "train_config": {k: v for k, v in vars(args).items() if k != "out"},
        "input": "RGB float in [0, 1], (B, 3, 64, 64) (helpers.data.wild images); output the same",
        "torch": torch.__version__,
        "command": " ".join(["python zoo/train_fake_generator.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    info = save_generator(model, Path(args.out) / "model.safetensors", info)
    print(json.dumps({k: info[k] for k in ("psnr_test_db", "train_time_s", "params", "sha256")}), flush=True)


if __name__ == "__main__":
    main()
