"""Activation statistics per layer and across training checkpoints.

    fraction_nonzero(acts["blocks.0.mlp.act"])           # lazy neurons: share of entries above 0
    describe(acts["blocks.2"])                            # mean, std, quantiles, kurtosis, ...

The zoo's training checkpoints are in :mod:`helpers.zoo.checkpoints`; sparsity (CETT, PPL-p%) in
:mod:`helpers.statistics.sparsity`; massive activations and their emergence curve in
:mod:`helpers.statistics.massive`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def fraction_nonzero(x: torch.Tensor, threshold: float = 0.0) -> float:
    """Share of entries with ``|x| > threshold`` (threshold 0: the nonzero fraction after a ReLU).

    Example:
        >>> fraction_nonzero(torch.relu(torch.tensor([-1., 0., 2., 3.])))
        0.5
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return (x.detach().abs() > threshold).float().mean().item()


@dataclass
class LayerStats:
    """Summary of one layer's activations (over every entry)."""
    mean: float
    std: float
    min: float
    max: float
    q01: float
    q50: float
    q99: float
    kurtosis: float        # excess kurtosis: 0 for a Gaussian, large with heavy tails / outliers
    frac_nonzero: float

    def row(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def describe(x: torch.Tensor, max_samples: int = 200_000) -> LayerStats:
    """Mean, std, extremes, 1/50/99 % quantiles, excess kurtosis and nonzero fraction of ``x``.

    Quantiles use an evenly strided subsample of at most ``max_samples`` entries (torch.quantile's limit).

    Example:
        >>> s = describe(torch.randn(10_000))
        >>> abs(s.kurtosis) < 0.3 and abs(s.q50) < 0.05
        True
    """
    v = x.detach().float().flatten()
    if v.numel() == 0:
        raise ValueError("cannot describe an empty tensor")
    mean, std = v.mean(), v.std(unbiased=False)
    kurt = (((v - mean) / std.clamp_min(1e-12)) ** 4).mean() - 3.0
    sub = v[:: max(1, v.numel() // max_samples)]
    q = torch.quantile(sub, torch.tensor([0.01, 0.5, 0.99]))
    return LayerStats(mean.item(), std.item(), v.min().item(), v.max().item(), *q.tolist(),
                      kurt.item(), fraction_nonzero(v))
