"""Interventions: change activations during the forward pass.

    with edit(model, {"blocks.1": add_vector(v, alpha=4.0)}):
        logits = model(tokens)

Each edit is a function ``fn(output) -> new output`` on the layer's main tensor
(for tuple outputs the first tensor, the hidden state, is edited and the tuple rebuilt).
The same all-or-nothing attach and always-remove guarantees as :func:`helpers.capture`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import torch
from torch import nn

from helpers.hooks import HookSet, first_tensor, replace_first_tensor
from helpers.names import resolve_layers

EditFn = Callable[[torch.Tensor], torch.Tensor]
Positions = Union[int, slice, list, torch.Tensor, None]


@contextmanager
def edit(model: nn.Module, edits: Mapping[str, EditFn]) -> Iterator[None]:
    """Apply ``edits`` (layer name or glob -> function) to the model's forward passes in the block.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with edit(model, {"0": ablate()}):
        ...     y = model(torch.ones(1, 2))
        >>> y.abs().sum().item()
        0.0
    """
    if not edits:
        raise ValueError("No edits given: pass {layer name or glob: function}.")
    by_name: dict[str, EditFn] = {}
    for spec, fn in edits.items():
        if not callable(fn):
            raise TypeError(f"The edit for {spec!r} must be a function output -> output, got {type(fn).__name__}.")
        for name in resolve_layers(model, spec):  # all names checked before any hook
            by_name[name] = fn

    def on_forward(name: str, module: nn.Module, args: tuple, kwargs: dict, output: Any):
        old = first_tensor(output)
        if old is None:
            raise TypeError(f"Layer {name!r} returned {type(output).__name__} with no tensor to edit.")
        new = by_name[name](old)
        if not isinstance(new, torch.Tensor) or new.shape != old.shape:
            raise ValueError(f"The edit of {name!r} must return a tensor of shape {tuple(old.shape)}, "
                             f"got {getattr(new, 'shape', type(new).__name__)}.")
        return replace_first_tensor(output, new)

    with HookSet(model, list(by_name), on_forward):
        yield


def _at(positions: Positions, out: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A copy of ``out`` (B, T, ...) whose ``positions`` along dim 1 are set to ``value`` (broadcast)."""
    new = out.clone()
    new[:, positions] = value
    return new


def add_vector(vector: torch.Tensor, alpha: float = 1.0, positions: Positions = None) -> EditFn:
    """Add ``alpha * vector`` (broadcast over batch and positions) — steering.

    Example:
        >>> f = add_vector(torch.ones(3), alpha=2.0)
        >>> f(torch.zeros(1, 2, 3))[0, 0]
        tensor([2., 2., 2.])
    """
    def fn(out: torch.Tensor) -> torch.Tensor:
        v = vector.to(device=out.device, dtype=out.dtype)
        if positions is None:
            return out + alpha * v
        return _at(positions, out, out[:, positions] + alpha * v)
    return fn


def replace_with(value: torch.Tensor, positions: Positions = None) -> EditFn:
    """Replace the activation (or the given positions of it) by ``value`` (broadcast)."""
    def fn(out: torch.Tensor) -> torch.Tensor:
        v = value.to(device=out.device, dtype=out.dtype)
        if positions is None:
            return v.expand_as(out).clone()
        return _at(positions, out, v)
    return fn


def ablate(mean: Optional[torch.Tensor] = None, positions: Positions = None) -> EditFn:
    """Zero-ablate (default) or mean-ablate (``mean`` given, e.g. over a dataset) an activation."""
    def fn(out: torch.Tensor) -> torch.Tensor:
        fill = torch.zeros((), device=out.device, dtype=out.dtype) if mean is None else \
            mean.to(device=out.device, dtype=out.dtype)
        if positions is None:
            return fill.expand_as(out).clone()
        return _at(positions, out, fill)
    return fn


def patch_from(stored: torch.Tensor, positions: Positions = None) -> EditFn:
    """Patch in an activation stored from another run (same shape), e.g. clean -> corrupt.

    Example:
        >>> clean = torch.arange(6.).view(1, 2, 3)
        >>> patch_from(clean, positions=[1])(torch.zeros(1, 2, 3))[0]
        tensor([[0., 0., 0.],
                [3., 4., 5.]])
    """
    def fn(out: torch.Tensor) -> torch.Tensor:
        src = stored.to(device=out.device, dtype=out.dtype)
        if src.shape != out.shape:
            raise ValueError(f"Stored activation has shape {tuple(src.shape)}, the layer gives {tuple(out.shape)}.")
        if positions is None:
            return src.clone()
        new = out.clone()
        new[:, positions] = src[:, positions]
        return new
    return fn
