"""Routing statistics: how a trained mixture of experts spreads its tokens over the experts.

Example:
    >>> w = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4], [1.0, 0.0, 0.0]])
    >>> [round(v, 2) for v in expert_load(w).tolist()]   # shares of the 5 token-to-expert assignments
    [0.4, 0.4, 0.2]
    >>> type_by_expert(w, torch.tensor([0, 1, 0]), n_types=2).tolist()   # top-1 expert per token type
    [[2, 0, 0], [0, 1, 0]]
"""
from __future__ import annotations

import torch
from torch import nn

from helpers.ops.information import entropy


def expert_load(weights: torch.Tensor) -> torch.Tensor:
    """(E,) each expert's share of all token-to-expert assignments (non-zero weights); sums to 1."""
    assigned = (weights > 0).double().sum(0)
    return (assigned / assigned.sum()).float()


def load_entropy(weights: torch.Tensor) -> float:
    """Entropy (nats) of ``expert_load``: log E when every expert gets the same share, 0 when one gets all."""
    return entropy((weights > 0).double().sum(0))


def type_by_expert(weights: torch.Tensor, token_types: torch.Tensor, n_types: int) -> torch.Tensor:
    """(n_types, E) counts: how many tokens of each type have each expert as their top (highest-weight) expert."""
    if len(weights) != len(token_types):
        raise ValueError(f"one type per token: {len(weights)} tokens, {len(token_types)} types")
    top = weights.argmax(-1).cpu()
    table = torch.zeros(n_types, weights.shape[1], dtype=torch.long)
    table.index_put_((token_types.long().cpu(), top), torch.ones_like(top), accumulate=True)
    return table


@torch.no_grad()
def collect_routing(model: nn.Module, x: torch.Tensor, **routing) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run ``model(x, **routing)`` once without gradients; per MoE layer (``model.moe``) return the router
    probabilities and mixing weights, (tokens, E) each, tokens in (batch, position) order."""
    model(x, **routing)
    return [(layer.last_probs.detach(), layer.last_weights.detach()) for layer in model.moe]
