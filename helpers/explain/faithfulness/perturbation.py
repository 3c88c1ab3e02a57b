"""Deletion and insertion curves (RISE, Petsiuk et al. 2018): remove or restore pixels in a map's order and
record the target class probability; their area; a random order to compare with."""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from helpers.explain.cam.maps import check_maps, to_size
from helpers.explain.targets import check_targets
from helpers.ops.image import gaussian_blur

MODES = ("deletion", "insertion")
BASELINES = ("blur", "mean", "zero")



def baseline_images(images: torch.Tensor, kind: Union[str, torch.Tensor] = "blur", sigma: float = 5.0) -> torch.Tensor:
    """What a removed pixel becomes: ``"blur"`` (Gaussian, sigma px), ``"mean"`` (each image's mean colour),
    ``"zero"``, or a tensor broadcastable to ``images``.

    Example:
        >>> baseline_images(torch.ones(1, 3, 8, 8), "mean").unique()
        tensor([1.])
    """
    if isinstance(kind, torch.Tensor):
        return kind.to(images).expand_as(images)
    if kind == "blur":
        if sigma <= 0:
            raise ValueError(f"a blur baseline needs sigma > 0, got {sigma}")
        return gaussian_blur(images, sigma, radius_sigmas=2.0)
    if kind == "mean":
        return images.mean((2, 3), keepdim=True).expand_as(images)
    if kind == "zero":
        return torch.zeros_like(images)
    raise ValueError(f"unknown baseline {kind!r}; valid: {list(BASELINES)} or a tensor")


@torch.no_grad()
def perturbation_curve(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: Union[torch.Tensor, Sequence[int]],
    mode: str = "deletion",
    *,
    steps: int = 16,
    baseline: Union[str, torch.Tensor] = "blur",
    batch_size: int = 256,
) -> torch.Tensor:
    """Target-class probability as pixels are deleted (or inserted) in the order of the map, highest first.

    Step ``i`` of ``steps`` has the top ``round(i * H * W / steps)`` pixels changed: deletion replaces them
    in ``images`` by the baseline; insertion starts from the baseline and pastes them back from ``images``.
    A faithful map makes the deletion curve fall fast (low AUC) and the insertion curve rise fast (high AUC).

    Args:
        model: classifier returning logits (B, K), in eval mode.
        images: (B, C, H, W). maps: (B, h, w), resized to (H, W). targets: (B,) class ids.
        mode: "deletion" or "insertion". baseline: see :func:`baseline_images`.
        steps: number of steps (the curve has ``steps + 1`` points, from 0 to all pixels).
        batch_size: perturbed images per forward pass.

    Returns:
        (B, steps + 1) probabilities of each image's target class.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
        >>> perturbation_curve(net, torch.rand(2, 3, 8, 8), torch.rand(2, 4, 4), [0, 1], steps=4).shape
        torch.Size([2, 5])
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {list(MODES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if images.ndim != 4 or maps.shape[0] != images.shape[0]:
        raise ValueError(f"images must be (B, C, H, W) with one map each; got images {tuple(images.shape)}, "
                         f"maps {tuple(maps.shape)}")
    b, _, h, w = images.shape
    targets = check_targets(targets, b, device=images.device)
    targets = check_targets(targets, b, n_classes=model(images[:1]).shape[-1])  # one image tells the class count
    saliency = to_size(maps.to(images.device), (h, w)).flatten(1)                      # (B, H*W)
    # rank[b, p] = place of pixel p in the order (0 = most salient); ties broken by a stable sort
    rank = saliency.argsort(dim=1, descending=True, stable=True).argsort(dim=1).view(b, 1, h, w)  # (B, 1, H, W)
    base = baseline_images(images, baseline)
    counts = [round(i * h * w / steps) for i in range(steps + 1)]
    src, dst = (images, base) if mode == "deletion" else (base, images)  # pixels in the top k come from dst

    probs = torch.empty(b, steps + 1, device=images.device)
    per_chunk = max(1, batch_size // (steps + 1))  # images per forward, each with all its steps
    for start in range(0, b, per_chunk):
        sl = slice(start, start + per_chunk)
        k = torch.tensor(counts, device=images.device).view(1, -1, 1, 1, 1)           # (1, S, 1, 1, 1)
        chosen = rank[sl, None] < k                                                     # (b, S, 1, H, W)
        batch = torch.where(chosen, dst[sl, None], src[sl, None])                       # (b, S, C, H, W)
        logits = model(batch.flatten(0, 1))                                             # (b*S, K)
        p = logits.softmax(1).view(-1, steps + 1, logits.shape[1])
        probs[sl] = p.gather(2, targets[sl, None, None].expand(-1, steps + 1, 1))[..., 0]
    return probs


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Area under curves (B, S+1) sampled evenly on [0, 1] (trapezoid rule), (B,).

    Example:
        >>> auc(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        tensor([0.5000, 1.0000])
    """
    if curve.ndim != 2 or curve.shape[1] < 2:
        raise ValueError(f"curve must be (B, S+1) with at least 2 points, got {tuple(curve.shape)}")
    return ((curve[:, 1:] + curve[:, :-1]) / 2).mean(1)


def random_maps(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Uniform random maps with the shape of ``like`` (B, h, w): the 'random order' baseline.

    Example:
        >>> random_maps(torch.zeros(2, 4, 4)).shape
        torch.Size([2, 4, 4])
    """
    check_maps(like, "like")
    g = torch.Generator().manual_seed(seed)
    return torch.rand(like.shape, generator=g).to(like.device)
