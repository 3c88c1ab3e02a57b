"""Train tinyworld-gpt (GELU) or its ReLU twin on the generated tinyworld corpus.

    python zoo/train_tinyworld.py --act gelu              # -> data/zoo/tinyworld-gpt/
    python zoo/train_tinyworld.py --act relu              # -> data/zoo/tinyworld-gpt-relu/
    python zoo/train_tinyworld.py --steps 5 --out /tmp/tw --no-gate   # quick smoke run

Reproducible from --seed (same corpus stream and same initial weights for both twins). Checkpoints
at log-spaced steps (0, 50, 100, 200, 400, ...) and the final weights are kept in memory and written
only if the held-out gate passes (helpers.zoo.evals.gate): facts, cyclic tasks, sentiment and IOI
solved, IOI not solved by a shortcut, in-context tasks solved with demonstrations and ambiguous
without. A failed gate writes metrics_rejected.json and no weights, and exits with status 1.
Output: model.safetensors (float32), checkpoints/step_NNNNNN.safetensors (float16), vocab.json,
metrics.json (metrics, gate, train time, parameter count, SHA-256 of every file).
"""
import argparse
import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers.data import tinyworld as tw
from helpers.zoo import evals
from helpers.models.gpt import GPT, GPTConfig, save_gpt

ROOT = Path(__file__).resolve().parents[1]

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--act", default="gelu", choices=["gelu", "relu"])
p.add_argument("--out", default=None, help="output folder (default data/zoo/tinyworld-gpt[-relu])")
p.add_argument("--steps", type=int, default=7500, help="at most this many steps (see --decay)")
p.add_argument("--decay", type=int, default=600, help="length of the final learning-rate decay")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--warmup", type=int, default=200)
p.add_argument("--weight-decay", type=float, default=0.0)  # none: keeps outliers / massive activations possible
p.add_argument("--n-ctx", type=int, default=64)
p.add_argument("--n-layer", type=int, default=4)
p.add_argument("--d-model", type=int, default=128)
p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
p.add_argument("--eval-every", type=int, default=250, help="print a quick held-out evaluation every N steps")
p.add_argument("--no-gate", action="store_true", help="write the weights even if the held-out gate fails")
args = p.parse_args()

torch.set_num_threads(args.threads)
name = "tinyworld-gpt" if args.act == "gelu" else f"tinyworld-gpt-{args.act}"
out = Path(args.out) if args.out else ROOT / "data" / "zoo" / name

torch.manual_seed(args.seed)
tok = tw.tokenizer()
cfg = GPTConfig(vocab_size=len(tok), n_ctx=args.n_ctx, n_layer=args.n_layer, n_head=4,
                d_model=args.d_model, d_mlp=4 * args.d_model, act=args.act)
model = GPT(cfg)
corpus = tw.Corpus(tw.CorpusConfig(n_ctx=cfg.n_ctx), seed=args.seed)

# No weight decay on biases, LayerNorms and embeddings (nanoGPT's split); decay is 0 by default anyway.
decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                         {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))


