"""Routers of a mixture of experts: which experts each token uses and with what weight.

All functions take router probabilities ``probs`` (N, E) (a softmax over E experts per token) and return mixing
weights (N, E): zero for experts the token skips, the kept probabilities renormalised to sum to one.

* ``topk_weights``: the usual fixed top-k (every token uses exactly k experts);
* ``threshold_weights``: a per-token k (DynaMoE-style dynamic routing, our reading of the paper's rule): the fewest
  top experts whose probabilities add up to at least ``threshold``, at most ``k_max`` of them;
* ``load_balancing_loss``: the Switch Transformer auxiliary loss E * sum_e f_e P_e (1 when the load is uniform).

Bad arguments raise ``ValueError`` naming the valid range before any work.

Example:
    >>> p = torch.tensor([[0.6, 0.3, 0.1, 0.0], [0.4, 0.3, 0.2, 0.1]])
    >>> topk_weights(p, 1).tolist()
    [[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    >>> (threshold_weights(p, 0.8) > 0).sum(-1).tolist()   # a confident token needs 2 experts, a spread one 3
    [2, 3]
"""
from __future__ import annotations

import torch


def check_k(k: int, n_experts: int, what: str = "k") -> int:
    """Return ``k`` if it is an integer in [1, n_experts]; raise ``ValueError`` with the valid range otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_experts:
        raise ValueError(f"{what} must be an integer in [1, {n_experts}] (the number of experts), got {k!r}")
    return k


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` if it is a number in (0, 1]; raise ``ValueError`` with the valid range otherwise."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be a cumulative router probability in (0, 1], got {threshold!r}")
    return float(threshold)


def _check_probs(probs: torch.Tensor) -> None:
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValueError(f"probs must be (tokens, experts), got shape {tuple(probs.shape)}")


def _renormalise(probs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    kept = probs * keep
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)


def topk_weights(probs: torch.Tensor, k: int) -> torch.Tensor:
    """(N, E) weights: each token's k most probable experts, their probabilities renormalised; zeros elsewhere."""
    _check_probs(probs)
    check_k(k, probs.shape[1])
    idx = probs.topk(k, dim=-1).indices
    keep = torch.zeros_like(probs).scatter(-1, idx, 1.0)
    return _renormalise(probs, keep)


def threshold_weights(probs: torch.Tensor, threshold: float, k_max: int | None = None) -> torch.Tensor:
    """(N, E) weights with a per-token number of experts: the fewest most-probable experts whose probabilities
    reach ``threshold`` (cumulatively), capped at ``k_max`` (default: all experts), renormalised.

    ``threshold = 1`` keeps every expert with non-zero probability; a small threshold keeps only the top expert.
    """
    _check_probs(probs)
    check_threshold(threshold)
    k_max = probs.shape[1] if k_max is None else check_k(k_max, probs.shape[1], "k_max")
    sorted_p, order = probs.sort(-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p               # probability mass of the better experts, (N, E)
    rank = torch.arange(probs.shape[1], device=probs.device)
    keep_sorted = ((before < threshold) & (rank < k_max)).to(probs.dtype)
    keep = torch.zeros_like(probs).scatter(-1, order, keep_sorted)
    return _renormalise(probs, keep)


def experts_per_token(weights: torch.Tensor) -> torch.Tensor:
    """(N,) number of experts each token uses (non-zero weights)."""
    return (weights > 0).sum(-1)


def load_balancing_loss(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Switch-style auxiliary loss E * sum_e f_e * P_e, differentiable through ``probs``.

    f_e is expert e's share of all token-to-expert assignments (from ``weights > 0``, no gradient), P_e the mean
    router probability of e. Both are uniform (1/E) for a perfectly balanced router, which gives 1.
    """
    _check_probs(probs)
    if weights.shape != probs.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and probs {tuple(probs.shape)} must have the same shape")
    assigned = (weights > 0).to(probs.dtype)
    f = assigned.sum(0) / assigned.sum().clamp_min(1.0)
    return probs.shape[1] * (f.detach() * probs.mean(0)).sum()


def random_k_weights(probs: torch.Tensor, mean_k: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Baseline for dynamic routing: each token gets floor(mean_k) or ceil(mean_k) top experts *at random*, so that
    the average number of experts is ``mean_k`` in expectation but the choice ignores the token.

    Example:
        >>> w = random_k_weights(torch.rand(1000, 4).softmax(-1), 1.5, torch.Generator().manual_seed(0))
        >>> round(experts_per_token(w).float().mean().item(), 1)
        1.5
    """
    _check_probs(probs)
    n_exp = probs.shape[1]
    if not 1.0 <= mean_k <= n_exp:
        raise ValueError(f"mean_k must be in [1, {n_exp}] (the number of experts), got {mean_k!r}")
    lo = int(mean_k)
    extra = torch.rand(len(probs), generator=generator) < (mean_k - lo)
    k = (lo + extra.long()).clamp(max=n_exp).to(probs.device)     # (N,)
    ranks = probs.argsort(-1, descending=True).argsort(-1)      # rank of each expert per token, 0 = best
    return _renormalise(probs, (ranks < k[:, None]).to(probs.dtype))
