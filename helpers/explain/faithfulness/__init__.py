"""Is a saliency map faithful? Metrics that compare a map with the model's behaviour and with ground truth.

Every function takes saliency maps ``(B, h, w)`` at any resolution (a CAM at its layer's 16x16, or a
pixel map) and resizes them bilinearly to the image / mask size ``(H, W)`` when needed.

* **Perturbation** (RISE, Petsiuk et al. 2018): :func:`perturbation_curve` removes (``"deletion"``) or
  restores (``"insertion"``) pixels in the map's order and records the target class probability;
  :func:`auc` summarises a curve. Compare with a random order (:func:`random_maps`).
* **Localisation against masks**: :func:`pointing_game` (is the map's maximum on the object?),
  :func:`pointing_chance` (the hit rate of a uniformly random point), :func:`energy_in_zone`
  (share of the map's mass inside a zone; chance = the zone's area). Objects sit near the centre more
  often than a random point does, so compare with the stronger baselines too: the centre prior
  (:func:`mask_prior`, :func:`centre_map`) and another image's zone (:func:`pointing_baselines`,
  :func:`energy_baselines`).
* **Sanity check** (Adebayo et al. 2018): :func:`cascading_randomization` re-initialises layers from
  the output back to the input; :func:`helpers.ops.metrics.spearman` compares maps before and after.
* **Maps to masks** (weakly supervised segmentation seeds): :func:`threshold_iou` sweeps a threshold
  over min-max normalised maps; :func:`seed_precision` scores foreground / background seed areas.

Example:
    >>> import torch
    >>> maps = torch.rand(4, 16, 16); masks = torch.rand(4, 64, 64) > 0.5
    >>> energy_in_zone(maps, masks).shape, pointing_game(maps, masks, tolerance=2).dtype
    (torch.Size([4]), torch.bool)
"""
from __future__ import annotations

from helpers.explain.faithfulness.localisation import (centre_map, dilate, energy_baselines, energy_in_zone,
                                                       mask_prior, pointing_baselines, pointing_chance,
                                                       pointing_game, seed_precision, threshold_iou)
from helpers.explain.faithfulness.perturbation import BASELINES, MODES, auc, baseline_images, perturbation_curve, random_maps
from helpers.explain.faithfulness.randomisation import cascading_randomization, randomize_

__all__ = [
    "BASELINES", "MODES", "auc", "baseline_images", "cascading_randomization", "centre_map", "dilate",
    "energy_baselines", "energy_in_zone", "mask_prior", "perturbation_curve", "pointing_baselines",
    "pointing_chance", "pointing_game", "random_maps", "randomize_", "seed_precision", "threshold_iou",
]
