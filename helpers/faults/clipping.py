"""FT-ClipAct (Hoang, Hanif & Shafique, DATE 2020): bound each layer's activations by what clean data produces.

A bit flip in a weight can turn one product into a value thousands of times larger than any clean activation; it
then swamps everything downstream. FT-ClipAct replaces the unbounded ReLU by a clipped one whose threshold comes
from profiling the layer on clean data. The paper "squashes" out-of-range values: our reading is
``f(x) = x for 0 <= x <= T, else 0`` (:func:`squash`); the common alternative ``min(x, T)`` (:func:`saturate`) is
here for comparison. Both are edit functions for :func:`helpers.edit`; :func:`clipped` applies one per layer.

Example:
    >>> squash(2.0)(torch.tensor([1.0, 3.0, float("nan")]))
    tensor([1., 0., 0.])
    >>> saturate(2.0)(torch.tensor([1.0, 3.0, float("nan")]))
    tensor([1., 2., 0.])
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from helpers.core.hooks import HookSet, first_tensor
from helpers.core.names import resolve_layers
from helpers.core.editing import edit

MODES = ("squash", "saturate")


def _check_bound(bound: float) -> float:
    bound = float(bound)
    if not bound > 0 or bound != bound or bound == float("inf"):
        raise ValueError(f"a clipping bound must be a finite number > 0, got {bound}")
    return bound


def squash(bound: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Edit function: keep values in [0, ``bound``], set everything else (also NaN and infinities) to 0."""
    bound = _check_bound(bound)
    return lambda out: torch.where((out >= 0) & (out <= bound), out, torch.zeros((), dtype=out.dtype,
                                                                                   device=out.device))


def saturate(bound: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Edit function: ``min(x, bound)`` (a bounded ReLU, like ReLU6); NaN becomes 0."""
    bound = _check_bound(bound)
    return lambda out: torch.nan_to_num(out, nan=0.0).clamp(max=bound)


@torch.no_grad()
def profile_bounds(model: nn.Module, layers: Sequence[str], images: torch.Tensor, batch: int = 250) -> dict[str, float]:
    """The largest value each layer outputs on ``images`` (clean data): ``{layer: max}``, FT-ClipAct's profile.

    A module that runs several times in one forward pass (torchvision's ResNet reuses one ReLU per block) is
    profiled over every call, since :func:`clipped` clips every call.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> bounds = profile_bounds(net, ["1"], torch.randn(10, 2))
        >>> list(bounds), bounds["1"] >= 0
        (['1'], True)
    """
    if len(images) == 0:
        raise ValueError("profile_bounds needs some clean images")
    names = resolve_layers(model, list(layers))  # raises before any hook exists
    device = next(model.parameters()).device
    top = {name: -float("inf") for name in names}

    def record(name, module, args, kwargs, output):
        top[name] = max(top[name], first_tensor(output).max().item())

    with HookSet(model, names, record):
        for i in range(0, len(images), batch):
            model(images[i:i + batch].to(device))
    return top


@contextmanager
def clipped(model: nn.Module, bounds: Mapping[str, float], mode: str = "squash") -> Iterator[None]:
    """Inside the block each layer in ``bounds`` is clipped at its bound (``mode`` "squash" or "saturate").

    Example:
        >>> net = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
        >>> with torch.no_grad():
        ...     _ = net[0].weight.fill_(1.0), net[0].bias.fill_(0.0)
        >>> with clipped(net, {"1": 2.0}):
        ...     y = net(torch.tensor([[1.0], [5.0]]))
        >>> y.flatten().tolist()
        [1.0, 0.0]
    """
    if mode not in MODES:
        raise ValueError(f"unknown clipping mode {mode!r}; valid: {list(MODES)}")
    make = squash if mode == "squash" else saturate
    with edit(model, {name: make(b) for name, b in bounds.items()}):
        yield
