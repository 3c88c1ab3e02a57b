"""Layer-CAM (Jiang et al., 2021): every position weighted by its own positive gradient, which keeps
fine detail at earlier (higher-resolution) layers where Grad-CAM's averaged weights blur it."""
from __future__ import annotations

import torch

from helpers.explain.cam.base import BaseCAM


class LayerCAM(BaseCAM):
    """map = ReLU(sum_k ReLU(dy/dA_k) * A_k).

    Example:
        >>> maps = LayerCAM(model, "blocks.1")(images)       # doctest: +SKIP
    """

    def compute(self, images, activations, grads, targets) -> torch.Tensor:
        return (grads.clamp_min(0) * activations).sum(dim=1)  # (B, h, w)
