"""Is a saliency map faithful? Metrics that compare a map with the model's behaviour and with ground truth.

Every function takes saliency maps ``(B, h, w)`` at any resolution (a CAM at its layer's 16x16, or a
pixel map) and resizes them bilinearly to the image / mask size ``(H, W)`` when needed.

* **Perturbation** (RISE, Petsiuk et al. 2018): :func:`perturbation_curve` removes (``"deletion"``) or
  restores (``"insertion"``) pixels in the map's order and records the target class probability;
  :func:`auc` summarises a curve. Compare with a random order (:func:`random_maps`).
* **Localisation against masks**: :func:`pointing_game` (is the map's maximum on the object?),
  :func:`pointing_chance` (the hit rate of a uniformly random point), :func:`energy_in_zone`
  (share of the map's mass inside a zone; chance = the zone's area).
* **Sanity check** (Adebayo et al. 2018): :func:`cascading_randomization` re-initialises layers from
  the output back to the input; :func:`spearman` compares maps before and after.
* **Maps to masks** (weakly supervised segmentation seeds): :func:`threshold_iou` sweeps a threshold
  over min-max normalised maps; :func:`seed_precision` scores foreground / background seed areas.

Example:
    >>> maps = torch.rand(4, 16, 16); masks = torch.rand(4, 64, 64) > 0.5
    >>> energy_in_zone(maps, masks).shape, pointing_game(maps, masks, tolerance=2).dtype
    (torch.Size([4]), torch.bool)
"""
from __future__ import annotations

import copy
from typing import Iterator, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from helpers.cam.maps import normalize, upsample
from helpers.filters import gaussian_blur  # re-exported: faithfulness.gaussian_blur

MODES = ("deletion", "insertion")
BASELINES = ("blur", "mean", "zero")
EPS = 1e-12  # guards divisions by an all-zero map


# ----------------------------------------------------------------------------- shapes
def _check_maps(maps: torch.Tensor, name: str = "maps") -> None:
    if not isinstance(maps, torch.Tensor) or maps.ndim != 3:
        raise ValueError(f"{name} must be a tensor (B, h, w), got {type(maps).__name__} "
                         f"{tuple(getattr(maps, 'shape', ()))}")


