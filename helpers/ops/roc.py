"""ROC AUC of many score columns against many binary label columns at once (one ranking per column).

Example:
    >>> scores = torch.tensor([[0.1, 5.0], [0.4, 4.0], [0.35, 3.0], [0.8, 2.0]])
    >>> labels = torch.tensor([[0], [0], [1], [1]])
    >>> roc_auc_columns(scores, labels).flatten().tolist()
    [0.75, 0.0]
"""
from __future__ import annotations

import torch

from helpers.ops.metrics import average_ranks


def roc_auc_columns(scores: torch.Tensor, labels: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """AUROC of every score column for every label column: scores (N, C), labels (N, F) 0/1 -> (C, F) float64.

    Mann-Whitney U with ties counted one half (the same value as :func:`helpers.ops.metrics.roc_auc` column by
    column), computed from one tie-aware ranking per score column and one matrix product, so thousands of
    candidate features against tens of factors cost about as much as sorting the scores. ``chunk`` columns are
    ranked at a time to bound memory.

    Example:
        >>> roc_auc_columns(torch.tensor([[1.0], [2.0], [2.0]]), torch.tensor([[0, 1], [1, 0], [1, 0]])).tolist()
        [[1.0, 0.0]]
    """
    if scores.ndim != 2 or labels.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"need scores (N, C) and labels (N, F) with the same N, got {tuple(scores.shape)} and "
                         f"{tuple(labels.shape)}")
    lab = labels.double().to(scores.device)
    if not ((lab == 0) | (lab == 1)).all():
        raise ValueError("labels must be 0 or 1")
    n_pos = lab.sum(0)                                   # (F,)
    n_neg = len(lab) - n_pos
    if bool(((n_pos == 0) | (n_neg == 0)).any()):
        bad = torch.nonzero((n_pos == 0) | (n_neg == 0)).flatten().tolist()
        raise ValueError(f"label columns {bad} have only one class; AUROC needs both")
    out = []
    for c in range(0, scores.shape[1], chunk):
        ranks = average_ranks(scores[:, c:c + chunk].T.contiguous()).T  # (N, c) ranks within each column
        rank_sum = ranks.T @ lab                                           # (c, F) sum of the positives' ranks
        out.append((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return torch.cat(out)
