"""Image filters shared by the lessons (feature visualisation regularises with a blur; deletion curves
replace removed pixels by a blurred copy)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_blur(images: torch.Tensor, sigma: float, radius_sigmas: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) images with reflected borders.

    The kernel reaches ``radius_sigmas * sigma`` pixels each side (at least 1, and less than the
    image side, which reflect padding needs). ``sigma = 0`` returns ``images`` unchanged. Torch's
    ``reflect`` is scipy's ``mirror``: the edge pixel is not repeated.

    Example:
        >>> gaussian_blur(torch.rand(2, 3, 32, 32), sigma=2.0).shape
        torch.Size([2, 3, 32, 32])
    """
    if sigma < 0 or radius_sigmas <= 0:
        raise ValueError(f"sigma must be >= 0 and radius_sigmas > 0, got sigma={sigma}, radius_sigmas={radius_sigmas}")
    if sigma == 0:
        return images
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    radius = max(1, min(int(radius_sigmas * sigma), min(images.shape[-2:]) - 1))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()  # (2r+1,), sums to 1 so a constant image stays constant
    c = images.shape[1]
    out = F.pad(images, (radius, radius, radius, radius), mode="reflect")  # (B, C, H+2r, W+2r)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W, per channel
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H -> (B, C, H, W)
