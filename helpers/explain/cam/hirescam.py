"""HiResCAM (Draelos & Carin, 2020): multiply gradient and activation element-wise before summing
channels, so the map is exactly each position's contribution to the score when a linear layer follows."""
from __future__ import annotations

import torch

from helpers.explain.cam.base import BaseCAM


class HiResCAM(BaseCAM):
    """map = ReLU(sum_k dy/dA_k * A_k), without Grad-CAM's spatial averaging of the gradient.

    Example:
        >>> maps = HiResCAM(model, "blocks.2")(images)       # doctest: +SKIP
    """

    def compute(self, images, activations, grads, targets) -> torch.Tensor:
        return (grads * activations).sum(dim=1)  # (B, C, h, w) -> (B, h, w)
