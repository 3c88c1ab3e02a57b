"""Interventions: change activations during the forward pass.

    with edit(model, {"blocks.1": add_vector(v, alpha=4.0)}):
        logits = model(tokens)

Each edit is a function ``fn(output) -> new output`` on the layer's main tensor
(for tuple outputs the first tensor, the hidden state, is edited and the tuple rebuilt).
The same all-or-nothing attach and always-remove guarantees as :func:`helpers.capture`.
Every edit function of the project lives here: steering (:func:`add_vector`), replacement, ablation,
patching, top-k masking (:func:`topk`), masking by a score (:func:`mask_below`) and setting chosen
features (:func:`set_entries`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from helpers.core.hooks import HookSet, first_tensor, replace_first_tensor
from helpers.core.names import Layer, resolve_layers
from helpers.core.positions import Positions, assign, select

EditFn = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def edit(model: nn.Module, edits: Mapping[Layer, EditFn]) -> Iterator[None]:
    """Apply ``edits`` (layer name, glob or module -> function) to the model's forward passes in the block.

    Each layer gets at most one edit: when two keys match the same layer (``{"0": ..., "*": ...}``)
    nothing is attached and a ``ValueError`` names the layer and both keys. To apply two edits to one
    layer, nest two ``edit`` blocks: the outer block's edit runs first, the inner one on its result.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with edit(model, {"0": ablate()}):
        ...     y = model(torch.ones(1, 2))
        >>> y.abs().sum().item()
        0.0
    """
    by_name = edits_by_layer(model, edits, "output")

    def on_forward(name: str, module: nn.Module, args: tuple, kwargs: dict, output: Any):
        old = first_tensor(output)
        if old is None:
            raise TypeError(f"Layer {name!r} returned {type(output).__name__} with no tensor to edit.")
        try:
            new = by_name[name](old)
        except ValueError as err:  # e.g. positions on a feature map: say which layer
            raise ValueError(f"The edit of layer {name!r} failed: {err}") from err
        if not isinstance(new, torch.Tensor) or new.shape != old.shape:
            raise ValueError(f"The edit of {name!r} must return a tensor of shape {tuple(old.shape)}, "
                             f"got {getattr(new, 'shape', type(new).__name__)}.")
        return replace_first_tensor(output, new)

    with HookSet(model, list(by_name), on_forward):
        yield


def edits_by_layer(model: nn.Module, edits: Mapping[Layer, EditFn], part: str = "output") -> dict[str, EditFn]:
    """``{layer name: edit}`` from ``{name, glob or module: edit}``, every name resolved and checked before any hook.

    Refuses an empty mapping, an edit that is not callable and two keys matching one layer (``part`` says whether
    the layers' outputs or inputs are edited, for the messages).

    Example:
        >>> edits_by_layer(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), {"*": ablate()}).keys()
        dict_keys(['0', '1'])
    """
    if not edits:
        raise ValueError("No edits given: pass {layer name, glob or module: function}.")
    by_name: dict[str, EditFn] = {}
    key_of: dict[str, object] = {}
    for spec, fn in edits.items():
        if not callable(fn):
            raise TypeError(f"The edit for {_key(spec)} must be a function {part} -> {part}, got {type(fn).__name__}.")
        for name in resolve_layers(model, spec):  # all names checked before any hook
            if name in by_name:
                raise ValueError(
                    f"Two edits for the {part} of layer {name!r}: the keys {_key(key_of[name])} and {_key(spec)} both "
                    f"match it. Give each layer one edit, or nest two blocks (the outer one's edit runs first).")
            by_name[name], key_of[name] = fn, spec
    return by_name


def _key(spec: object) -> str:
    return f"<{type(spec).__name__} module>" if isinstance(spec, nn.Module) else repr(spec)


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
        return assign(out, positions, select(out, positions) + alpha * v)
    return fn


def replace_with(value: torch.Tensor, positions: Positions = None) -> EditFn:
    """Replace the activation (or the given positions of it) by ``value`` (broadcast)."""
    def fn(out: torch.Tensor) -> torch.Tensor:
        v = value.to(device=out.device, dtype=out.dtype)
        if positions is None:
            return v.expand_as(out).clone()
        return assign(out, positions, v)
    return fn


def ablate(mean: Optional[torch.Tensor] = None, positions: Positions = None) -> EditFn:
    """Zero-ablate (default) or mean-ablate (``mean`` given, e.g. over a dataset) an activation."""
    def fn(out: torch.Tensor) -> torch.Tensor:
        fill = torch.zeros((), device=out.device, dtype=out.dtype) if mean is None else \
            mean.to(device=out.device, dtype=out.dtype)
        if positions is None:
            return fill.expand_as(out).clone()
        return assign(out, positions, fill)
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
        return assign(out, positions, select(src, positions))
    return fn


def topk_mask(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of ``x`` along the last dim, zero the rest (Lazy Neuron top-k).

    Example:
        >>> topk_mask(torch.tensor([[3., -1., 2., 0.5]]), k=2)
        tensor([[3., 0., 2., 0.]])
    """
    if not 1 <= k <= x.shape[-1]:
        raise ValueError(f"k must be between 1 and the last dim ({x.shape[-1]}), got {k}")
    values, index = x.topk(k, dim=-1)
    return torch.zeros_like(x).scatter(-1, index, values)


def topk(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """An edit function for :func:`edit`: ``edit(model, {"blocks.*.mlp.act": topk(51)})``."""
    return lambda out: topk_mask(out, k)


def mask_below(w_out: torch.Tensor, eps: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """An edit function zeroing every activation whose neuron score ``|a_i| * ||W_out[:, i]||`` is below ``eps``.

    ``w_out`` is the (d_model, d_mlp) weight of the layer that reads the activations (nn.Linear.weight); the
    score is :func:`helpers.statistics.sparsity.neuron_scores`, computed at each token.

    Example:
        >>> mask_below(torch.eye(2), 1.0)(torch.tensor([[0.5, 2.0]]))
        tensor([[0., 2.]])
    """
    def fn(out: torch.Tensor) -> torch.Tensor:
        if w_out.shape[-1] != out.shape[-1]:
            raise ValueError(f"w_out must be (d_model, {out.shape[-1]}) (nn.Linear.weight of the output map), "
                             f"got {tuple(w_out.shape)}")
        return out * (out.abs() * w_out.norm(dim=0).to(out) >= eps)
    return fn


def set_entries(dims: Sequence[int], value: Union[float, torch.Tensor] = 0.0,
                positions: Positions = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """An edit function that sets features ``dims`` (last dim; at token ``positions``, default all) to ``value``.

    ``value`` is a number or one value per dim (e.g. the dataset mean of each dim: mean ablation).

    Example:
        >>> set_entries([1], 0.0)(torch.ones(1, 2, 3))[0]
        tensor([[1., 0., 1.],
                [1., 0., 1.]])
    """
    dims = list(dims)

    def fn(out: torch.Tensor) -> torch.Tensor:
        fill = torch.as_tensor(value, dtype=out.dtype, device=out.device)
        part = select(out, positions).clone()  # the whole activation, or its tokens at positions
        part[..., dims] = fill
        return part if positions is None else assign(out, positions, part)
    return fn
