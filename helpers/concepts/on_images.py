"""An image classifier that takes pictures as they come: ``OnImages(net)`` feeds ``net.prepare`` into ``net.model``.

TCAV (``helpers.concepts.tcav``) and Captum's ``TCAV`` call the model on the concept and input images directly. A
user's model may expect another input size or ImageNet normalisation; ``OnImages`` does that step inside its
forward and keeps the model's own module names (it holds the same child modules), so the layer names of
``helpers.zoo.open_model`` work unchanged and hooks on them fire. Nothing is copied and the model is not changed.

Example:
    >>> from torch import nn
    >>> class Net:  # anything with .model and .prepare, e.g. helpers.zoo.open_model(..., kinds=("image",))
    ...     model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    ...     prepare = staticmethod(lambda x: nn.functional.interpolate(x, size=(8, 8)))
    >>> m = OnImages(Net())
    >>> m(torch.rand(2, 3, 32, 32)).shape, [n for n, _ in m.named_children()]
    (torch.Size([2, 2]), ['0', '1', '2'])
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class OnImages(nn.Module):
    """``net.model(net.prepare(images))`` as one module whose submodules have the model's names.

    ``net`` is an image-model adapter (``.model``: the ``nn.Module``; ``.prepare``: (B, 3, H, W) images in [0, 1] ->
    the model's input). The children, parameters and buffers are the model's own objects (shared, not copied).
    """

    def __init__(self, net: Any):
        super().__init__()
        if not isinstance(getattr(net, "model", None), nn.Module) or not callable(getattr(net, "prepare", None)):
            raise TypeError(f"OnImages needs an image-model adapter with .model (an nn.Module) and .prepare; got "
                            f"{type(net).__name__} (use helpers.zoo.open_model(spec, kinds=('image',)))")
        object.__setattr__(self, "net", net)  # a plain attribute: the adapter is not a module
        self._modules.update(net.model._modules)  # same objects under the same names
        self._parameters.update(net.model._parameters)
        self._buffers.update(net.model._buffers)
        self.train(net.model.training)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.model(self.net.prepare(images))
