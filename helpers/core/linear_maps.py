"""Linear maps whatever their class stores: ``nn.Linear`` keeps its weight as (out, in), transformers' ``Conv1D``
(GPT-2's linear layers, ``y = x @ W + b``) keeps it as (in, out). Every lesson that reads or replaces a model's
linear maps (sparsify, quantize, compress, function vectors) asks these two functions.

Example:
    >>> from torch import nn
    >>> is_linear(nn.Linear(4, 3)), is_linear(nn.Conv2d(1, 1, 1)), linear_weight(nn.Linear(4, 3)).shape
    (True, False, torch.Size([3, 4]))
"""
from __future__ import annotations

import torch
from torch import nn


class NotLinearError(TypeError, ValueError):
    """A module that is not a linear map was given where one is needed."""


def is_conv1d(module: nn.Module) -> bool:
    """transformers' ``Conv1D`` (GPT-2): a linear map with its 2-D weight stored (in, out)."""
    weight = getattr(module, "weight", None)
    return type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.dim() == 2


def is_linear(module: nn.Module) -> bool:
    """True for an ``nn.Linear`` and for transformers' ``Conv1D``."""
    return isinstance(module, nn.Linear) or is_conv1d(module)


def linear_weight(module: nn.Module) -> torch.Tensor:
    """The (out, in) weight of a linear map (a view: ``Conv1D``'s is transposed, not copied)."""
    if isinstance(module, nn.Linear):
        return module.weight
    if is_conv1d(module):
        return module.weight.t()
    raise NotLinearError(f"a {type(module).__name__} is not a linear map (an nn.Linear or a transformers Conv1D).")
