"""Adversarial patches: a small square of pixels, pasted anywhere, that pushes a classifier to one class.

:func:`train_patch` optimises one *universal* patch (Brown et al., 2017) for a frozen model: at every step the patch
is pasted at random places on a batch of images and moved by Adam against the cross-entropy of the target class,
its pixels kept in [0, 1]. Only the patch is optimised (``torch.autograd.grad``), so the model's parameters get no
gradients and are never changed.

Example:
    >>> images = torch.zeros(2, 3, 8, 8)
    >>> out, masks = paste(images, torch.ones(3, 2, 2), torch.tensor([[0, 0], [6, 6]]))
    >>> out[0, 0, :3, :3], int(masks[1].sum())
    (tensor([[1., 1., 0.],
            [1., 1., 0.],
            [0., 0., 0.]]), 4)
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.capturing import capture


def random_positions(n: int, image_size: int, patch_size: int,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(n, 2) top-left corners (row, column), uniform over the places where the patch fits inside the image."""
    if not 1 <= patch_size <= image_size:
        raise ValueError(f"patch_size must be between 1 and the image size {image_size}, got {patch_size}")
    return torch.randint(image_size - patch_size + 1, (n, 2), generator=generator)


def paste(images: torch.Tensor, patch: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste ``patch`` (C, s, s) into each image of ``images`` (B, C, H, W) at ``positions`` (B, 2) (row, column).

    Returns ``(patched images, bool masks (B, H, W) of the patch's pixels)``; differentiable in ``patch``.
    """
    b, c, h, w = images.shape
    s = patch.shape[-1]
    if patch.shape != (c, s, s):
        raise ValueError(f"patch must be ({c}, s, s) for images with {c} channels, got {tuple(patch.shape)}")
    if positions.shape != (b, 2) or positions.min() < 0 or (positions[:, 0].max() > h - s) or \
            (positions[:, 1].max() > w - s):
        raise ValueError(f"positions must be (B={b}, 2) corners with the patch inside the {h}x{w} image")
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    top, left = positions[:, 0, None].to(images.device), positions[:, 1, None].to(images.device)
    in_rows = (rows >= top) & (rows < top + s)               # (B, H)
    in_cols = (cols >= left) & (cols < left + s)             # (B, W)
    masks = in_rows[:, :, None] & in_cols[:, None, :]        # (B, H, W)
    # the patch placed on a canvas per image: pad to the image size, then roll to the corner (no Python loop)
    canvas = F.pad(patch, (0, w - s, 0, h - s))[None].expand(b, -1, -1, -1)
    idx_r = (rows[None, :] - top) % h                        # (B, H): which canvas row lands at each image row
    idx_c = (cols[None, :] - left) % w
    placed = canvas.gather(2, idx_r[:, None, :, None].expand(b, c, h, w))
    placed = placed.gather(3, idx_c[:, None, None, :].expand(b, c, h, w))
    return torch.where(masks[:, None], placed, images), masks


def train_patch(model: nn.Module, images: torch.Tensor, target: int, size: int = 12, steps: int = 60,
                batch: int = 32, lr: float = 0.05, seed: int = 0, *, evade: Optional[tuple[str, float]] = None,
                penalty: float = 10.0) -> torch.Tensor:
    """A universal patch (3, size, size) that makes ``model`` predict ``target`` wherever it is pasted.

    ``evade=(layer, bound)`` makes an attacker who knows a max-activation detector: the loss also pays
    ``penalty`` times the amount (relative to ``bound``) by which the channel-summed activation of ``layer``
    exceeds ``bound`` anywhere in the image.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> train_patch(net, torch.rand(8, 3, 16, 16), target=1, size=4, steps=2, batch=4).shape
        torch.Size([3, 4, 4])
    """
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps} and {batch}")
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    patch = torch.rand(images.shape[1], size, size, generator=gen).to(device).requires_grad_(True)
    opt = torch.optim.Adam([patch], lr=lr)
    goal = torch.full((batch,), target, dtype=torch.long, device=device)
    for _ in range(steps):
        pick = torch.randint(len(images), (batch,), generator=gen)
        where = random_positions(batch, images.shape[-1], size, gen)
        with torch.enable_grad():
            x, _ = paste(images[pick].to(device), patch, where)
            if evade is None:
                loss = F.cross_entropy(model(x), goal)
            else:
                with capture(model, evade[0], detach=False) as acts:
                    loss = F.cross_entropy(model(x), goal)
                peak = acts[evade[0]].sum(1).flatten(1).amax(1)          # (B,) each image's saliency maximum
                loss = loss + penalty * F.relu(peak / evade[1] - 1).mean()
            (grad,) = torch.autograd.grad(loss, patch)
        opt.zero_grad()
        patch.grad = grad
        opt.step()
        with torch.no_grad():
            patch.clamp_(0, 1)
    return patch.detach()
