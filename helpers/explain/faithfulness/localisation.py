"""Saliency maps against ground-truth zones: the pointing game and its chance level, energy in a zone,
and maps turned into masks (threshold IoU, seed precision).

Baselines. A uniformly random point hits a zone as often as the zone's area (:func:`pointing_chance`), but
objects and generated regions tend to sit near the middle of an image, so a map that always points at the
centre does much better than that. A map must beat the baselines that know this: the **centre prior**
(:func:`mask_prior`: how often each pixel lies on an object in other images, used as one constant map; or
:func:`centre_map`, a Gaussian bump, when there are no masks to average) and the map scored against
**another image's zone** (which keeps the statistics of maps and zones and breaks only their pairing).
:func:`pointing_baselines` and :func:`energy_baselines` compute them all at once.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from helpers.explain.cam.maps import check_masks, normalize, to_size

EPS = 1e-12  # guards divisions by an all-zero map



def dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow bool masks (B, H, W) by ``radius`` pixels (a square neighbourhood, Chebyshev distance).

    Example:
        >>> m = torch.zeros(1, 5, 5, dtype=torch.bool); m[0, 2, 2] = True
        >>> int(dilate(m, 1).sum())
        9
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0:
        return masks.bool()
    return F.max_pool2d(masks.float()[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """Hit (True) when the map's maximum, at mask resolution, lies within ``tolerance`` px of the mask. (B,) bool.

    Zhang et al. (2016) count a hit within 15 px at 224 px (about 7 % of the side). Ties: the first maximum.

    Example:
        >>> maps = torch.zeros(1, 4, 4); maps[0, 0, 0] = 1
        >>> masks = torch.zeros(1, 4, 4, dtype=torch.bool); masks[0, 1, 1] = True
        >>> pointing_game(maps, masks).item(), pointing_game(maps, masks, tolerance=1).item()
        (False, True)
    """
    masks = check_masks(maps, masks)
    peak = to_size(maps, masks.shape[-2:]).flatten(1).argmax(1)                     # (B,)
    return dilate(masks, tolerance).flatten(1).gather(1, peak[:, None])[:, 0]


def pointing_chance(masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """The pointing game's chance level per image: the area fraction of the dilated mask, (B,).

    Example:
        >>> pointing_chance(torch.ones(2, 4, 4, dtype=torch.bool))
        tensor([1., 1.])
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must be (B, H, W), got {tuple(masks.shape)}")
    return dilate(masks, tolerance).flatten(1).float().mean(1)


