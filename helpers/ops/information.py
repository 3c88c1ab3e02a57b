"""Entropy and mutual information of discrete variables (plug-in estimates, in nats).

Example:
    >>> a = torch.tensor([0, 0, 1, 1])
    >>> round(mutual_information(a, a), 4), round(mutual_information(a, torch.tensor([0, 1, 0, 1])), 4)
    (0.6931, 0.0)
"""
from __future__ import annotations

import torch


def entropy(counts: torch.Tensor) -> float:
    """Shannon entropy (nats) of the distribution given by non-negative ``counts`` (or probabilities), any shape.

    Example:
        >>> round(entropy(torch.tensor([1.0, 1.0, 1.0, 1.0])), 4)  # log 4
        1.3863
    """
    c = counts.double().flatten()
    if (c < 0).any() or c.sum() <= 0:
        raise ValueError("entropy needs non-negative counts with a positive total")
    p = c[c > 0] / c.sum()
    return float(-(p * p.log()).sum())


def joint_counts(a: torch.Tensor, b: torch.Tensor, n_a: int | None = None, n_b: int | None = None) -> torch.Tensor:
    """(n_a, n_b) table of how often each pair of values (a_i, b_i) occurs; values are ints from 0.

    Example:
        >>> joint_counts(torch.tensor([0, 1, 1]), torch.tensor([1, 1, 0])).tolist()
        [[0, 1], [1, 1]]
    """
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"a and b must be 1-D, non-empty and equally long, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.long().cpu(), b.long().cpu()
    if min(a.min(), b.min()) < 0:
        raise ValueError("values must be integers >= 0")
    n_a = int(a.max()) + 1 if n_a is None else n_a
    n_b = int(b.max()) + 1 if n_b is None else n_b
    return torch.bincount(a * n_b + b, minlength=n_a * n_b).reshape(n_a, n_b)


def mutual_information(a: torch.Tensor, b: torch.Tensor) -> float:
    """I(a; b) = H(a) + H(b) - H(a, b) in nats, from the joint counts of two 1-D integer tensors.

    The plug-in estimate is biased upwards by about (|a|-1)(|b|-1) / (2N) nats; compare it with the value for a
    shuffled ``b`` before reading anything into a small figure.
    """
    table = joint_counts(a, b)
    return entropy(table.sum(1)) + entropy(table.sum(0)) - entropy(table)
