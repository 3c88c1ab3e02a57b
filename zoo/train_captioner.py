"""Train the zoo's ``wild-captioner`` on captioned ``wild`` images (CPU, one thread, a few minutes).

    python zoo/train_captioner.py                          # -> data/zoo/wild-captioner.{safetensors,json}
    python zoo/train_captioner.py --steps 3 --out /tmp/z   # smoke run (used by tests/test_captioner.py)

The CNN is the committed ``wild-cnn`` (its weights are copied in and frozen); only the visual projection and the
decoder learn. The sidecar records the held-out caption accuracy on a fixed ``test`` set (exact caption, and word
by word), measured with greedy decoding. The weights are written only if they pass ``--gate`` (word accuracy).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

from helpers.core.paths import ZOO_DIR
from helpers.data.captions import FUNCTION_WORDS, PAD, SPECIALS, VOCAB, captioned_wild, shuffled
from helpers.models.captioner import Captioner, CaptionerConfig, save_captioner
from helpers.models.cnn import load_wild_cnn

EVAL_N, EVAL_SEED = 1000, 12345
CONTENT = len(SPECIALS) + len(FUNCTION_WORDS)  # tints, classes and photos come after these in VOCAB  # the fixed held-out set of the recorded accuracy


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    chunk: int = 4000  # fresh captioned images per chunk; each chunk is seen (steps*batch/chunk) times at most
    n_chunks: int = 3
    two_fraction: float = 0.5
    mil: float = 0.0  # weight of the visual-position word loss (0: visual positions are never trained on words)


@torch.no_grad()
def pooled_maps(model: Captioner, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """The frozen CNN's pooled last-block maps (N, C, g, g)."""
    model.eval()
    return torch.cat([model.visual_pool(model.cnn.blocks(images[i:i + batch])) for i in range(0, len(images), batch)])


@torch.no_grad()
def caption_accuracy(model: Captioner, images: torch.Tensor, tokens: torch.Tensor, batch: int = 500
                     ) -> dict[str, float]:
    """Greedy captions against the true ones: ``exact`` (the whole caption) and ``word`` (position by position,
    over the true caption's words and its end)."""
    model.eval()
    gen = torch.cat([model.generate(images[i:i + batch]) for i in range(0, len(images), batch)])
    L = tokens.shape[1]
    gen = F.pad(gen, (0, L - gen.shape[1]), value=PAD)[:, :L]
    real = tokens != PAD
    real[:, 0] = False  # <bos> is given, not generated
    # after <eos> the generator repeats <eos>; the true row has padding there, so compare only real positions
    same = (gen == tokens) | ~real
    return {"exact": same.all(1).float().mean().item(),
            "word": ((gen == tokens) & real).sum().item() / real.sum().item()}


def evaluate(model: Captioner, n: int = EVAL_N, seed: int = EVAL_SEED) -> dict[str, float]:
    ds = captioned_wild(n, "test", seed)
    acc = caption_accuracy(model, ds.images, ds.tokens)
    for k in (1, 2):
        sel = ds.n_objects == k
        acc[f"exact_{k}obj"] = caption_accuracy(model, ds.images[sel], ds.tokens[sel])["exact"]
    return acc


def train(cfg: TrainConfig, log_every: int = 100) -> tuple[Captioner, dict]:
    torch.manual_seed(cfg.seed)
    cnn, _ = load_wild_cnn(ZOO_DIR / "wild-cnn.safetensors")
    model = Captioner(CaptionerConfig(vocab=VOCAB, cnn=asdict(cnn.config)))
    model.cnn.load_state_dict(cnn.state_dict())
    model.cnn.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 2), pct_start=0.1)
    t0, gen_time, losses = time.time(), 0.0, []
    t = time.time()
    chunks = []
    for c in range(cfg.n_chunks):  # features of the frozen CNN computed once per image
        ds = shuffled(captioned_wild(cfg.chunk, "train", 1000 * cfg.seed + c, cfg.two_fraction), c)
        chunks.append((pooled_maps(model, ds.images), ds.tokens))
    gen_time = time.time() - t
    maps = torch.cat([m for m, _ in chunks])
    tokens = torch.cat([k for _, k in chunks])
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(maps), generator=g)
    for step in range(cfg.steps):
        model.train()
        start = (step * cfg.batch) % len(maps)
        if start + cfg.batch > len(maps):
            order = torch.randperm(len(maps), generator=g)
            start = 0
        idx = order[start:start + cfg.batch]
        tok = tokens[idx]
        out = model.decode(model.project(maps[idx]), tok[:, :-1])
        logits = out[:, model.cfg.n_visual:]  # (B, T-1, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tok[:, 1:].reshape(-1), ignore_index=PAD)
        if cfg.mil:  # multiple-instance: some visual position should say each content word of the caption
            present = torch.zeros(len(tok), logits.shape[-1]).scatter_(1, tok, 1.0)
            present[:, :CONTENT] = 0
            best = out[:, :model.cfg.n_visual, CONTENT:].amax(1)  # (B, V - CONTENT)
            loss = loss + cfg.mil * F.binary_cross_entropy_with_logits(best, present[:, CONTENT:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"  step {step + 1}/{cfg.steps}  loss {sum(losses[-log_every:]) / log_every:.3f}  "
                  f"{time.time() - t0:.0f}s", flush=True)
    log = {"train_time_s": round(time.time() - t0, 1), "data_time_s": round(gen_time, 1),
           "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4), "captions_seen": cfg.steps * cfg.batch,
           "train_images": len(maps)}
    return model.eval(), log


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="override the number of steps (quick runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "zoo", help="output folder")
    parser.add_argument("--eval-n", type=int, default=EVAL_N, help="held-out set size for the recorded accuracy")
    parser.add_argument("--gate", type=float, default=0.75, help="least held-out word accuracy to write weights")
    parser.add_argument("--mil", type=float, default=0.0, help="weight of the visual-position word loss")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(mil=args.mil)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps, chunk=max(64, min(cfg.chunk, args.steps * cfg.batch)), n_chunks=1)
    print(f"wild-captioner: {cfg.steps} steps of {cfg.batch}", flush=True)
    model, log = train(cfg)
    acc = evaluate(model, n=args.eval_n)
    print(json.dumps(acc), flush=True)
    if acc["word"] < args.gate:
        raise SystemExit(f"held-out word accuracy {acc['word']:.3f} is below the gate {args.gate}; not written")
    info = {
        "name": "wild-captioner",
        "accuracy": {k: round(v, 4) for k, v in acc.items()},
        "eval": {"split": "test", "n": args.eval_n, "seed": EVAL_SEED, "decoding": "greedy"},
        "gate": {"word": args.gate},
        **log,
        "seed": cfg.seed,
        "train_config": asdict(cfg),
        "cnn": "wild-cnn (frozen)",
        "input": "RGB float in [0, 1], (B, 3, 64, 64), and caption tokens (helpers.data.captions)",
        "torch": torch.__version__,
        "threads": args.threads,
        "command": " ".join(["python zoo/train_captioner.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    info = save_captioner(model, args.out / "wild-captioner.safetensors", info)
    print(json.dumps({k: info[k] for k in ("accuracy", "train_time_s", "params", "sha256")}), flush=True)
    return info


if __name__ == "__main__":
    main()