def mask_prior(masks: torch.Tensor) -> torch.Tensor:
    """The centre prior: how often each pixel lies in the zone, over masks (B, H, W) -> (H, W) in [0, 1].

    Averaged over *training* masks and used as the same map for every test image, it knows where objects
    usually are and nothing about the image at hand. Its peak is the pixel most often on an object, so no
    constant map wins the pointing game more often on images drawn like those; and it has no width to choose.

    Example:
        >>> masks = torch.zeros(4, 3, 3, dtype=torch.bool); masks[:, 1, 1] = True; masks[0, 0, 0] = True
        >>> mask_prior(masks)
        tensor([[0.2500, 0.0000, 0.0000],
                [0.0000, 1.0000, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    if masks.ndim != 3 or len(masks) == 0:
        raise ValueError(f"masks must be (B, H, W) with B >= 1, got {tuple(masks.shape)}")
    return masks.float().mean(0)


def centre_map(size: Sequence[int], sigma: float = 0.25) -> torch.Tensor:
    """A Gaussian bump at the centre of an (H, W) grid, std ``sigma`` times each side, peak 1: a constant map
    for "objects sit near the middle" when no masks are at hand to make a :func:`mask_prior`.

    Example:
        >>> m = centre_map((4, 5))
        >>> m.shape, bool(m[1, 2] == m.max() == m[2, 2]), m[0, 0].item() < 0.2
        (torch.Size([4, 5]), True, True)
    """
    if len(size) != 2 or min(size) < 1 or sigma <= 0:
        raise ValueError(f"need size (H, W) >= 1 and sigma > 0, got {tuple(size)}, {sigma}")
    h, w = size
    y = (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) / (sigma * h)
    x = (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) / (sigma * w)
    return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / 2)


def _constant(prior: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if prior.ndim != 2:
        raise ValueError(f"prior must be one (H, W) map, e.g. mask_prior(train_masks); got {tuple(prior.shape)}")
    return prior.to(like.device).expand(len(like), *prior.shape)


def pointing_baselines(maps: torch.Tensor, masks: torch.Tensor, prior: torch.Tensor, tolerance: int = 0,
                       shift: int = 1) -> dict[str, torch.Tensor]:
    """The pointing-game hits a map has to beat, per image, (B,) float each:

    ``"uniform"``: a random point (the dilated zone's area, :func:`pointing_chance`); ``"centre_prior"``: the
    constant map ``prior`` (H, W), e.g. :func:`mask_prior` of training masks; ``"other_image"``: ``maps``
    against the zone of the image ``shift`` places earlier in the batch.

    Example:
        >>> masks = torch.zeros(2, 4, 4, dtype=torch.bool); masks[:, 1:3, 1:3] = True
        >>> b = pointing_baselines(torch.rand(2, 4, 4), masks, centre_map((4, 4)))
        >>> b["uniform"].tolist(), b["centre_prior"].tolist()
        ([0.25, 0.25], [1.0, 1.0])
    """
    masks = check_masks(maps, masks)
    return {
        "uniform": pointing_chance(masks, tolerance),
        "centre_prior": pointing_game(_constant(prior, maps), masks, tolerance).float(),
        "other_image": pointing_game(maps, masks.roll(shift, 0), tolerance).float(),
    }


def energy_baselines(maps: torch.Tensor, masks: torch.Tensor, prior: Optional[torch.Tensor] = None,
                     shift: int = 1) -> dict[str, torch.Tensor]:
    """The energy shares (:func:`energy_in_zone`) a map has to beat, per image, (B,) each:

    ``"uniform"``: the zone's area; ``"centre_prior"``: the constant map ``prior`` (if given); ``"other_image"``:
    ``maps`` in the zone of another image. The last one keeps each map's own spread, which matters: the share
    rewards concentration (a single bright dot at the prior's peak scores as often as that peak is on the object).

    Example:
        >>> zone = torch.zeros(2, 2, 2, dtype=torch.bool); zone[:, 0, 0] = True
        >>> energy_baselines(torch.ones(2, 2, 2), zone)["uniform"]
        tensor([0.2500, 0.2500])
    """
    masks = check_masks(maps, masks)
    out = {"uniform": masks.flatten(1).float().mean(1)}
    if prior is not None:
        out["centre_prior"] = energy_in_zone(_constant(prior, maps), masks)
    out["other_image"] = energy_in_zone(maps, masks.roll(shift, 0))
    return out


def energy_in_zone(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's (non-negative) mass inside the zone: sum_zone L / sum L, (B,). Chance = zone area.

    Negative map values are clipped to 0 first (a ReLU'd CAM is unchanged). An all-zero map gives 0.

    Example:
        >>> maps = torch.ones(1, 2, 2); zone = torch.tensor([[[True, False], [False, False]]])
        >>> energy_in_zone(maps, zone)
        tensor([0.2500])
    """
    masks = check_masks(maps, masks)
    m = to_size(maps, masks.shape[-2:]).clamp_min(0).flatten(1)                      # (B, H*W)
    return (m * masks.flatten(1)).sum(1) / m.sum(1).clamp_min(EPS)


def threshold_iou(maps: torch.Tensor, masks: torch.Tensor, thresholds: Union[Sequence[float], torch.Tensor]
                  ) -> torch.Tensor:
    """IoU of the region ``minmax(map) > t`` with the mask, for every threshold t, (B, T).

    The maps are min-max normalised per image at their own resolution (``helpers.explain.cam.normalize``), then
    resized to the masks.

    Example:
        >>> maps = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]); masks = maps.bool()
        >>> threshold_iou(maps, masks, [0.5])
        tensor([[1.]])
    """
    masks = check_masks(maps, masks)
    t = torch.as_tensor(thresholds, dtype=torch.float32, device=maps.device).flatten()
    unit = to_size(normalize(maps), masks.shape[-2:]).flatten(1)                        # (B, H*W)
    fg = unit[:, None, :] > t[None, :, None]                                          # (B, T, H*W)
    m = masks.flatten(1)[:, None, :]
    inter = (fg & m).sum(2).float()
    union = (fg | m).sum(2).float()
    return inter / union.clamp_min(1)


def seed_precision(maps: torch.Tensor, masks: torch.Tensor, fg: float = 0.5, bg: float = 0.2
                   ) -> dict[str, torch.Tensor]:
    """Seed areas from normalised maps: foreground ``> fg``, background ``< bg``, the rest 'ignore'.

    Returns per-image tensors (B,): ``fg_precision`` (share of the foreground seed on the mask),
    ``bg_precision`` (share of the background seed off the mask), ``fg_recall`` (share of the mask
    covered by the foreground seed) and ``ignored`` (share of pixels in neither seed). An empty seed
    scores precision 0.

    Example:
        >>> maps = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
        >>> seed_precision(maps, maps.bool())["fg_precision"]
        tensor([1.])
    """
    if not 0.0 <= bg <= fg <= 1.0:
        raise ValueError(f"need 0 <= bg <= fg <= 1, got fg={fg}, bg={bg}")
    masks = check_masks(maps, masks)
    unit = to_size(normalize(maps), masks.shape[-2:]).flatten(1)                        # (B, H*W)
    m = masks.flatten(1)
    fg_seed, bg_seed = unit > fg, unit < bg
    share = lambda a, b: (a & b).sum(1).float() / b.sum(1).clamp_min(1).float()  # noqa: E731 - |a&b| / |b|
    return {
        "fg_precision": share(m, fg_seed),
        "bg_precision": share(~m, bg_seed),
        "fg_recall": share(fg_seed, m),
        "ignored": (~fg_seed & ~bg_seed).float().mean(1),
    }

