"""A runtime monitor on activation statistics: bounds learned from clean data, a score for every input.

For each watched layer and each input the monitor computes three numbers over the layer's output: its mean, its
standard deviation and its maximum. On clean data it records, per layer and statistic, the range ``[low, high]``
that clean inputs stay in. At run time an input's score is the largest distance outside those ranges, in units of
the range's width (0 inside every range; NaN or infinite statistics score infinity). It never reads the weights: a
fault shows up as activations that clean data never produced.

Example:
    >>> net = nn.Sequential(nn.Linear(3, 8), nn.ReLU())
    >>> mon = Monitor.fit(net, ["1"], torch.randn(200, 3))
    >>> _, clean = mon.observe(net, torch.randn(5, 3))
    >>> _, odd = mon.observe(net, 100 * torch.ones(1, 3))
    >>> bool((mon.score(odd) > mon.score(clean).max()).all())
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from helpers.core.capturing import capture

STATS = ("mean", "std", "max")


def activation_stats(acts: torch.Tensor) -> torch.Tensor:
    """(B, ...) activations -> (B, 3): each input's mean, standard deviation and maximum over all its entries.

    Example:
        >>> activation_stats(torch.tensor([[1.0, 3.0]]))
        tensor([[2.0000, 1.4142, 3.0000]])
    """
    flat = acts.detach().flatten(1).float()
    return torch.stack([flat.mean(1), flat.std(1), flat.max(1).values], dim=1)


@dataclass
class Monitor:
    """Per-layer bounds ``low``/``high`` (L, 3) on the statistics of :data:`STATS` for ``layers``."""

    layers: list[str]
    low: torch.Tensor
    high: torch.Tensor

    @torch.no_grad()
    def observe(self, model: nn.Module, images: torch.Tensor, batch: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: ``(outputs (N, ...), statistics (N, L, 3))``."""
        device = next(model.parameters()).device
        outputs, stats = [], []
        for i in range(0, len(images), batch):
            with capture(model, self.layers) as acts:
                outputs.append(model(images[i:i + batch].to(device)).cpu())
            stats.append(torch.stack([activation_stats(acts[n]).cpu() for n in self.layers], dim=1))
        return torch.cat(outputs), torch.cat(stats)

    @classmethod
    def fit(cls, model: nn.Module, layers: Sequence[str], images: torch.Tensor, batch: int = 250,
            margin: float = 0.0) -> "Monitor":
        """Bounds = the smallest and largest value of each statistic over the clean ``images``, each widened by
        ``margin`` times the range (a few clean inputs out of any finite sample fall just outside it)."""
        if len(images) < 2:
            raise ValueError("Monitor.fit needs at least two clean images")
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0 (a fraction of each range), got {margin}")
        mon = cls(list(layers), torch.zeros(0), torch.zeros(0))
        _, stats = mon.observe(model, images, batch)
        low, high = stats.amin(0), stats.amax(0)
        mon.low, mon.high = low - margin * (high - low), high + margin * (high - low)
        return mon

    def layer_scores(self, stats: torch.Tensor) -> torch.Tensor:
        """(N, L, 3) statistics -> (N, L): per layer, the largest excess outside the clean ranges, in range
        widths (0 = inside; infinity for a NaN or infinite statistic)."""
        if stats.shape[1:] != self.low.shape:
            raise ValueError(f"statistics must be (N, {len(self.layers)}, {len(STATS)}), got {tuple(stats.shape)}")
        width = (self.high - self.low).clamp_min(1e-12)
        excess = torch.maximum(stats - self.high, self.low - stats).clamp_min(0) / width
        excess = torch.where(torch.isfinite(stats), excess, torch.full_like(excess, float("inf")))
        return excess.amax(2)

    def score(self, stats: torch.Tensor) -> torch.Tensor:
        """(N, L, 3) statistics -> (N,): the largest of :meth:`layer_scores` (0 = every statistic inside)."""
        return self.layer_scores(stats).amax(1)

    def first_alarm(self, stats: torch.Tensor) -> list:
        """For each input, the first watched layer (in ``layers`` order) out of its bounds, or None."""
        out = self.layer_scores(stats) > 0
        return [self.layers[int(row.nonzero()[0])] if row.any() else None for row in out]
