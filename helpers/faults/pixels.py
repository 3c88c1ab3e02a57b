"""An image classifier as a function of pixels, and the layers a fault lesson watches, for any adapted model.

The fault lesson pastes patches into 64-px pictures and differentiates through the model, so it needs the model
*with* its preprocessing (resize, normalisation) in the forward pass. :class:`PixelModel` puts
``ImageModel.prepare`` in front of ``ImageModel.model`` and shares the model's submodules, parameters and buffers
under the **same names**: every name the adapter gives (``net.head``, ``net.blocks[1]``) works on it with
``helpers.capture``/``helpers.edit``, and :func:`helpers.faults.bitflip.weight_faults` changes the model's own
weights. :func:`activation_layers` lists the activation-function modules in the order they first run.

Example:
    >>> from helpers.zoo import open_model
    >>> net = open_model("random:vit_b_16", kinds=("image",), device="cpu")
    >>> model = PixelModel(net)
    >>> model(torch.rand(2, 3, 64, 64)).shape, model.get_submodule(net.head) is net.module(net.head)
    (torch.Size([2, 1000]), True)
    >>> activation_layers(model, torch.rand(1, 3, 64, 64))[0]
    'encoder.layers.encoder_layer_0.mlp.1'
    >>> first_map_layer(model, torch.rand(1, 3, 64, 64))   # a ViT has no activation before its patch embedding
    'conv_proj'
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.core.listing import forward_outputs

# modules that apply an activation function (elementwise nonlinearity between layers)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish, nn.ELU, nn.Tanh, nn.Sigmoid)


class PixelModel(nn.Module):
    """``net.model(net.prepare(images))`` for (B, 3, H, W) images in [0, 1] of any size; same module names."""

    def __init__(self, net: Any):
        super().__init__()
        if not hasattr(net, "prepare") or not isinstance(getattr(net, "model", None), nn.Module):
            raise TypeError(f"PixelModel needs an ImageModel from helpers.zoo.open_model; got {type(net).__name__}.")
        inner = net.model
        object.__setattr__(self, "net", net)  # not a registered child: names stay the model's own
        # the very same dicts: submodules, parameters and buffers are the model's, under their own names
        self._modules = inner._modules
        self._parameters = inner._parameters
        self._buffers = inner._buffers
        self._non_persistent_buffers_set = inner._non_persistent_buffers_set
        self.training = inner.training

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.model(self.net.prepare(images))

    def train(self, mode: bool = True) -> "PixelModel":
        self.net.model.train(mode)
        return super().train(mode)


@torch.no_grad()
def activation_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the activation-function modules of ``model`` (see :data:`ACTIVATIONS`), in the order they first
    run on ``example``; a module that runs several times (torchvision's ResNet reuses one ReLU per block) is listed
    once. Raises ``ValueError`` when the model has none.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.GELU())
        >>> activation_layers(net, torch.zeros(1, 2))
        ['1', '3']
    """
    device = next(model.parameters()).device
    order = list(dict.fromkeys(name for name, _ in forward_outputs(model, example.to(device))
                               if isinstance(model.get_submodule(name), ACTIVATIONS)))  # first calls, in order
    if not order:
        raise ValueError(f"{type(model).__name__} runs no activation-function module "
                         f"({', '.join(c.__name__ for c in ACTIVATIONS)}); look with helpers.layers(model).")
    return order


@torch.no_grad()
def first_map_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The first layer whose output is a (B, C, H, W) map: the first activation function with such an output
    (the first conv layer's activations), else the first module with one (a ViT's patch embedding).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
        >>> first_map_layer(net, torch.zeros(1, 3, 8, 8))
        '2'
    """
    device = next(model.parameters()).device
    maps = [(name, isinstance(model.get_submodule(name), ACTIVATIONS))
            for name, out in forward_outputs(model, example.to(device)) if out.dim() == 4 and min(out.shape[-2:]) > 1]
    if not maps:
        raise ValueError(f"{type(model).__name__} produces no (B, C, H, W) map; look with helpers.layers(model).")
    return next((name for name, is_act in maps if is_act), maps[0][0])
