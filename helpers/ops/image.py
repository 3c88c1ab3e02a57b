"""Image operations shared by the lessons: a Gaussian blur (feature visualisation regularises with it; deletion
curves replace removed pixels by a blurred copy) and spectra (high-frequency energy, the generator's checkerboard).

Example:
    >>> x = torch.rand(2, 3, 16, 16)
    >>> gaussian_blur(x, 1.0).shape, log_spectrum(x).shape
    (torch.Size([2, 3, 16, 16]), torch.Size([2, 16, 16]))
"""
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


def radial_frequency(h: int, w: int, device=None) -> torch.Tensor:
    """(h, w) spatial frequency of each FFT bin as a fraction of the Nyquist frequency (0 = DC, ~1.41 = corner)."""
    fy = torch.fft.fftfreq(h, device=device).abs()[:, None]  # cycles per pixel, Nyquist = 0.5
    fx = torch.fft.fftfreq(w, device=device).abs()[None, :]
    return torch.sqrt(fy ** 2 + fx ** 2) / 0.5


def high_frequency_energy(x: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Fraction of each image's (mean-removed) power spectrum above ``cutoff`` x Nyquist, (B,) in [0, 1].

    A flat image gives 0; white noise gives about 1 - pi/4 * cutoff^2 (the area outside the cutoff circle).

    Example:
        >>> noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> round(high_frequency_energy(noise).item(), 2)     # 1 - pi/4 * 0.25**2 = 0.95
        0.95
    """
    if not 0 < cutoff < 1.5:
        raise ValueError(f"cutoff is a fraction of the Nyquist frequency in (0, 1.5), got {cutoff}")
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)  # (B, C, H, W)
    high = radial_frequency(*x.shape[-2:], device=x.device) > cutoff
    return (power * high).sum(dim=(1, 2, 3)) / power.sum(dim=(1, 2, 3)).clamp_min(1e-12)


def log_spectrum(images: torch.Tensor) -> torch.Tensor:
    """log |FFT| of each image's grey level, mean removed: (B, H, W), zero frequency at [0, 0], Nyquist at [H//2].

    A stride-2 upsampler's checkerboard shows up at the Nyquist frequencies ``[H//2, W//2]``, ``[H//2, 0]`` and
    ``[0, W//2]``; a stride-4 one also at the quarter frequencies.
    """
    grey = images.mean(1)  # (B, H, W)
    grey = grey - grey.mean((1, 2), keepdim=True)
    return torch.fft.fft2(grey).abs().clamp_min(1e-8).log()
