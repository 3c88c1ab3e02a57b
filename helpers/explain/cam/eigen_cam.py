"""Eigen-CAM (Muhammad & Yeasin, 2020): the first principal component of the layer's activations,
projected back onto the positions. Class-agnostic: no targets, no gradients, no logits."""
from __future__ import annotations

import torch

from helpers.explain.cam.base import BaseCAM


def principal_projection(activations: torch.Tensor) -> torch.Tensor:
    """Per image, the positions' projection on the first principal component, sign fixed; (B, C, h, w) -> (B, h, w).

    Positions are the samples and channels the features: R (hw, C), centred per channel. The projection
    R v1 equals sqrt(lambda1) u1 with u1 the top eigenvector of the small Gram matrix R R^T (hw x hw)
    or of R^T R (C x C) -- whichever is smaller; ``eigh`` of it is cheaper and steadier than an SVD.

    Example:
        >>> principal_projection(torch.rand(2, 16, 5, 5)).shape
        torch.Size([2, 5, 5])
    """
    b, c = activations.shape[:2]
    r = activations.reshape(b, c, -1).transpose(1, 2).double()        # (B, hw, C)
    r = r - r.mean(dim=1, keepdim=True)                                # centre every channel
    if r.shape[1] <= c:
        evals, evecs = torch.linalg.eigh(r @ r.transpose(1, 2))        # (B, hw, hw), ascending
        proj = evecs[..., -1] * evals[:, -1:].clamp_min(0).sqrt()      # (B, hw)
    else:
        evals, evecs = torch.linalg.eigh(r.transpose(1, 2) @ r)        # (B, C, C)
        proj = (r @ evecs[..., -1:])[..., 0]                           # (B, hw)
    # An eigenvector's sign is arbitrary (v and -v are both solutions; numpy and torch pick differently),
    # and after the ReLU the wrong sign shows the complement of the object. Orient the component so that
    # it rises where the layer is active overall: positive correlation with the channel-mean activation.
    mean_act = activations.reshape(b, c, -1).mean(dim=1).double()      # (B, hw)
    corr = ((proj - proj.mean(1, keepdim=True)) * (mean_act - mean_act.mean(1, keepdim=True))).sum(1)
    sign = torch.where(corr < 0, -1.0, 1.0).to(proj)
    return (proj * sign[:, None]).reshape(activations.shape[0], *activations.shape[2:]).to(activations.dtype)


class EigenCAM(BaseCAM):
    """map = ReLU(R v1), R the centred (positions x channels) activations, v1 their first principal axis.

    The forward pass stops at the target layer; ``targets`` are ignored.

    Example:
        >>> maps = EigenCAM(model, "blocks.2")(images)       # doctest: +SKIP
    """

    uses_gradients = False
    needs_scores = False

    def compute(self, images, activations, grads, targets) -> torch.Tensor:
        return principal_projection(activations)
