"""CAM (Zhou et al., 2016): for a network that ends in global average pooling and one linear layer,
the class's weights in that layer weight the channels of the last feature map. No gradients needed."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from helpers.explain.cam.base import BaseCAM, ReshapeTransform
from helpers.core.names import Layer, resolve_layer


class CAM(BaseCAM):
    """map = ReLU(sum_k W[c, k] A_k), W the weight of the linear classifier after pooling.

    Args:
        fc: name of that linear layer; default the model's last ``nn.Linear``.

    Under GAP + linear, dy/dA_kij = W[c, k] / (h w) at every position, so CAM = h*w * Grad-CAM.

    Example:
        >>> maps = CAM(model, "blocks.2", fc="head")(images)   # doctest: +SKIP
    """

    needs_scores = True     # targets default to the predicted class
    uses_gradients = False

    def __init__(self, model: nn.Module, target_layer: Layer, fc: Optional[Layer] = None,
                 reshape_transform: Optional[ReshapeTransform] = None):
        super().__init__(model, target_layer, reshape_transform)
        modules = dict(model.named_modules())
        if fc is None:
            linears = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError("CAM needs a linear classifier after global pooling; the model has no nn.Linear")
            fc = linears[-1]
        fc = resolve_layer(model, fc, "fc")
        if not isinstance(modules[fc], nn.Linear):
            raise ValueError(f"fc={fc!r} is a {type(modules[fc]).__name__}, not an nn.Linear")
        self.fc = fc
        self.fc_weight = modules[fc].weight  # (K, C)

    def weights(self, images, activations, grads, targets) -> torch.Tensor:
        if self.fc_weight.shape[1] != activations.shape[1]:
            raise ValueError(f"{self.fc!r} takes {self.fc_weight.shape[1]} features but {self.target_layer!r} has "
                             f"{activations.shape[1]} channels: CAM needs the layer right before pooling")
        return self.fc_weight.detach()[targets]  # (B, C)
