"""Linear algebra the lessons share: PCA projection, k-means, pairwise distances.

Example:
    >>> pca(torch.tensor([[0.0, 0], [1, 1], [2, 2]]), 1).abs().flatten().tolist()
    [1.4142135381698608, 0.0, 1.4142135381698608]
"""
from __future__ import annotations

import torch


def kmeans(x: torch.Tensor, k: int, seed: int = 0, n_init: int = 8, iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means (Lloyd, k-means++ starts, best of ``n_init`` by inertia) on rows of ``x`` (N, D).

    Returns ``(labels (N,), centres (k, D))``; deterministic for a given ``seed``.

    Example:
        >>> pts = torch.cat([torch.zeros(5, 2), torch.ones(5, 2) * 10])
        >>> kmeans(pts, 2)[0].unique().numel()
        2
    """
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}), got {k}")
    g = torch.Generator().manual_seed(seed)
    x = x.double()
    best = (float("inf"), None, None)
    for _ in range(n_init):
        centres = x[torch.randint(n, (1,), generator=g)]
        while len(centres) < k:  # k-means++: next centre with probability ~ squared distance to the nearest
            d2 = torch.cdist(x, centres).min(dim=1).values.pow(2)
            p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
            centres = torch.cat([centres, x[torch.multinomial(p.float(), 1, generator=g)]])
        for _ in range(iters):
            labels = torch.cdist(x, centres).argmin(dim=1)
            new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
            if torch.allclose(new, centres):
                break
            centres = new
        labels = torch.cdist(x, centres).argmin(dim=1)
        inertia = (x - centres[labels]).pow(2).sum().item()
        if inertia < best[0]:
            best = (inertia, labels, centres)
    return best[1], best[2].float()


def pca(x: torch.Tensor, n_components: int) -> torch.Tensor:
    """Rows of ``x`` (N, D) projected on their first ``n_components`` principal directions, (N, n_components).

    The rows are centred first; the sign of each component is the SVD's (arbitrary).
    """
    n_components = min(n_components, *x.shape)
    xc = x - x.mean(dim=0)
    _, _, vh = torch.linalg.svd(xc.double(), full_matrices=False)  # vh: (min(N, D), D)
    return (xc.double() @ vh[:n_components].T).float()


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between all pairs of rows of ``x`` (flattened), e.g. facet images; needs >= 2."""
    if len(x) < 2:
        raise ValueError("need at least two items to compare")
    d = torch.cdist(x.flatten(1).double(), x.flatten(1).double())
    n = len(x)
    return (d.sum() / (n * (n - 1))).item()
