"""SAE latents as propositions (after the idea of ActivationReasoning, 2025): a proposition is true for a token when
any latent of its group fires; groups are chosen on training tokens by precision; rules combine propositions.

Example:
    >>> z = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0], [0, 0, 1.0]])
    >>> groups = latent_groups(z, {"a": torch.tensor([1, 1, 0, 0])}, min_precision=0.9, min_count=1)
    >>> groups["a"].tolist(), truth(z, groups)["a"].tolist()
    ([0, 1], [True, True, False, False])
"""
from __future__ import annotations

import torch


def latent_groups(z: torch.Tensor, labels: dict[str, torch.Tensor], min_precision: float = 0.9,
                  min_count: int = 5) -> dict[str, torch.Tensor]:
    """For each factor, the latents (indices) that fire on at least ``min_count`` tokens of z (N, L) and whose
    firings fall on the factor's tokens with precision >= ``min_precision``; factors with no such latent are left out."""
    fires = (z.flatten(0, -2) > 0).double()                          # (N, L)
    count = fires.sum(0)
    out = {}
    for name, lab in labels.items():
        hits = lab.flatten().double() @ fires                           # (L,) firings on the factor's tokens
        precision = hits / count.clamp_min(1)
        group = torch.nonzero((count >= min_count) & (precision >= min_precision)).flatten()
        if len(group):
            out[name] = group
    return out


def truth(z: torch.Tensor, groups: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Truth value of each proposition for each token of z (N, L): any latent of its group fires, (N,) bool."""
    z = z.flatten(0, -2)
    return {name: (z[:, group] > 0).any(1) for name, group in groups.items()}


def precision_recall(pred: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Precision and recall of a boolean prediction against a boolean target (both (N,))."""
    pred, target = pred.bool().flatten(), target.bool().flatten()
    tp = float((pred & target).sum())
    return tp / max(float(pred.sum()), 1.0), tp / max(float(target.sum()), 1.0)
