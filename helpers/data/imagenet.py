"""ImageNet conventions for the pretrained image models: the class names and the input normalisation.

Example:
    >>> len(imagenet_classes()), IMAGENET_MEAN
    (1000, (0.485, 0.456, 0.406))
    >>> imagenet_preprocess(np.zeros((100, 120, 3), np.uint8)).shape
    torch.Size([1, 3, 224, 224])
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.core.paths import DATA_DIR

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per-channel RGB mean of the ImageNet training images, in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, shipped with the project (``data/imagenet_classes.txt``)."""
    return (DATA_DIR / "imagenet_classes.txt").read_text().splitlines()


def imagenet_preprocess(image, size: int = 224) -> torch.Tensor:
    """An RGB image (H, W, 3) uint8 array or (3, H, W) float tensor in [0, 1] -> (1, 3, size, size), normalised.

    Example:
        >>> imagenet_preprocess(np.zeros((100, 120, 3), np.uint8)).shape
        torch.Size([1, 3, 224, 224])
    """
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    x = image.float()[None] if image.dim() == 3 else image.float()
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> ImageNet-normalised input (per channel ``(x - mean) / std``).

    Example:
        >>> normalize(torch.ones(1, 3, 2, 2))[0, :, 0, 0]
        tensor([2.2489, 2.4286, 2.6400])
    """
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`normalize`: ImageNet-normalised (B, 3, H, W) -> RGB in [0, 1] (not clipped)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x * std + mean
