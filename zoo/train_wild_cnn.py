"""Train the zoo's ``wild-cnn`` and ``wild-cnn-spurious`` on generated ``wild`` images (CPU, one thread).

    python zoo/train_wild_cnn.py                          # both models -> data/zoo/ (a few minutes each)
    python zoo/train_wild_cnn.py --only wild-cnn          # one of them
    python zoo/train_wild_cnn.py --steps 5 --out /tmp/z   # smoke run (used by tests/test_wild_cnn.py)

Each run writes ``<name>.safetensors`` and ``<name>.json`` (accuracies, train time, parameter count, SHA-256 of the
weights, seed, configs). Everything is drawn from the seed: the same command gives the same weights on one machine
(BLAS kernels may differ in the last bits across CPUs, so other machines match to within a hair of accuracy).

The spurious model sees a corner square whose colour agrees with the label on every training image; it is evaluated
with the square agreeing ("cue_consistent"), absent ("cue_free") and random ("cue_random").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

from helpers.data import HELD_OUT, wild
from helpers.models.cnn import WildCNN, WildCNNConfig, save_wild_cnn

EVAL_N, EVAL_SEED = 2000, 12345  # the fixed test sets on which the recorded accuracies are measured


@dataclass
class TrainConfig:
    """One training run: the data it sees, the optimiser and the model's architecture."""

    seed: int = 0
    steps: int = 1100
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 5e-4
    chunk: int = 11200  # fresh wild images generated per chunk; each chunk is seen once
    spurious: bool = False
    cue_agreement: float = 1.0
    model: WildCNNConfig = field(default_factory=WildCNNConfig)


RUNS = {
    "wild-cnn": TrainConfig(seed=0),
    "wild-cnn-spurious": TrainConfig(seed=1, spurious=True, cue_agreement=1.0),
}


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on ``images`` (N, 3, 64, 64)."""
    model.eval()
    preds = torch.cat([model(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return (preds == targets).float().mean().item()


def evaluate(model: torch.nn.Module, spurious: bool, n: int = EVAL_N, seed: int = EVAL_SEED) -> dict[str, float]:
    """Accuracies on the fixed test sets: ``test`` (no cue) and, for a spurious model, the three cue conditions."""
    clean = wild(n, "test", seed)
    acc = {"test": accuracy(model, clean.images, clean.targets)}
    if spurious:
        agree = wild(n, "test", seed, spurious=True, cue_agreement=1.0)
        rand = wild(n, "test", seed, spurious=True, cue_agreement=0.1)
        acc.update(cue_consistent=accuracy(model, agree.images, agree.targets), cue_free=acc["test"],
                   cue_random=accuracy(model, rand.images, rand.targets))
    return acc


def train(cfg: TrainConfig, log_every: int = 100) -> tuple[WildCNN, dict]:
    """Train a ``WildCNN`` from ``cfg``; returns the model (eval mode) and a log dict."""
    torch.manual_seed(cfg.seed)
    model = WildCNN(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 2), pct_start=0.15)
    per_chunk = cfg.chunk // cfg.batch
    t0, gen_time, data, losses = time.time(), 0.0, None, []
    model.train()
    for step in range(cfg.steps):
        if step % per_chunk == 0:  # a fresh chunk of images; seeds 1000*seed + k never meet the test seed
            t = time.time()
            data = wild(cfg.chunk, "train", 1000 * cfg.seed + step // per_chunk,
                        spurious=cfg.spurious, cue_agreement=cfg.cue_agreement)
            gen_time += time.time() - t
        i = (step % per_chunk) * cfg.batch
        x, y = data.images[i:i + cfg.batch], data.targets[i:i + cfg.batch]  # (B, 3, 64, 64), (B,)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = sum(losses[-log_every:]) / log_every
            print(f"  step {step + 1}/{cfg.steps}  loss {recent:.3f}  {time.time() - t0:.0f}s", flush=True)
    log = {"train_time_s": round(time.time() - t0, 1), "data_time_s": round(gen_time, 1),
           "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4), "images_seen": cfg.steps * cfg.batch}
    return model.eval(), log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(RUNS), action="append", help="train only these models")
    parser.add_argument("--steps", type=int, help="override the number of steps (quick runs)")
    parser.add_argument("--lr", type=float, help="override the peak learning rate")
    parser.add_argument("--cue-agreement", type=float, help="override the spurious run's cue agreement")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "zoo", help="output folder")
    parser.add_argument("--eval-n", type=int, default=EVAL_N, help="test-set size for the recorded accuracies")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    for name in args.only or list(RUNS):
        cfg = RUNS[name] if args.steps is None else replace(RUNS[name], steps=args.steps)
        if args.steps is not None:
            cfg = replace(cfg, chunk=min(cfg.chunk, args.steps * cfg.batch))
        if args.lr is not None:
            cfg = replace(cfg, lr=args.lr)
        if args.cue_agreement is not None and cfg.spurious:
            cfg = replace(cfg, cue_agreement=args.cue_agreement)
        print(f"{name}: {cfg.steps} steps of {cfg.batch}", flush=True)
        model, log = train(cfg)
        acc = evaluate(model, cfg.spurious, n=args.eval_n)
        info = {
            "name": name,
            "accuracy": {k: round(v, 4) for k, v in acc.items()},
            "eval": {"split": "test", "n": args.eval_n, "seed": EVAL_SEED},
            **log,
            "seed": cfg.seed,
            "train_config": {k: v for k, v in asdict(cfg).items() if k != "model"},
            "classes": list(wild(1, "test").classes),
            "held_out": list(HELD_OUT),
            "input": "RGB float in [0, 1], (B, 3, 64, 64), no normalisation (helpers.data.wild images)",
            "torch": torch.__version__,
            "threads": args.threads,
            "command": " ".join(["python zoo/train_wild_cnn.py", *(argv if argv is not None else sys.argv[1:])]),
        }
        info = save_wild_cnn(model, args.out / f"{name}.safetensors", info)
        print(json.dumps({k: info[k] for k in ("accuracy", "train_time_s", "params", "sha256")}), flush=True)


if __name__ == "__main__":
    main()
