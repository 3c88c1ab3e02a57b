"""Atomic-unit steering (AUSteer, Feng et al., 2026): rank single activation units by momentum, scale a few of them.

For paired prompts, unit ``i`` of a layer has differences ``d_n = a_pos,n,i - a_neg,n,i`` at the last token. Its
*momentum* is the share of pairs that agree on the sign of ``d``, signed by the majority:
``beta_i = max(#(d > 0), #(d < 0)) / N * sign(majority)``. All units of all given layers are ranked by ``|beta|``
together; our own tie-break (many units reach ``|beta| = 1`` on a clean task) is the mean ``|d|``. Steering
scales the chosen units multiplicatively, ``a_i <- a_i + alpha * beta_i * a_i``, so its strength follows the input.

Example:
    >>> pos = {"l": torch.tensor([[2., 0., 1.], [3., 0., 1.]])}; neg = {"l": torch.tensor([[0., 1., 1.], [1., 1., 1.]])}
    >>> [(u.layer, u.index, u.beta) for u in rank_units(pos, neg)[:2]]
    [('l', 0, 1.0), ('l', 1, -1.0)]
    >>> scale_units([Unit("l", 0, 1.0, 2.0)], alpha=1.0)["l"](torch.ones(1, 3))
    tensor([[2., 1., 1.]])
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from helpers.core.names import resolve_layers


@dataclass(frozen=True)
class Unit:
    layer: str
    index: int
    beta: float       # signed momentum, in [-1, 1]
    mean_diff: float  # mean |a_pos - a_neg|, the tie-break


def momentum(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Signed momentum of every unit from paired activations ``pos``, ``neg`` (N, units), (units,).

    Example:
        >>> momentum(torch.tensor([[1., 0.], [1., 2.], [0., 2.]]), torch.zeros(3, 2))
        tensor([0.6667, 0.6667])
    """
    if pos.shape != neg.shape or pos.dim() != 2:
        raise ValueError(f"pos and neg must both be (N, units), got {tuple(pos.shape)} and {tuple(neg.shape)}")
    d = pos - neg
    n_pos, n_neg = (d > 0).sum(0), (d < 0).sum(0)
    sign = torch.where(n_pos >= n_neg, 1.0, -1.0)
    return torch.maximum(n_pos, n_neg).float() / len(d) * sign


def rank_units(pos: Mapping[str, torch.Tensor], neg: Mapping[str, torch.Tensor]) -> list[Unit]:
    """All units of all layers (layer -> (N, units) activations), best first by |momentum| then mean |diff|."""
    units = []
    for layer in pos:
        beta = momentum(pos[layer].float(), neg[layer].float())
        size = (pos[layer].float() - neg[layer].float()).abs().mean(0)
        units += [Unit(layer, i, beta[i].item(), size[i].item()) for i in range(len(beta))]
    return sorted(units, key=lambda u: (abs(u.beta), u.mean_diff), reverse=True)


def scale_units(units: Sequence[Unit], alpha: float) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Edit functions for :func:`helpers.edit`, one per layer: ``a_i * (1 + alpha * beta_i)`` for the chosen units."""
    by_layer: dict[str, list[Unit]] = {}
    for u in units:
        by_layer.setdefault(u.layer, []).append(u)

    def make(chosen: list[Unit]) -> Callable[[torch.Tensor], torch.Tensor]:
        index = torch.tensor([u.index for u in chosen])
        factor = torch.tensor([1.0 + alpha * u.beta for u in chosen])

        def fn(out: torch.Tensor) -> torch.Tensor:
            if int(index.max()) >= out.shape[-1]:
                raise ValueError(f"unit {int(index.max())} does not exist: the layer has {out.shape[-1]} units")
            new = out.clone()
            new[..., index.to(out.device)] = out[..., index.to(out.device)] * factor.to(out)
            return new
        return fn
    return {layer: make(chosen) for layer, chosen in by_layer.items()}


@contextmanager
def scale_inputs(model: nn.Module, units: Sequence[Unit], alpha: float) -> Iterator[None]:
    """Like :func:`scale_units`, but on the *inputs* of the named layers (forward pre-hooks, always removed).

    For units read as a layer's input: the MLP's hidden neurons are the input of its output projection in any
    decoder (GPT-2's ``c_proj``, Llama's ``down_proj``), where no module outputs them. Names are checked first.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.Linear(3, 1, bias=False)); _ = nn.init.ones_(net[1].weight)
        >>> with scale_inputs(net, [Unit("1", 0, 1.0, 0.0)], alpha=1.0):
        ...     y = net(torch.ones(1, 3))
        >>> y.item(), len(net[1]._forward_pre_hooks)
        (4.0, 0)
    """
    fns = scale_units(units, alpha)
    for name in fns:
        resolve_layers(model, name)  # raises for an unknown name before any hook is attached
    handles = []
    try:
        for name, fn in fns.items():
            handles.append(model.get_submodule(name).register_forward_pre_hook(
                lambda mod, args, fn=fn: (fn(args[0]),) + tuple(args[1:])))
        yield
    finally:
        for h in handles:
            h.remove()
