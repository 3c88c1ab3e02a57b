"""Multifaceted visualisation: cluster the top examples' features, one starting image per cluster."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.ops.linalg import kmeans, pca


# ----------------------------------------------------------------------------------------------------------
# facets: k-means on the top examples' features, one starting image per cluster


@dataclass
class Facets:
    """labels: (N,) cluster of each example; inits: (k, 3, H, W) mean image of each cluster's ``n_nearest``
    members closest to its centre; members: per cluster, the indices (into the given images) of those members."""

    labels: torch.Tensor
    inits: torch.Tensor
    members: list[torch.Tensor]


def find_facets(images: torch.Tensor, features: torch.Tensor, k: int = 3, n_components: int = 10,
                n_nearest: int = 10, seed: int = 0) -> Facets:
    """Cluster examples into ``k`` facets (PCA to ``n_components``, then k-means) and average each facet's
    ``n_nearest`` most central images into a starting image for activation maximisation.

    images: (N, 3, H, W) the examples (Nguyen et al. 2016 use a class's training images; notebook 06 uses the
    top-activating test images); features: (N, D) their high-level codes (e.g. the pooled last-block features).
    The paper also reduces the codes with t-SNE before k-means; this function does PCA only.

    Example:
        >>> imgs = torch.cat([torch.zeros(6, 3, 4, 4), torch.ones(6, 3, 4, 4)])
        >>> f = find_facets(imgs, imgs.flatten(1), k=2, n_nearest=3)
        >>> sorted(f.inits.mean(dim=(1, 2, 3)).tolist())
        [0.0, 1.0]
    """
    if len(images) != len(features):
        raise ValueError(f"{len(images)} images but {len(features)} feature rows")
    codes = pca(features.flatten(1).float().cpu(), n_components)  # (N, n_components)
    labels, centres = kmeans(codes, k, seed=seed)
    inits, members = [], []
    for j in range(k):
        idx = (labels == j).nonzero().flatten()
        dist = (codes[idx] - centres[j]).norm(dim=1)
        near = idx[dist.argsort()[:n_nearest]]
        members.append(near)
        inits.append(images[near.to(images.device)].mean(dim=0))
    return Facets(labels, torch.stack(inits), members)
