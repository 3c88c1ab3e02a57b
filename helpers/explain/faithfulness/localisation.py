"""Saliency maps against ground-truth zones: the pointing game and its chance level, energy in a zone,
and maps turned into masks (threshold IoU, seed precision)."""
from __future__ import annotations

from typing import Sequence, Union

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

