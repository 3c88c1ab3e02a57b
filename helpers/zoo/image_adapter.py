"""What a lesson needs from an image classifier, found from one forward pass: :class:`ImageModel`.

Works for the zoo's CNNs (``wild-cnn``, ``efficientnet-lite0``) and for torchvision's CNNs (ResNet,
EfficientNet, ConvNeXt, ...) and Vision Transformers without a table of names. One forward of a blank image at
the model's input size records every module's output; then

* the **feature layer** is the module that produced the last 4-D map (the outermost one, e.g. ``layer4``), or
  for a ViT the last of its transformer blocks (its tokens are reshaped to a grid by :meth:`ImageModel.grid`);
* the **head** is the last linear map onto the classes;
* the **blocks** are the stages: the first list of at least three sibling modules with children, in forward order.

Example:
    >>> from helpers.zoo import load
    >>> model, info = load("random:resnet50", device="cpu")
    >>> net = ImageModel.wrap(model, info, spec="random:resnet50", is_default=False)
    >>> net.feature_layer, net.head, net.blocks, net.input_size
    ('layer4', 'fc', ['layer1', 'layer2', 'layer3', 'layer4'], 96)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from helpers.core.listing import forward_outputs
from helpers.data.imagenet import normalize
from helpers.zoo.info import ModelInfo
from helpers.zoo.randoms import INPUT_SIZE
from helpers.zoo.text_adapter import UnsupportedModelError, find_block_list

# zoo image models whose parts are known by name (their lessons were written with these names)
KNOWN = {"wild-cnn": (None, "head", 64, False), "efficientnet-lite0": ("_bn1", "_fc", 224, True)}


def _stages(model: nn.Module, fired: set[str]) -> list[str]:
    queue: list[tuple[str, nn.Module]] = [("", model)]
    while queue:
        prefix, module = queue.pop(0)
        kids = [(f"{prefix}.{n}" if prefix else n, m) for n, m in module.named_children()]
        stages = [n for n, m in kids if n in fired and list(m.children())]
        if len(stages) >= 3:
            return stages
        queue.extend((n, m) for n, m in kids if list(m.children()))
    return []


@dataclass
class ImageModel:
    """An image classifier and the names of its parts; ``net.model`` is the ``nn.Module`` itself (unchanged)."""

    model: nn.Module
    info: ModelInfo
    spec: str
    is_default: bool
    input_size: int
    normalise: bool  # ImageNet mean/std normalisation before the model
    feature_layer: str
    head: str
    blocks: list[str]
    n_classes: int
    classes: Optional[list[str]]
    is_vit: bool = False
    kind: str = "image"

    def __repr__(self) -> str:
        return (f"ImageModel({self.spec!r}, {self.input_size} px, features at {self.feature_layer!r}"
                f"{' (ViT tokens)' if self.is_vit else ''}, head {self.head!r}, {self.n_classes} classes, "
                f"default={self.is_default})")

    @classmethod
    def wrap(cls, model: nn.Module, info: ModelInfo, spec: str, is_default: bool) -> "ImageModel":
        known = KNOWN["wild-cnn"] if type(model).__name__ == "WildCNN" else KNOWN.get(info.name)
        size = known[2] if known else _input_size(model, info)
        outputs = forward_outputs(model, torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
        if not outputs or outputs[-1][1].dim() != 2:
            raise UnsupportedModelError(f"{spec}: a {size}-px image does not give (batch, classes) logits; an image "
                                        f"lesson needs a classifier. Look with helpers.layers(model).")
        n_classes = int(outputs[-1][1].shape[-1])
        modules = dict(model.named_modules())
        heads = [n for n, t in outputs if t.dim() == 2 and t.shape[-1] == n_classes and not list(modules[n].children())
                 and isinstance(getattr(modules[n], "weight", None), torch.Tensor)]
        list_name, vit_blocks = find_block_list(model)
        maps = [(n, t) for n, t in outputs if t.dim() == 4 and t.shape[-1] > 1]
        recorded = dict(outputs)
        is_vit = bool(vit_blocks) and vit_blocks[0] in recorded and recorded[vit_blocks[0]].dim() == 3
        if known and known[0] is None:  # wild-cnn: its last numbered block
            feature = f"blocks.{len(model.blocks) - 1}"
        elif known:
            feature = known[0]
        elif is_vit:
            feature = vit_blocks[-1]
        elif maps:
            last = maps[-1][1]
            same = [n for n, t in maps if t is last]
            feature = min(same, key=lambda n: n.count("."))
        else:
            feature = ""
        if not feature or not heads:
            raise UnsupportedModelError(
                f"{spec}: found {'a feature layer ' + feature if feature else 'no 4-D feature map or ViT blocks'} and "
                f"{'head ' + heads[-1] if heads else 'no linear head onto the classes'}. An image lesson needs a CNN "
                f"(ResNet, EfficientNet, ConvNeXt, ...) or a ViT classifier. Look with helpers.layers(model).")
        fired = {n for n, _ in outputs}
        blocks = (vit_blocks if is_vit else
                  [f"blocks.{i}" for i in range(len(model.blocks))] if known and known[0] is None else
                  _stages(model, fired))
        return cls(model, info, spec, is_default, size, bool(known[3]) if known else True, feature,
                   heads[-1], blocks, n_classes, info.classes, is_vit)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def module(self, name: str) -> nn.Module:
        return self.model.get_submodule(name)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB floats in [0, 1] -> the model's input: resized to ``input_size``, normalised if it expects."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"prepare() takes (B, 3, H, W) RGB images in [0, 1]; got shape {tuple(images.shape)}.")
        x = images.to(self.device, torch.float32)
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          antialias=True, align_corners=False)
        return normalize(x) if self.normalise else x

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, n_classes) logits (call under ``torch.no_grad()`` if you like)."""
        return self.model(self.prepare(images))

    def grid(self, act: torch.Tensor) -> torch.Tensor:
        """A feature-layer output as a map: conv (B, C, h, w) unchanged; ViT tokens (B, T, D) -> (B, D, h, w).

        The grid is the largest square number of tokens; the tokens before it (the class token) are dropped.
        """
        if act.dim() == 4:
            return act
        if act.dim() != 3:
            raise ValueError(f"grid() takes (B, C, h, w) maps or (B, T, D) tokens; got {tuple(act.shape)}.")
        side = math.isqrt(act.shape[1])
        tokens = act[:, act.shape[1] - side * side:]  # (B, h*w, D)
        return tokens.transpose(1, 2).reshape(act.shape[0], act.shape[2], side, side)


def _input_size(model: nn.Module, info: ModelInfo) -> int:
    if info.name.startswith("random:") and info.name[7:] in INPUT_SIZE:
        return INPUT_SIZE[info.name[7:]]
    if isinstance(getattr(model, "image_size", None), int):  # torchvision's VisionTransformer
        return model.image_size
    crop = getattr(info.preprocess, "crop_size", None)  # torchvision weights' transforms
    if crop:
        return int(crop[0] if isinstance(crop, (list, tuple)) else crop)
    return 224
