"""Grad-CAM (Selvaraju et al., 2017): channel weights = spatial mean of d score / d activation."""
from __future__ import annotations

import torch

from helpers.explain.cam.base import BaseCAM


class GradCAM(BaseCAM):
    """``w_k = mean_ij dy/dA_kij``; map = ReLU(sum_k w_k A_k).

    Example:
        >>> maps = GradCAM(model, "blocks.2")(images)        # doctest: +SKIP
    """

    def weights(self, images, activations, grads, targets) -> torch.Tensor:
        return grads.flatten(2).mean(dim=2)  # (B, C, h, w) -> (B, C)