def to_size(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Maps (B, h, w) as float, bilinearly resized to ``size`` = (H, W) if they differ (align_corners=False).

    Example:
        >>> to_size(torch.rand(2, 4, 4), (8, 8)).shape
        torch.Size([2, 8, 8])
    """
    _check_maps(maps)
    return maps.float() if tuple(maps.shape[-2:]) == tuple(size) else upsample(maps, size)


def _check_masks(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Masks as bool (B, H, W), one per map; maps resized to the masks' size."""
    _check_maps(maps)
    if masks.ndim == 2:  # one zone shared by every image (e.g. a fixed corner)
        masks = masks.expand(maps.shape[0], *masks.shape)
    if masks.ndim != 3 or masks.shape[0] != maps.shape[0]:
        raise ValueError(f"masks must be (B, H, W) with B = {maps.shape[0]} maps, or one (H, W) zone; "
                         f"got {tuple(masks.shape)}")
    return masks.bool()


# ----------------------------------------------------------------------------- deletion / insertion
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


def _targets(targets: Union[torch.Tensor, Sequence[int]], batch: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(targets, device=device)
    if t.dtype.is_floating_point or t.shape != (batch,):
        raise ValueError(f"targets must be one integer class id per image, shape ({batch},); got {tuple(t.shape)}")
    return t.long()


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
    targets = _targets(targets, b, images.device)
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
    _check_maps(like, "like")
    g = torch.Generator().manual_seed(seed)
    return torch.rand(like.shape, generator=g).to(like.device)


# ----------------------------------------------------------------------------- against masks
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
    masks = _check_masks(maps, masks)
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
    masks = _check_masks(maps, masks)
    m = to_size(maps, masks.shape[-2:]).clamp_min(0).flatten(1)                      # (B, H*W)
    return (m * masks.flatten(1)).sum(1) / m.sum(1).clamp_min(EPS)


# ----------------------------------------------------------------------------- sanity check
def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n along dim 1, ties sharing their mean rank (as scipy.stats.rankdata). (B, n) -> (B, n)."""
    sorted_x = x.sort(1).values.contiguous()
    below = torch.searchsorted(sorted_x, x.contiguous(), right=False)  # values strictly smaller
    upto = torch.searchsorted(sorted_x, x.contiguous(), right=True)    # values smaller or equal
    return (below + upto + 1).double() / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps (B, ...) over their entries, ties averaged, (B,).

    A constant map has no ranking: its correlation is NaN (a randomised model's ReLU'd map is often all
    zero; compare the maps before the ReLU, ``relu=False``).

    Example:
        >>> spearman(torch.tensor([[1.0, 2, 3]]), torch.tensor([[10.0, 30, 20]]))
        tensor([0.5000])
    """
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"a and b must have the same shape (B, ...), got {tuple(a.shape)} and {tuple(b.shape)}")
    ra, rb = _average_ranks(a.flatten(1).float()), _average_ranks(b.flatten(1).float())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return ((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))).float()


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise every parameter under ``module`` in place (``reset_parameters`` where a layer has one,
    which also resets BatchNorm's running statistics), with its own seed; the global RNG is left alone.

    Parameters of layers without ``reset_parameters`` are redrawn from a normal with their current std.

    Example:
        >>> lin = nn.Linear(3, 2); old = lin.weight.clone()
        >>> bool((randomize_(lin, seed=1).weight != old).any())
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
            else:
                with torch.no_grad():
                    for p in sub.parameters(recurse=False):
                        p.normal_(0.0, float(p.std()) if p.numel() > 1 else 1.0)
    return module


def cascading_randomization(model: nn.Module, layers: Sequence[str], seed: int = 0
                            ) -> Iterator[tuple[str, nn.Module]]:
    """Adebayo et al.'s cascading model-parameter randomisation: yield ``(layer, model copy)`` after
    re-initialising ``layers[0]``, then ``layers[0]`` and ``layers[1]``, ... (give them output first).

    ``model`` itself is not changed: one deep copy is randomised step by step, so every stage yields that
    same object (use it before advancing, or deep-copy it to keep it). Stage ``i`` uses seed ``seed + i``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> [name for name, _ in cascading_randomization(net, ["2", "0"])]
        ['2', '0']
    """
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ValueError(f"unknown layer names {unknown}; valid: {[n for n in modules if n][:40]}")
    copied = copy.deepcopy(model)
    copied_modules = dict(copied.named_modules())
    for i, name in enumerate(layers):
        randomize_(copied_modules[name], seed=seed + i)
        yield name, copied


# ----------------------------------------------------------------------------- maps to masks
def threshold_iou(maps: torch.Tensor, masks: torch.Tensor, thresholds: Union[Sequence[float], torch.Tensor]
                  ) -> torch.Tensor:
    """IoU of the region ``minmax(map) > t`` with the mask, for every threshold t, (B, T).

    The maps are min-max normalised per image at their own resolution (``helpers.cam.normalize``), then
    resized to the masks.

    Example:
        >>> maps = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]); masks = maps.bool()
        >>> threshold_iou(maps, masks, [0.5])
        tensor([[1.]])
    """
    masks = _check_masks(maps, masks)
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
    masks = _check_masks(maps, masks)
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


__all__ = [
    "BASELINES", "MODES", "auc", "baseline_images", "cascading_randomization", "dilate", "energy_in_zone",
    "gaussian_blur", "perturbation_curve", "pointing_chance", "pointing_game", "random_maps",
    "randomize_", "seed_precision", "spearman", "threshold_iou", "to_size",
]
