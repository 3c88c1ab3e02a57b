"""Metrics the lessons share: tie-aware ranks, Spearman correlation, ROC AUC (one column, or many columns
against many labels at once), accuracy, cluster purity.

Example:
    >>> spearman(torch.tensor([[1.0, 2, 3]]), torch.tensor([[1.0, 3, 2]]))
    tensor([0.5000])
    >>> roc_auc(torch.tensor([0.2, 0.9]), torch.tensor([0, 1]))
    1.0
"""
from __future__ import annotations

import torch


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n along the last dim, ties sharing their mean rank (as ``scipy.stats.rankdata``), float64.

    (..., n) -> (..., n). The one tie-aware ranking of the project (Spearman and ROC AUC use it).

    Example:
        >>> average_ranks(torch.tensor([10.0, 20, 20, 5]))
        tensor([2.0000, 3.5000, 3.5000, 1.0000], dtype=torch.float64)
    """
    if x.ndim == 0:
        raise ValueError("average_ranks needs at least one dimension")
    if x.ndim == 1:
        return average_ranks(x[None])[0]
    sorted_x = x.sort(-1).values.contiguous()
    below = torch.searchsorted(sorted_x, x.contiguous(), right=False)  # values strictly smaller
    upto = torch.searchsorted(sorted_x, x.contiguous(), right=True)    # values smaller or equal
    return (below + upto + 1).double() / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps (B, ...) over their entries, ties averaged, (B,).

    A constant map has no ranking: its correlation is NaN (a randomised model's ReLU'd map is often all
    zero; compare the maps before the ReLU, ``relu=False``).

    Example:
        >>> spearman(torch.tensor([[1.0, 2, 3]]), torch.tensor([[10.0, 30, 20]]))
        tensor([0.5000])
    """
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"a and b must have the same shape (B, ...), got {tuple(a.shape)} and {tuple(b.shape)}")
    ra, rb = average_ranks(a.flatten(1).float()), average_ranks(b.flatten(1).float())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return ((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))).float()


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney U; ties count one half).

    Example:
        >>> roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
        0.75
    """
    labels = labels.bool()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes among the labels")
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {tuple(scores.shape)} and "
                         f"{tuple(labels.shape)}")
    ranks = average_ranks(scores.double())
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``predictions`` equal to ``labels``; (N, K) scores or logits are reduced with argmax over K.

    Example:
        >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
        0.5
    """
    if predictions.ndim == labels.ndim + 1:
        predictions = predictions.argmax(-1)
    if predictions.shape != labels.shape or labels.numel() == 0:
        raise ValueError(f"need one prediction per label (and some), got {tuple(predictions.shape)} and "
                         f"{tuple(labels.shape)}")
    return (predictions == labels.to(predictions.device)).float().mean().item()


def purity(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of items whose cluster's most common label is their own label (1.0: every cluster is one class).

    Example:
        >>> purity(torch.tensor([0, 0, 1, 1]), torch.tensor([5, 5, 7, 5]))
        0.75
    """
    if clusters.shape != labels.shape or clusters.ndim != 1 or clusters.numel() == 0:
        raise ValueError(f"need one cluster per label (1-D, non-empty), got {tuple(clusters.shape)} and "
                         f"{tuple(labels.shape)}")
    labels = labels.to(clusters.device)
    hits = sum(int(torch.bincount(labels[clusters == c] - labels.min()).max()) for c in clusters.unique())
    return hits / len(labels)


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
