"""G-ACT-style adaptive steering: per-prompt differences clustered into a few directions, a probe picks one.

Sharma & Raman (2025, *Steering Conceptual Bias via Transformer Latent-Subspace Activation*) cluster the
per-prompt activation differences into a small set of steering directions and train lightweight per-layer
probes, refined online by gradient, that choose which direction to inject for the current input. This module
is the one-layer version the lesson teaches (our simplification): k-means on the differences
(:func:`helpers.ops.linalg.kmeans`), each direction the mean difference of its cluster, and one logistic probe
(:func:`helpers.ops.logistic.fit_logistic`) fitted once on the unsteered activations to predict the cluster.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> feats = torch.cat([torch.randn(20, 4, generator=g) - 3, torch.randn(20, 4, generator=g) + 3])
    >>> diffs = torch.cat([torch.tensor([5., 0, 0, 0]).expand(20, 4), torch.tensor([0., 5, 0, 0]).expand(20, 4)])
    >>> steer = fit(diffs, feats, k=2)
    >>> steer.vectors(feats[:1]).round().tolist(), steer.vectors(feats[-1:]).round().tolist()
    ([[5.0, 0.0, 0.0, 0.0]], [[0.0, 5.0, 0.0, 0.0]])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.core.editing import EditFn, add_vector
from helpers.ops.linalg import kmeans
from helpers.ops.logistic import LogisticModel, fit_logistic


@dataclass
class AdaptiveSteering:
    """K steering directions and the probe that picks one per prompt from its unsteered activation."""

    directions: torch.Tensor  # (K, d): the mean difference of each cluster
    probe: LogisticModel      # features (N, d) -> cluster
    clusters: torch.Tensor    # (N,) the k-means cluster of every fitting difference

    def choose(self, features: torch.Tensor) -> torch.Tensor:
        """The probe's cluster for each row of ``features`` (N, d), (N,)."""
        if features.dim() != 2 or features.shape[1] != self.directions.shape[1]:
            raise ValueError(f"features must be (N, {self.directions.shape[1]}), got {tuple(features.shape)}")
        return self.probe.predict(features.float().to(self.probe.weight.device)).cpu()

    def vectors(self, features: torch.Tensor) -> torch.Tensor:
        """The chosen direction for each prompt, (N, d)."""
        return self.directions[self.choose(features)]

    def edit_fn(self, features: torch.Tensor, alpha: float = 1.0, position: int = -1) -> EditFn:
        """An edit for :func:`helpers.edit` adding each prompt's chosen direction times ``alpha`` at ``position``
        (the batch must hold the prompts of ``features`` in the same order)."""
        return add_vector(self.vectors(features), alpha, position)


def fit(differences: torch.Tensor, features: torch.Tensor, k: int = 2, seed: int = 0,
        weight_decay: float = 1e-2) -> AdaptiveSteering:
    """Cluster ``differences`` (N, d) (target minus source activation, one per prompt) into ``k`` directions and
    fit a probe from ``features`` (N, d) (each prompt's unsteered activation) to the cluster.

    The probe standardises the features (residual streams have a few huge dimensions). Raises a ``ValueError``
    for mismatched shapes or a k the data cannot support.
    """
    if differences.dim() != 2 or differences.shape != features.shape:
        raise ValueError(f"differences and features must both be (N, d), got {tuple(differences.shape)} and "
                         f"{tuple(features.shape)}")
    if not 2 <= k <= len(differences):
        raise ValueError(f"k must be between 2 and the number of prompts ({len(differences)}), got {k}")
    clusters, _ = kmeans(differences.float().cpu(), k, seed=seed)
    directions = torch.stack([differences.float().cpu()[clusters == j].mean(0) for j in range(k)])
    probe = fit_logistic(features.float().cpu(), clusters, n_classes=k, weight_decay=weight_decay, standardize=True)
    return AdaptiveSteering(directions, probe, clusters)
