"""Batched forward passes without gradients, on the model's device, results back on the input's device.

Example:
    >>> net = torch.nn.Linear(4, 2)
    >>> predict(net, torch.rand(10, 4), batch=3).shape
    torch.Size([10, 2])
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """``model(inputs)`` in chunks of ``batch`` rows, no gradients, concatenated on ``inputs``' device.

    Each chunk runs on the model's device (a GPU if it is there) and comes back, so a large CPU tensor never
    has to fit on the GPU at once. The model's train/eval mode is left as it is.
    """
    if batch < 1:
        raise ValueError(f"batch must be a positive number of rows, got {batch}")
    params = next(model.parameters(), None)
    device = params.device if params is not None else inputs.device
    if len(inputs) == 0:
        return model(inputs.to(device)).to(inputs.device)
    return torch.cat([model(inputs[i:i + batch].to(device)).to(inputs.device) for i in range(0, len(inputs), batch)])
