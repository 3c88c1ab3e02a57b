"""Edit a layer's *input* during the forward pass (``edit`` changes outputs).

    with edit_inputs(model, {"transformer.h.0.mlp.c_proj": topk(64)}):
        logits = model(tokens)

Some activations are not the output of any module: a gated MLP's hidden activations ``act(gate) * up``
only exist as the input of its output projection. ``edit_inputs`` applies an edit function from
:mod:`helpers.core.editing` (``topk``, ``mask_below``, ``set_entries``, ...) to the first tensor a layer
receives (positional or keyword). Names are resolved before any hook is attached; hooks are attached
all-or-nothing and removed in ``finally``, as in :func:`helpers.edit`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
from torch import nn

from helpers.core.editing import EditFn, edits_by_layer
from helpers.core.hooks import first_tensor, replace_first_tensor
from helpers.core.names import Layer


@contextmanager
def edit_inputs(model: nn.Module, edits: Mapping[Layer, EditFn]) -> Iterator[None]:
    """Apply ``edits`` (layer name, glob or module -> function) to the layers' first input inside the block.

    Example:
        >>> from helpers.core.editing import topk
        >>> model = nn.Sequential(nn.Identity(), nn.Linear(3, 1, bias=False))
        >>> _ = nn.init.ones_(model[1].weight)
        >>> with edit_inputs(model, {"1": topk(1)}):
        ...     y = model(torch.tensor([[1.0, 5.0, 2.0]]))
        >>> y.item(), model(torch.tensor([[1.0, 5.0, 2.0]])).item()
        (5.0, 8.0)
    """
    by_name = edits_by_layer(model, edits, "input")
    modules = dict(model.named_modules())

    def hook_for(name: str):
        def pre(module: nn.Module, args: tuple, kwargs: dict):
            in_args = bool(args) and first_tensor(args) is not None
            old = first_tensor(args if in_args else kwargs)
            if old is None:
                raise TypeError(f"Layer {name!r} received no tensor to edit.")
            new = by_name[name](old)
            if not isinstance(new, torch.Tensor) or new.shape != old.shape:
                raise ValueError(f"The input edit of {name!r} must return a tensor of shape {tuple(old.shape)}, "
                                 f"got {getattr(new, 'shape', type(new).__name__)}.")
            if in_args:
                return replace_first_tensor(args, new), kwargs
            return args, replace_first_tensor(kwargs, new)
        return pre

    handles = []
    try:
        for name in by_name:
            handles.append(modules[name].register_forward_pre_hook(hook_for(name), with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