# Warm-up, constant learning rate, then a cosine decay to 10 % over the last `decay` steps
# ("warmup-stable-decay"). The circuits for IOI, induction and in-context learning appear suddenly
# after a plateau, and a high constant rate gets there sooner. The decay starts either at
# steps - decay or as soon as the quick held-out gate passes during the constant phase, whichever
# is first (deterministic: the evaluation does not touch the training random streams).
decay = min(args.decay, args.steps // 4)
decay_start = args.steps - decay


def lr_at(step: int) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    if step < decay_start:
        return args.lr
    t = min(1.0, (step - decay_start) / max(1, decay))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


ckpt_steps = {0, *[50 * 2 ** i for i in range(20)]}  # log-spaced; those below the last step are kept
checkpoints, dynamics, losses, quick = {}, {}, [], {}


def snapshot(step: int) -> None:
    """Keep a float16 copy of the weights and a small evaluation for the training-dynamics lessons."""
    checkpoints[step] = {k: v.detach().to(torch.float16).clone() for k, v in model.state_dict().items()}
    m = evals.evaluate(model, n=60, tok=tok)
    dynamics[step] = {"fact": m["fact"], "cyclic": m["cyclic"], "ioi_acc": m["ioi"]["acc"],
                      "ioi_abc_drop": m["ioi"]["abc_drop"],
                      "icl": {t: a[str(evals.ICL_GATE_K)] for t, a in m["icl"].items()},
                      "icl_zero_shot": m["icl_zero_shot"]["prob_share"], "induction": m["induction"]}


print(f"{name}: {model.num_params():,} parameters, vocab {len(tok)}, at most {args.steps} steps")
t0, eval_time = time.time(), 0.0
model.train()
step = 0
while step < decay_start + decay:
    if step in ckpt_steps:
        te = time.time()
        snapshot(step)
        eval_time += time.time() - te
    batch = corpus.batch(args.batch)  # (B, T + 1)
    x, y = batch[:, :-1], batch[:, 1:]  # (B, T) each: predict every next token
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    logits = model(x)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
    if step % 100 == 0 or step == decay_start + decay - 1:
        avg = sum(losses[-100:]) / len(losses[-100:])
        print(f"step {step:5d}  loss {avg:.4f}  lr {lr_at(step):.2e}  {time.time() - t0:6.1f}s", flush=True)
    step += 1
    if args.eval_every and step % args.eval_every == 0 and step < decay_start:
        te = time.time()
        m = evals.evaluate(model, n=60, tok=tok)
        fails = evals.gate(m)
        quick[step] = {"icl": {t: a[str(evals.ICL_GATE_K)] for t, a in m["icl"].items()}, "ioi_acc": m["ioi"]["acc"],
                       "ioi_abc_drop": m["ioi"]["abc_drop"], "zero_shot": m["icl_zero_shot"]["prob_share"],
                       "induction": m["induction"], "n_fail": len(fails)}
        print(f"  eval {json.dumps(quick[step])}", flush=True)
        if not fails and step >= args.warmup:
            decay_start = step
            print(f"  quick gate passed at step {step}: decaying until step {decay_start + decay}", flush=True)
        eval_time += time.time() - te
train_time = time.time() - t0 - eval_time
final_step = step
checkpoints = {k: v for k, v in checkpoints.items() if k < final_step}
snapshot(final_step)

metrics = evals.evaluate(model, n=200, tok=tok)
failures = evals.gate(metrics)
report = {
    "name": name,
    "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
    "config": asdict(cfg),
    "train": {k: v for k, v in vars(args).items() if k not in ("out", "no_gate")},
    "param_count": model.num_params(),
    "steps": final_step,
    "decay_start": decay_start,
    "train_time_s": round(train_time, 1),
    "final_loss": round(sum(losses[-100:]) / len(losses[-100:]), 4),
    "loss_every_50": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4) for i in range(0, len(losses), 50)],
    "metrics": metrics,
    "gate": {"passed": not failures, "failures": failures},
    "dynamics": {str(k): v for k, v in dynamics.items()},
    "quick_evals": {str(k): v for k, v in quick.items()},
    "versions": {"torch": torch.__version__, "python": platform.python_version()},
}
print(json.dumps({"metrics": metrics, "gate": report["gate"]}, indent=1))

out.mkdir(parents=True, exist_ok=True)
if failures and not args.no_gate:
    (out / "metrics_rejected.json").write_text(json.dumps(report, indent=1))
    print(f"GATE FAILED, no weights written; metrics in {out / 'metrics_rejected.json'}", file=sys.stderr)
    sys.exit(1)

(out / "checkpoints").mkdir(exist_ok=True)
for old in (out / "checkpoints").glob("step_*.safetensors"):
    old.unlink()  # a previous run's checkpoints at other steps would not match this run
save_gpt(model, out / "model.safetensors", torch.float32, {"name": name, "step": final_step})
for step, state in checkpoints.items():
    model.load_state_dict({k: v.float() for k, v in state.items()})
    save_gpt(model, out / "checkpoints" / f"step_{step:06d}.safetensors", torch.float16, {"name": name, "step": step})
(out / "vocab.json").write_text(json.dumps(tok.vocab))
files = sorted(f for f in out.rglob("*") if f.is_file() and f.suffix in (".safetensors", ".json")
               and f.name not in ("metrics.json", "metrics_rejected.json"))  # every weight file has its sidecar
report["files"] = {f.relative_to(out).as_posix(): {"sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
                                                    "bytes": f.stat().st_size} for f in files}
(out / "metrics.json").write_text(json.dumps(report, indent=1))
(out / "metrics_rejected.json").unlink(missing_ok=True)
print(f"wrote {len(files)} files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB) and metrics.json to {out}")
