"""Feature visualisation: activation maximisation with regularisers, dataset examples, multifaceted facets.

Activation maximisation (AM) searches for an input image ``x`` in [0, 1] that makes one unit fire:

    x* = argmax_x  a_u(jitter(x)) - tv * TV(x) - l2 * ||x - 0.5||^2,   with a Gaussian blur every few steps

Without the regularisers the optimum is a high-frequency pattern (an adversarial texture); with them it is
smoother and easier to read. *Multifaceted* visualisation (Nguyen, Yosinski & Clune 2016) first clusters the
dataset images that excite the unit most, then starts one AM run from the mean image of each cluster, so each
run shows one "facet" (one kind of input) that the unit responds to.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    >>> score = unit_objective(net, "0", unit=2)           # channel 2 of the conv, averaged over positions
    >>> result = optimise(score, random_init(1, 16, seed=0), AMConfig.plain(steps=20, lr=0.1))
    >>> result.images.shape, bool(result.activations[0] > score(random_init(1, 16, seed=0))[0])
    (torch.Size([1, 3, 16, 16]), True)
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from helpers.capture import capture
from helpers.filters import gaussian_blur  # re-exported: featvis.gaussian_blur

Objective = Callable[[torch.Tensor], torch.Tensor]  # images (B, 3, H, W) in [0, 1] -> scores (B,)
PARAMS = ("sigmoid", "fourier")
EPS = 1e-3  # keeps pixels away from 0 and 1, where the logit of the sigmoid parameterisation is infinite


# ----------------------------------------------------------------------------------------------------------
# objectives and dataset examples


def unit_objective(model: nn.Module, layer: str, unit: Union[int, Sequence[int]],
                   transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Objective:
    """A differentiable score per image: ``layer``'s unit ``unit``.

    For a (B, K) output (logits, pooled features) the score is column ``unit``; for a (B, C, H, W) feature map
    it is channel ``unit`` averaged over all positions. A list of B units scores image i by unit ``unit[i]``
    (to optimise several units in one batch). ``transform`` is applied to the [0, 1] images first
    (e.g. ImageNet normalisation for a pretrained model).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 2))
        >>> unit_objective(net, "0", 1)(torch.ones(4, 3)).shape
        torch.Size([4])
    """
    units = torch.as_tensor(unit, dtype=torch.long)  # () for one unit, (B,) for one unit per image
    if units.dim() > 1:
        raise ValueError(f"unit must be an int or a flat list of ints, got shape {tuple(units.shape)}")

    def score(x: torch.Tensor) -> torch.Tensor:
        x = transform(x) if transform is not None else x
        # detach=False keeps the live tensor so that gradients reach the input; stop=True skips later layers
        with capture(model, layer, detach=False, stop=True) as acts:
            model(x)
        a = acts[layer]
        if a.dim() not in (2, 4):
            raise ValueError(f"layer {layer!r} gives shape {tuple(a.shape)}; expected (B, K) or (B, C, H, W)")
        n = a.shape[1]
        if not all(0 <= u < n for u in units.flatten().tolist()):
            raise ValueError(f"unit {unit} is out of range for layer {layer!r}, which has {n} units (0..{n - 1})")
        if units.dim() == 0:
            picked = a[:, int(units)]  # (B,) or (B, H, W)
        elif len(units) == len(a):
            picked = a[torch.arange(len(a), device=a.device), units.to(a.device)]
        else:
            raise ValueError(f"{len(units)} units for a batch of {len(a)} images: give one unit, or one per image")
        return picked if picked.dim() == 1 else picked.mean(dim=(1, 2))  # (B,)
    return score


@torch.no_grad()
def scores(objective: Objective, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """``objective`` on a dataset in batches, without gradients: (N,) scores on the images' device."""
    return torch.cat([objective(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def top_examples(objective: Objective, images: torch.Tensor, k: int = 8,
                 batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` dataset images that excite the unit most: ``(values (k,), indices (k,))``, highest first.

    Example:
        >>> score = lambda x: x.mean(dim=(1, 2, 3))
        >>> top_examples(score, torch.rand(10, 3, 4, 4), k=3)[1].shape
        torch.Size([3])
    """
    values = scores(objective, images, batch_size)
    if not 1 <= k <= len(values):
        raise ValueError(f"k must be between 1 and the number of images ({len(values)}), got {k}")
    return values.topk(k)


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


# ----------------------------------------------------------------------------------------------------------
# facets: k-means on the top examples' features, one starting image per cluster


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
    """Rows of ``x`` (N, D) projected on their first ``n_components`` principal directions, (N, n_components)."""
    n_components = min(n_components, *x.shape)
    xc = x - x.mean(dim=0)
    _, _, vh = torch.linalg.svd(xc.double(), full_matrices=False)  # vh: (min(N, D), D)
    return (xc.double() @ vh[:n_components].T).float()


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

    images: (N, 3, H, W) the top-activating examples; features: (N, D) their high-level codes (e.g. the
    pooled last-block features).

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


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between all pairs of rows of ``x`` (flattened), e.g. facet images; needs >= 2."""
    if len(x) < 2:
        raise ValueError("need at least two items to compare")
    d = torch.cdist(x.flatten(1).double(), x.flatten(1).double())
    n = len(x)
    return (d.sum() / (n * (n - 1))).item()
