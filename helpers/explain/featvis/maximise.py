"""Activation maximisation: regularisers (jitter, blur, total variation, L2), image parameterisations
(sigmoid, Fourier) and the optimisation loop."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from helpers.explain.featvis.objectives import Objective
from helpers.ops.image import gaussian_blur

PARAMS = ("sigmoid", "fourier")
EPS = 1e-3  # keeps pixels away from 0 and 1, where the logit of the sigmoid parameterisation is infinite



# ----------------------------------------------------------------------------------------------------------
# regularisers and the high-frequency measure


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image: mean |vertical step| + mean |horizontal step|, (B,).

    Example:
        >>> total_variation(torch.zeros(2, 3, 8, 8)).tolist()
        [0.0, 0.0]
    """
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    return dy + dx


def l2_penalty(x: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the pixels from mid-grey 0.5, per image (B,): pulls unused pixels to grey."""
    return (x - 0.5).pow(2).mean(dim=(1, 2, 3))


def jitter(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Roll the whole batch by one random (dy, dx), each in [-shift, shift]; a new draw per call."""
    if shift <= 0:
        return x
    dy, dx = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


# ----------------------------------------------------------------------------------------------------------
# parameterisations: the optimiser works on z, the image is x = image_of(z) in (0, 1)


def _fourier_scale(h: int, w: int, device=None) -> torch.Tensor:
    """(h, w//2+1) weights 1/f of the rfft2 bins (DC weighted like the lowest frequency): low frequencies
    get larger steps, which decorrelates neighbouring pixels' updates."""
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    f = torch.sqrt(fy ** 2 + fx ** 2)
    return 1.0 / f.clamp_min(1.0 / max(h, w)) / max(h, w)


def param_of(x: torch.Tensor, param: str = "sigmoid") -> torch.Tensor:
    """The free parameters z whose image is ``x`` (B, 3, H, W) in [0, 1] (pixels clamped to [EPS, 1 - EPS])."""
    _check_param(param)
    z = torch.logit(x.clamp(EPS, 1 - EPS))
    if param == "fourier":
        spec = torch.fft.rfft2(z, norm="ortho") / _fourier_scale(*z.shape[-2:], device=z.device)
        z = torch.view_as_real(spec)  # (B, 3, H, W//2+1, 2)
    return z


def image_of(z: torch.Tensor, param: str = "sigmoid", size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """The image (B, 3, H, W) in (0, 1) of parameters ``z`` (the inverse of :func:`param_of`)."""
    _check_param(param)
    if param == "fourier":
        h = size[0] if size is not None else z.shape[-3]
        w = size[1] if size is not None else 2 * (z.shape[-2] - 1)
        spec = torch.view_as_complex(z.contiguous()) * _fourier_scale(h, w, device=z.device)
        z = torch.fft.irfft2(spec, s=(h, w), norm="ortho")
    return torch.sigmoid(z)


def _check_param(param: str) -> None:
    if param not in PARAMS:
        raise ValueError(f"unknown parameterisation {param!r}; valid: {', '.join(PARAMS)}")


def random_init(n: int, size: int, seed: int = 0, noise: float = 0.02, device=None) -> torch.Tensor:
    """(n, 3, size, size) mid-grey images with a little Gaussian noise: the usual AM starting point."""
    g = torch.Generator().manual_seed(seed)
    return (0.5 + noise * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1).to(device)


# ----------------------------------------------------------------------------------------------------------
# the optimiser


@dataclass
class AMConfig:
    """Activation maximisation settings. ``AMConfig.plain()`` switches every regulariser off.

    steps, lr: Adam steps on the parameters and their learning rate.
    jitter: the image is rolled by up to this many pixels (fresh each step) before the model sees it.
    blur_sigma, blur_every: Gaussian-blur the image every ``blur_every`` steps (sigma 0 = never).
    tv, l2: weights of total variation and of the L2 pull to grey in the loss (per image).
    param: "sigmoid" (one free number per pixel) or "fourier" (1/f-scaled spectrum, then a sigmoid).
    seed: seeds the jitter draws.
    """

    steps: int = 200
    lr: float = 0.05
    jitter: int = 4
    blur_sigma: float = 0.5
    blur_every: int = 4
    tv: float = 50.0
    l2: float = 5.0
    param: str = "sigmoid"
    seed: int = 0

    def __post_init__(self) -> None:
        _check_param(self.param)
        if self.steps < 1 or self.lr <= 0 or self.blur_every < 1:
            raise ValueError(f"steps and blur_every must be >= 1 and lr > 0, got steps={self.steps}, "
                             f"blur_every={self.blur_every}, lr={self.lr}")
        if min(self.jitter, self.blur_sigma, self.tv, self.l2) < 0:
            raise ValueError("jitter, blur_sigma, tv and l2 must be non-negative")

    @classmethod
    def plain(cls, **overrides) -> "AMConfig":
        """No regularisers at all: plain gradient ascent on the pixels."""
        return cls(**{"jitter": 0, "blur_sigma": 0.0, "tv": 0.0, "l2": 0.0, **overrides})

    def but(self, **overrides) -> "AMConfig":
        """A copy with some fields changed, e.g. ``config.but(tv=0)``."""
        return replace(self, **overrides)


@dataclass
class AMResult:
    """images: (B, 3, H, W) in [0, 1]; activations: (B,) the objective on them (no jitter);
    history: (steps, B) the objective as seen by the optimiser (on the jittered image) at every step."""

    images: torch.Tensor
    activations: torch.Tensor
    history: torch.Tensor


def optimise(objective: Objective, init: torch.Tensor, config: Optional[AMConfig] = None) -> AMResult:
    """Activation maximisation: gradient ascent from ``init`` (B, 3, H, W) in [0, 1] with the regularisers.

    Each step: x = image_of(z); loss = -sum(objective(jitter(x))) + tv * sum(TV(x)) + l2 * sum(L2(x));
    an Adam step on z; every ``blur_every`` steps the image is blurred and z re-encoded. The images of a batch
    are independent (the loss is a sum over images) apart from sharing one jitter draw per step.

    Example:
        >>> score = lambda x: x[:, 0].mean(dim=(1, 2)) - x[:, 1].mean(dim=(1, 2))   # "red, not green"
        >>> out = optimise(score, random_init(2, 8), AMConfig.plain(steps=50, lr=0.1))
        >>> bool((out.activations > 0.5).all())
        True
    """
    config = config or AMConfig()
    if init.dim() != 4 or init.shape[1] != 3:
        raise ValueError(f"init must be images (B, 3, H, W), got shape {tuple(init.shape)}")
    size = tuple(init.shape[-2:])
    gen = torch.Generator().manual_seed(config.seed)
    z = param_of(init.detach(), config.param).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=config.lr)
    history = []
    for step in range(config.steps):
        x = image_of(z, config.param, size)  # (B, 3, H, W)
        act = objective(jitter(x, config.jitter, gen))  # (B,)
        loss = -act.sum()
        if config.tv:
            loss = loss + config.tv * total_variation(x).sum()
        if config.l2:
            loss = loss + config.l2 * l2_penalty(x).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(act.detach())
        if config.blur_sigma and (step + 1) % config.blur_every == 0:
            with torch.no_grad():  # blur in image space, then re-encode (Adam's moments are kept)
                z.copy_(param_of(gaussian_blur(image_of(z, config.param, size), config.blur_sigma), config.param))
    with torch.no_grad():
        images = image_of(z, config.param, size)
        final = objective(images)
    return AMResult(images, final, torch.stack(history))
