"""Grad-CAM++ (Chattopadhay et al., 2018): positive gradients weighted per position by alpha, the
closed form of eq. 19 with exp(score) as the output (so higher derivatives are powers of the gradient)."""
from __future__ import annotations

import torch

from helpers.explain.cam.base import BaseCAM

EPS = 1e-6  # keeps alpha finite where the denominator vanishes (the value pytorch-grad-cam uses)


def plusplus_weights(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights from activations and gradients, both (B, C, h, w) -> (B, C).

    ``alpha = g^2 / (2 g^2 + sum_ab A_ab * g^3)`` (0 where g = 0); ``w_k = sum_ij alpha_kij ReLU(g_kij)``.
    The closed form assumes non-negative activations (a layer after a ReLU): where the sum of a
    channel is negative the denominator can change sign and alpha with it.

    Example:
        >>> plusplus_weights(torch.rand(2, 3, 4, 4), torch.randn(2, 3, 4, 4)).shape
        torch.Size([2, 3])
    """
    g2 = grads.pow(2)                                                   # (B, C, h, w)
    sum_a = activations.flatten(2).sum(dim=2)[..., None, None]          # (B, C, 1, 1)
    alpha = g2 / (2 * g2 + sum_a * g2 * grads + EPS)
    alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
    return (alpha * grads.clamp_min(0)).flatten(2).sum(dim=2)           # (B, C)


class GradCAMPlusPlus(BaseCAM):
    """Positive gradients weighted per position (:func:`plusplus_weights`); map = ReLU(sum_k w_k A_k).

    Example:
        >>> maps = GradCAMPlusPlus(model, "blocks.2")(images)   # doctest: +SKIP
    """

    def weights(self, images, activations, grads, targets) -> torch.Tensor:
        return plusplus_weights(activations, grads)
