"""The task that scores an activation formula: two-spiral classification with a small MLP, several seeds at once.

The parameter-efficiency score of the Neuro-Symbolic Activation Discovery paper (2026) is
``E_param = AUC / log10(n_params)`` (:func:`parameter_efficiency`).

Example:
    >>> task = spirals_task(n_train=40, n_val=40, n_test=40)
    >>> task.x_train.shape
    torch.Size([40, 2])
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn


@dataclass
class Task:
    """A classification task with train / validation (fitness) / test (held-out claim) splits."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int


def _spirals(n: int, turns: float, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 2, (n,), generator=gen)
    t = torch.rand(n, generator=gen) ** 0.5 * turns * 2 * math.pi        # sqrt: even density along the arm
    r = t / (turns * 2 * math.pi)                                          # radius grows from 0 to 1
    angle = t + math.pi * y                                                # the second arm is the first turned by pi
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) + noise * torch.randn(n, 2, generator=gen)
    return x * 2, y                                                        # (n, 2) roughly in [-2, 2]


def spirals_task(n_train: int = 400, n_val: int = 400, n_test: int = 2000, turns: float = 1.5,
                 noise: float = 0.03, seed: int = 0) -> Task:
    """Two interleaved spirals (2 classes); the three splits are independent samples.

    Example:
        >>> task = spirals_task(n_train=10, n_val=10, n_test=10)
        >>> task.x_train.shape, task.n_classes
        (torch.Size([10, 2]), 2)
    """
    gen = torch.Generator().manual_seed(seed)
    (xa, ya), (xb, yb), (xc, yc) = (_spirals(n, turns, noise, gen) for n in (n_train, n_val, n_test))
    return Task(xa, ya, xb, yb, xc, yc, 2)


@dataclass
class NetConfig:
    """The evaluation network: ``depth`` hidden layers of ``hidden`` units, full-batch Adam for ``steps``."""

    hidden: int = 8
    depth: int = 2
    steps: int = 200
    lr: float = 0.02


def n_params_mlp(n_in: int, n_out: int, config: NetConfig) -> int:
    """Parameters of the evaluation MLP (weights and biases)."""
    widths = [n_in] + [config.hidden] * config.depth + [n_out]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _init_batched(widths: list[int], seeds: Sequence[int]) -> list[torch.Tensor]:
    """Weights (S, fan_in, fan_out) and biases (S, 1, fan_out), each seed drawn like ``nn.Linear`` would."""
    params = []
    for a, b in zip(widths[:-1], widths[1:]):
        bound = 1 / math.sqrt(a)
        gens = [torch.Generator().manual_seed(s * 1000 + len(params)) for s in seeds]
        params.append(torch.stack([(torch.rand(a, b, generator=g) * 2 - 1) * bound for g in gens]))
        params.append(torch.stack([(torch.rand(1, b, generator=g) * 2 - 1) * bound for g in gens]))
    return params


def evaluate_activation(activation: Callable[[torch.Tensor], torch.Tensor], task: Task,
                        config: Optional[NetConfig] = None, seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """Train one MLP per seed (all at once, batched) with ``activation``; accuracies and test scores.

    Returns ``{"val_acc": (S,), "test_acc": (S,), "test_prob": (S, n_test) P(class 1)}``. A seed
    whose outputs are not finite gets accuracy 0.

    Example:
        >>> task = spirals_task(n_train=50, n_val=50, n_test=50)
        >>> evaluate_activation(torch.tanh, task, NetConfig(steps=5), seeds=[0, 1])["val_acc"].shape
        torch.Size([2])
    """
    config = config or NetConfig()
    widths = [task.x_train.shape[1]] + [config.hidden] * config.depth + [task.n_classes]
    init = _init_batched(widths, seeds)
    # one flat leaf tensor holds every weight: Adam then updates one tensor per step instead of 2 per layer
    flat = torch.cat([p.detach().flatten() for p in init]).requires_grad_()
    shapes = [p.shape for p in init]
    opt = torch.optim.Adam([flat], lr=config.lr)

    def forward(x: torch.Tensor) -> torch.Tensor:                      # (N, d) -> (S, N, classes)
        params = [t.view(s) for t, s in zip(flat.split([s.numel() for s in shapes]), shapes)]
        h = x
        for i in range(0, len(params) - 2, 2):
            h = activation(torch.matmul(h, params[i]) + params[i + 1])  # (S, N, hidden)
        return torch.matmul(h, params[-2]) + params[-1]

    y = task.y_train.expand(len(seeds), -1)
    for _ in range(config.steps):
        logits = forward(task.x_train)
        # mean over samples per seed, summed over seeds: each seed's gradient is its own
        loss = nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = {}
        for split, x, labels in (("val", task.x_val, task.y_val), ("test", task.x_test, task.y_test)):
            logits = forward(x)                                        # (S, N, classes)
            finite = torch.isfinite(logits).all(-1).all(-1)            # (S,)
            out[f"{split}_acc"] = (logits.argmax(-1) == labels).float().mean(-1) * finite
            if split == "test":
                out["test_prob"] = torch.nan_to_num(logits.softmax(-1)[..., 1], nan=0.5)
    return out


def parameter_efficiency(auc: float, n_params: int) -> float:
    """``E_param = AUC / log10(n_params)`` (Neuro-Symbolic Activation Discovery): accuracy per order of magnitude.

    Example:
        >>> parameter_efficiency(0.9, 100)
        0.45
    """
    if n_params <= 1:
        raise ValueError(f"n_params must be > 1 (log10 of it divides), got {n_params}")
    return auc / math.log10(n_params)
