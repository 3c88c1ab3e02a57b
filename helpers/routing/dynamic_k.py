"""Dynamic per-token k: evaluate a mixture of experts under a routing rule, and match a rule to a compute budget.

``evaluate`` gives the loss, accuracy and experts used per token (per layer and on average) of a ``PatchMoE``
under any routing (fixed k, threshold, ``weights_fn``). ``threshold_for_mean_k`` finds, by bisection, the
cumulative-probability threshold whose average number of experts per token equals a target, so that a dynamic
rule can be compared with another rule at equal compute.

Example:
    >>> from helpers.routing.moe import MoEConfig, PatchMoE
    >>> net = PatchMoE(MoEConfig()).eval()
    >>> x, y = torch.rand(64, 16, 49), torch.randint(10, (64,))
    >>> evaluate(net, x, y, k=2)["mean_experts"]
    2.0
    >>> t = threshold_for_mean_k(net, x, 1.5)
    >>> abs(evaluate(net, x, y, threshold=t)["mean_experts"] - 1.5) < 0.02
    True
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from helpers.routing.routers import experts_per_token


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000, **routing) -> dict:
    """Cross-entropy, accuracy and experts per token of ``model(x, **routing)`` (eval mode is the caller's).

    Returns a dict: ``loss``, ``accuracy``, ``experts`` (mean experts per token in each layer), ``mean_experts``
    (their mean over layers) and ``per_token`` (list per layer of (tokens,) expert counts).
    """
    logits, counts = [], [[] for _ in model.moe]
    for i in range(0, len(x), batch):
        logits.append(model(x[i:i + batch], **routing))
        for c, layer in zip(counts, model.moe):
            c.append(experts_per_token(layer.last_weights))
    logits = torch.cat(logits)
    per_token = [torch.cat(c) for c in counts]
    experts = [c.float().mean().item() for c in per_token]
    return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(-1) == y).float().mean().item(),
            "experts": experts, "mean_experts": sum(experts) / len(experts), "per_token": per_token}


@torch.no_grad()
def threshold_for_mean_k(model: nn.Module, x: torch.Tensor, mean_k: float, k_max=None, iters: int = 16) -> float:
    """The threshold in (0, 1] whose average number of experts per token (over tokens and layers) is ``mean_k``.

    The average grows with the threshold, so bisection finds it; raises if ``mean_k`` is outside what thresholds
    can reach for this model (1 expert up to all, or up to ``k_max``).
    """
    y = torch.zeros(len(x), dtype=torch.long)

    def mean_at(t: float) -> float:
        return evaluate(model, x, y, threshold=t, k_max=k_max)["mean_experts"]

    lo, hi = 1e-6, 1.0
    if not mean_at(lo) <= mean_k <= mean_at(hi):
        raise ValueError(f"mean_k must be between {mean_at(lo):.3f} and {mean_at(hi):.3f} for this model "
                         f"(what thresholds in (0, 1] give), got {mean_k}")
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_at(mid) < mean_k else (lo, mid)
    return hi
