"""SpaNN's detector features (Victorica, Dan & Sandberg, SaTML 2025): clusters of salient neurons at many thresholds.

SpaNN sums the first convolutional layer's activations over channels into one saliency map per image, binarises
it at a set of thresholds ``beta * max`` (beta = 0, 0.05, ..., 0.95), clusters the "on" neurons with DBSCAN
(eps 1, min_samples 4, on their grid coordinates), and describes each threshold by four numbers: the number of
clusters, the mean intra-cluster distance, its spread over clusters, and the number of on neurons. A classifier
on this (n_betas, 4) matrix tells attacked from clean images. An adversarial patch makes a compact, intensely
active region, which keeps its own cluster at thresholds where a natural image's clusters have dissolved.

Here DBSCAN on a grid with eps 1 is computed exactly by image operations (a point is a core point when at least
``min_samples - 1`` of its 4 neighbours are on; clusters are 4-connected core points plus the on neighbours they
reach), for the whole batch at once. Our own choices: the intra-cluster distance is the root-mean-square
distance between a cluster's points (it has a closed form; SpaNN's code averages plain distances), and noise
points are not counted as a cluster.

Example:
    >>> on = torch.zeros(1, 8, 8, dtype=torch.bool)
    >>> on[0, 1:4, 1:4] = True; on[0, 5:8, 5:8] = True; on[0, 0, 7] = True     # two blocks and one stray point
    >>> labels = grid_dbscan(on)
    >>> len(labels.unique()) - 1, labels[0, 0, 7].item()                       # two clusters; the stray is noise
    (2, -1)
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

BETAS = tuple(round(0.05 * i, 2) for i in range(20))
FEATURES = ("clusters", "rms_distance", "rms_distance_std", "on_neurons")
_PLUS = np.array([[[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[0, 1, 0], [1, 1, 1], [0, 1, 0]], [[0, 0, 0], [0, 0, 0], [0, 0, 0]]])


def saliency_map(first_layer: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) activations of the first conv layer -> (B, H, W), their sum over channels (SpaNN's map)."""
    if first_layer.ndim != 4:
        raise ValueError(f"need (B, C, H, W) activations, got {tuple(first_layer.shape)}")
    return first_layer.detach().float().sum(1)


def _neighbours(x: torch.Tensor) -> list[torch.Tensor]:
    """The 4 neighbours of every pixel of (B, H, W) (zero / False beyond the border)."""
    p = torch.nn.functional.pad(x[:, None].float(), (1, 1, 1, 1))[:, 0]
    return [p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]]


def grid_dbscan(on: torch.Tensor, min_samples: int = 4) -> torch.Tensor:
    """DBSCAN with eps 1 on the coordinates of the True pixels of each (H, W) map of ``on`` (B, H, W).

    Returns int64 labels (B, H, W): -1 for noise and off pixels, cluster ids otherwise (unique over the batch).
    A border point next to two clusters joins the one with the larger id (DBSCAN's own choice depends on the
    visiting order).
    """
    if on.ndim != 3 or on.dtype != torch.bool:
        raise ValueError(f"need a bool (B, H, W) map, got {on.dtype} {tuple(on.shape)}")
    count = on.float() + sum(_neighbours(on))            # points within distance 1, itself included
    core = on & (count >= min_samples)
    labels, _ = ndimage.label(core.cpu().numpy(), structure=_PLUS)   # 4-connected, never across images
    labels = torch.from_numpy(labels).long().to(on.device) - 1        # -1 = not a core point
    reach = torch.stack(_neighbours(labels + 1)).amax(0).long() - 1   # a core neighbour's id (largest), or -1
    border = on & ~core & (reach >= 0)
    return torch.where(border, reach, labels)


def threshold_features(saliency: torch.Tensor, betas: tuple[float, ...] = BETAS) -> torch.Tensor:
    """(B, H, W) saliency maps -> (B, len(betas), 4) SpaNN features (see :data:`FEATURES`).

    Example:
        >>> threshold_features(torch.rand(2, 16, 16)).shape
        torch.Size([2, 20, 4])
    """
    if saliency.ndim != 3:
        raise ValueError(f"need (B, H, W) saliency maps, got {tuple(saliency.shape)}")
    b, h, w = saliency.shape
    top = saliency.flatten(1).amax(1).view(b, 1, 1)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    out = torch.zeros(b, len(betas), len(FEATURES), dtype=torch.float64)
    for j, beta in enumerate(betas):
        on = saliency >= beta * top
        labels = grid_dbscan(on).flatten(1)                               # (B, H*W)
        image = torch.arange(b)[:, None].expand_as(labels)
        keep = labels >= 0
        lab, img = labels[keep], image[keep]
        y, x = ys.flatten().expand(b, -1)[keep], xs.flatten().expand(b, -1)[keep]
        n_lab = int(lab.max()) + 1 if len(lab) else 0
        n = torch.zeros(n_lab, dtype=torch.float64).index_add_(0, lab, torch.ones_like(y))
        sy, sx = (torch.zeros(n_lab, dtype=torch.float64).index_add_(0, lab, v) for v in (y, x))
        syy = torch.zeros(n_lab, dtype=torch.float64).index_add_(0, lab, y * y + x * x)
        present = n > 0
        spread = (syy - (sy ** 2 + sx ** 2) / n.clamp_min(1)) / n.clamp_min(1)          # mean |p - centroid|^2
        rms = (2 * n / (n - 1).clamp_min(1) * spread).clamp_min(0).sqrt()                 # RMS pairwise distance
        owner = torch.zeros(n_lab, dtype=torch.long)
        owner[lab] = img                                                                   # the image of each label
        owner, rms = owner[present], rms[present]
        k = torch.zeros(b, dtype=torch.float64).index_add_(0, owner, torch.ones_like(rms))
        mean = torch.zeros(b, dtype=torch.float64).index_add_(0, owner, rms) / k.clamp_min(1)
        var = torch.zeros(b, dtype=torch.float64).index_add_(0, owner, (rms - mean[owner]) ** 2) / k.clamp_min(1)
        out[:, j] = torch.stack([k, mean, var.sqrt(), on.flatten(1).sum(1).double()], dim=1)
    return out.float()
