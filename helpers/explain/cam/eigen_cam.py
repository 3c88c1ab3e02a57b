"""Eigen-CAM (Muhammad & Yeasin, 2020): the first principal component of the layer's activations,
projected back onto the positions. Class-agnostic: no targets, no gradients, no logits.

Two variants differ in one step. The paper takes the SVD of the activation matrix R (positions x channels)
as it is, *uncentred* (``center=False``); pytorch-grad-cam subtracts each channel's mean over the positions
first (``center=True``, the default here, so that ``EigenCAM`` equals the library's maps up to sign). After a
ReLU the uncentred first component has one sign everywhere and follows where the layer is active overall; the
centred one is the main direction of *variation* around the mean, zero on average, and its ReLU keeps the
positive half.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from helpers.core.names import Layer
from helpers.explain.cam.base import BaseCAM, ReshapeTransform


def principal_projection(activations: torch.Tensor, center: bool = True) -> torch.Tensor:
    """Per image, the positions' projection on the first principal axis, sign fixed; (B, C, h, w) -> (B, h, w).

    Positions are the samples and channels the features: R (hw, C), with each channel's mean over the
    positions subtracted when ``center`` (pytorch-grad-cam) and as it is otherwise (the paper). The projection
    R v1 equals sqrt(lambda1) u1 with u1 the top eigenvector of the small Gram matrix R R^T (hw x hw) or of
    R^T R (C x C) -- whichever is smaller; ``eigh`` of it is cheaper and steadier than an SVD.

    A singular vector's sign is arbitrary. Centred, the projection sums to zero, so it is oriented to rise where
    the layer is active: positive correlation with the channel-mean activation. Uncentred, it is oriented to
    have a positive sum (for non-negative activations it is then >= 0 everywhere).

    Example:
        >>> a = torch.rand(2, 16, 5, 5)
        >>> principal_projection(a).shape, bool((principal_projection(a, center=False) >= 0).all())
        (torch.Size([2, 5, 5]), True)
        >>> abs(principal_projection(a).sum().item()) < 1e-5   # centred: zero on average
        True
    """
    b, c = activations.shape[:2]
    r = activations.reshape(b, c, -1).transpose(1, 2).double()        # (B, hw, C)
    if center:
        r = r - r.mean(dim=1, keepdim=True)                            # centre every channel
    if r.shape[1] <= c:
        evals, evecs = torch.linalg.eigh(r @ r.transpose(1, 2))        # (B, hw, hw), ascending
        proj = evecs[..., -1] * evals[:, -1:].clamp_min(0).sqrt()      # (B, hw)
    else:
        evals, evecs = torch.linalg.eigh(r.transpose(1, 2) @ r)        # (B, C, C)
        proj = (r @ evecs[..., -1:])[..., 0]                           # (B, hw)
    if center:
        # after the ReLU the wrong sign would show the complement of the object
        mean_act = activations.reshape(b, c, -1).mean(dim=1).double()  # (B, hw)
        score = ((proj - proj.mean(1, keepdim=True)) * (mean_act - mean_act.mean(1, keepdim=True))).sum(1)
    else:
        score = proj.sum(1)
    sign = torch.where(score < 0, -1.0, 1.0).to(proj)
    return (proj * sign[:, None]).reshape(activations.shape[0], *activations.shape[2:]).to(activations.dtype)


class EigenCAM(BaseCAM):
    """map = ReLU(R v1), R the (positions x channels) activations, v1 their first principal axis.

    Args:
        center: subtract each channel's mean over the positions before the decomposition (default True, as
            pytorch-grad-cam does); ``False`` is the paper's uncentred SVD.

    The forward pass stops at the target layer; ``targets`` are ignored.

    Example:
        >>> maps = EigenCAM(model, "blocks.2")(images)                  # doctest: +SKIP
        >>> paper = EigenCAM(model, "blocks.2", center=False)(images)   # doctest: +SKIP
    """

    uses_gradients = False
    needs_scores = False

    def __init__(self, model: nn.Module, target_layer: Layer, reshape_transform: Optional[ReshapeTransform] = None,
                 center: bool = True):
        super().__init__(model, target_layer, reshape_transform)
        self.center = bool(center)

    def __repr__(self) -> str:
        return f"EigenCAM(target_layer={self.target_layer!r}, center={self.center})"

    def compute(self, images, activations, grads, targets) -> torch.Tensor:
        return principal_projection(activations, center=self.center)
