"""List a model's layers with their types and, for one example input, output shapes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from helpers.core.hooks import HookSet, first_tensor
from helpers.core.names import LayerSpec, module_names


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    shape: Optional[tuple[int, ...]]  # output shape for the example input; None if not run
    params: int  # parameters owned directly by this module (not its children)


class LayerTable(list):
    """A list of :class:`LayerInfo` that prints as an aligned table."""

    def names(self) -> list[str]:
        return [row.name for row in self]

    def __repr__(self) -> str:
        if not self:
            return "LayerTable(empty)"
        w_name = max(len(r.name) for r in self)
        w_type = max(len(r.type) for r in self)
        lines = [f"{'name':<{w_name}}  {'type':<{w_type}}  {'params':>9}  output shape"]
        for r in self:
            shape = "-" if r.shape is None else str(tuple(r.shape))
            lines.append(f"{r.name:<{w_name}}  {r.type:<{w_type}}  {r.params:>9,}  {shape}")
        return "\n".join(lines)

    __str__ = __repr__


def _call(model: nn.Module, example: Any) -> None:
    if isinstance(example, dict):
        model(**example)
    elif isinstance(example, tuple):
        model(*example)
    else:
        model(example)


def layers(model: nn.Module, example: Any = None, pattern: Optional[LayerSpec] = None) -> LayerTable:
    """Names, types and (given an example input) output shapes of every submodule.

    Args:
        model: the model.
        example: one input (a tensor, a tuple of positional args, or a dict of keyword args);
            when given, one forward pass under ``torch.no_grad()`` records output shapes.
        pattern: keep only these layers: a glob, a name, a module or a list of them
            (see :func:`helpers.core.names.resolve_layers`).

    Example:
        >>> table = layers(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), torch.zeros(2, 4))
        >>> table.names()
        ['0', '1']
        >>> table[0].shape
        (2, 8)
    """
    names = module_names(model)
    if pattern is not None:
        from helpers.core.names import resolve_layers
        names = resolve_layers(model, pattern)
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    if example is not None:
        def record(name, module, args, kwargs, output):
            t = first_tensor(output)
            if t is not None:
                shapes[name] = tuple(t.shape)
        with HookSet(model, names, record), torch.no_grad():
            _call(model, example)
    return LayerTable(
        LayerInfo(n, type(modules[n]).__name__, shapes.get(n),
                  sum(p.numel() for p in modules[n].parameters(recurse=False)))
        for n in names
    )


def forward_outputs(model: nn.Module, example: Any) -> list[tuple[str, torch.Tensor]]:
    """``(name, output)`` of every named submodule, in the order the calls finish, for one forward of ``example``
    under ``torch.no_grad()`` (a module called twice appears twice; outputs without a tensor are left out).

    The model adapters and the lessons read a model's structure from this: the last 4-D map, the head, the order
    in which activation functions run. The hooks are attached all at once and always removed.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        >>> [(name, tuple(t.shape)) for name, t in forward_outputs(net, torch.zeros(2, 4))]
        [('0', (2, 8)), ('1', (2, 8))]
    """
    seen: list[tuple[str, torch.Tensor]] = []

    def record(name, module, args, kwargs, output):
        t = first_tensor(output)
        if t is not None:
            seen.append((name, t))
    with HookSet(model, [n for n, _ in model.named_modules() if n], record), torch.no_grad():
        _call(model, example)
    return seen
