"""Operations on maps once computed: resize to pixels, scale to [0, 1], token sequences to grids."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

NORM_EPS = 1e-7  # the constant pytorch-grad-cam adds before dividing by the maximum


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of maps (B, h, w) to (B, H, W) (``align_corners=False``, as OpenCV's resize).

    Example:
        >>> upsample(torch.rand(2, 4, 4), size=(16, 16)).shape
        torch.Size([2, 16, 16])
    """
    if maps.ndim != 3:
        raise ValueError(f"maps must be (B, h, w), got shape {tuple(maps.shape)}")
    return F.interpolate(maps[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max scaling to [0, 1]; an all-constant map becomes all zeros. (B, h, w) -> (B, h, w).

    Example:
        >>> normalize(torch.tensor([[[1.0, 3.0]]]))
        tensor([[[0., 1.]]])
    """
    flat = maps.flatten(1)
    shifted = flat - flat.amin(dim=1, keepdim=True)
    return (shifted / (shifted.amax(dim=1, keepdim=True) + NORM_EPS)).reshape(maps.shape)


def display(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Maps as pytorch-grad-cam returns them: ReLU, min-max, bilinear to ``size``, ReLU, min-max again.

    The second min-max matters: bilinear interpolation does not keep the exact 0 and 1 of the corners.

    Example:
        >>> display(torch.rand(2, 4, 4), size=(8, 8)).amax().item() <= 1.0
        True
    """
    return normalize(upsample(normalize(maps.clamp_min(0)), size).clamp_min(0))


def tokens_to_grid(height: int, width: int, prefix_tokens: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``reshape_transform`` for ViT-style layers: (B, prefix + h*w, C) -> (B, C, h, w).

    The first ``prefix_tokens`` (CLS, registers) have no position in the image and are dropped.

    Example:
        >>> tokens_to_grid(2, 3)(torch.rand(4, 7, 16)).shape
        torch.Size([4, 16, 2, 3])
    """
    def transform(tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3 or tokens.shape[1] != prefix_tokens + height * width:
            raise ValueError(f"expected tokens (B, {prefix_tokens} + {height}*{width}, C), got {tuple(tokens.shape)}")
        grid = tokens[:, prefix_tokens:]                                  # (B, h*w, C)
        return grid.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
    return transform


def check_maps(maps: torch.Tensor, name: str = "maps") -> None:
    if not isinstance(maps, torch.Tensor) or maps.ndim != 3:
        raise ValueError(f"{name} must be a tensor (B, h, w), got {type(maps).__name__} "
                         f"{tuple(getattr(maps, 'shape', ()))}")


def to_size(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Maps (B, h, w) as float, bilinearly resized to ``size`` = (H, W) if they differ (align_corners=False).

    Example:
        >>> to_size(torch.rand(2, 4, 4), (8, 8)).shape
        torch.Size([2, 8, 8])
    """
    check_maps(maps)
    return maps.float() if tuple(maps.shape[-2:]) == tuple(size) else upsample(maps, size)


def check_masks(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Masks as bool (B, H, W), one per map; maps resized to the masks' size."""
    check_maps(maps)
    if masks.ndim == 2:  # one zone shared by every image (e.g. a fixed corner)
        masks = masks.expand(maps.shape[0], *masks.shape)
    if masks.ndim != 3 or masks.shape[0] != maps.shape[0]:
        raise ValueError(f"masks must be (B, H, W) with B = {maps.shape[0]} maps, or one (H, W) zone; "
                         f"got {tuple(masks.shape)}")
    return masks.bool()
