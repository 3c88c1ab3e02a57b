"""Merging fine-tuned copies of one model: plain averaging and RegMean (merging by activation Gram matrices).

RegMean (Jin et al., ICLR 2023) merges each linear layer by the least-squares problem "one W whose outputs match
every model's outputs on that model's own inputs": with G_i = X_i^T X_i,

    W* = (sum_i G_i)^-1 sum_i G_i W_i          (W as (in, out): W*^T = (sum G_i)^-1 sum G_i W_i^T)

with the off-diagonal entries of each G_i scaled by ``alpha`` (0.9 in the paper) to keep the inverse stable.
Here a layer's bias is merged with its weight: the input gets a constant 1 (``Gram.augmented``). Every
parameter not in a merged layer (and every buffer) is averaged.

Example:
    >>> _ = torch.manual_seed(0); a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> x = torch.randn(50, 3)
    >>> m = regmean([a, b], [{"": Gram.of(x)}, {"": Gram.of(x)}], alpha=1.0)
    >>> bool(torch.allclose(m.weight, (a.weight + b.weight) / 2, atol=1e-5))   # same inputs: the average
    True
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from helpers.ops.whitening import Gram


def check_same_architecture(models: Sequence[nn.Module]) -> None:
    """Raise ``ValueError`` naming the first mismatched parameter/buffer (names or shapes) between the models."""
    if len(models) < 2:
        raise ValueError(f"merging needs at least two models, got {len(models)}")
    ref = {k: tuple(v.shape) for k, v in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        other = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        only_ref, only_other = sorted(set(ref) - set(other)), sorted(set(other) - set(ref))
        if only_ref or only_other:
            raise ValueError(f"model 0 and model {i} have different architectures: only in model 0: "
                             f"{only_ref[:5]}, only in model {i}: {only_other[:5]}")
        for k, shape in ref.items():
            if other[k] != shape:
                raise ValueError(f"model 0 and model {i} have different architectures: {k} is {shape} in model 0 "
                                 f"and {other[k]} in model {i}")


def average(models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> nn.Module:
    """A new model whose every parameter and float buffer is the (weighted) mean of the models'."""
    check_same_architecture(models)
    weights = [1.0 / len(models)] * len(models) if weights is None else list(weights)
    if len(weights) != len(models):
        raise ValueError(f"{len(weights)} weights for {len(models)} models")
    merged = copy.deepcopy(models[0])
    states = [m.state_dict() for m in models]
    new = {}
    for k, v in states[0].items():
        new[k] = sum(w * s[k] for w, s in zip(weights, states)) if v.is_floating_point() else v.clone()
    merged.load_state_dict(new)
    return merged


def task_arithmetic(base: nn.Module, models: Sequence[nn.Module], scale: float = 1.0) -> nn.Module:
    """``base + scale * sum_i (model_i - base)`` for every float parameter and buffer (Ilharco et al. 2023).

    Example:
        >>> a, b, c = nn.Linear(2, 1), nn.Linear(2, 1), nn.Linear(2, 1)
        >>> m = task_arithmetic(a, [b, c], scale=0.5)
        >>> bool(torch.allclose(m.bias, a.bias + 0.5 * (b.bias - a.bias + c.bias - a.bias)))
        True
    """
    check_same_architecture([base, *models])
    return average([base, *models], [1.0 - scale * len(models)] + [scale] * len(models))


def linear_names(models: Sequence[nn.Module], grams: Sequence[dict[str, Gram]]) -> list[str]:
    if len(grams) != len(models):
        raise ValueError(f"{len(grams)} Gram dictionaries for {len(models)} models: one per model")
    names = list(grams[0])
    for i, g in enumerate(grams[1:], 1):
        if set(g) != set(names):
            raise ValueError(f"the Gram dictionaries name different layers: {sorted(names)} vs {sorted(g)} (model {i})")
    for name in names:
        layer = models[0].get_submodule(name)
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"{name!r} is a {type(layer).__name__}; RegMean merges nn.Linear layers")
        for i, g in enumerate(grams):
            if g[name].xx.shape[0] != layer.in_features:
                raise ValueError(f"the Gram of {name!r} for model {i} is {tuple(g[name].xx.shape)}, "
                                 f"the layer has {layer.in_features} inputs")
    return names


def scaled_gram(gram: Gram, alpha: float, bias: bool) -> torch.Tensor:
    """The (augmented if ``bias``) Gram matrix with its off-diagonal entries times ``alpha``, float64."""
    g = gram.augmented() if bias else gram.xx.clone()
    return alpha * g + (1 - alpha) * torch.diag(g.diagonal())


def stacked(layer: nn.Linear) -> torch.Tensor:
    """The layer's weight with its bias as a last column, transposed: (in [+1], out), float64."""
    w = layer.weight.detach().double().cpu()
    if layer.bias is not None:
        w = torch.cat([w, layer.bias.detach().double().cpu()[:, None]], 1)
    return w.T


def set_stacked(layer: nn.Linear, w: torch.Tensor) -> None:
    """Write an (in [+1], out) solution back into ``layer`` (weight, then bias)."""
    with torch.no_grad():
        layer.weight.copy_(w[: layer.in_features].T.to(layer.weight))
        if layer.bias is not None:
            layer.bias.copy_(w[layer.in_features].to(layer.bias))


def regmean(models: Sequence[nn.Module], grams: Sequence[dict[str, Gram]], alpha: float = 0.9) -> nn.Module:
    """Merge ``models`` (one architecture, e.g. fine-tuned from one checkpoint) by RegMean.

    ``grams[i][name]`` is the input Gram of linear layer ``name`` in model i on model i's own data
    (``helpers.ops.whitening.input_grams``). Checks architectures and names before any work; models unchanged.
    """
    check_same_architecture(models)
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    names = linear_names(models, grams)
    merged = average(models)
    for name in names:
        layers = [m.get_submodule(name) for m in models]
        bias = layers[0].bias is not None
        gs = [scaled_gram(g[name], alpha, bias) for g in grams]
        lhs = sum(gs)
        rhs = sum(g @ stacked(layer) for g, layer in zip(gs, layers))
        set_stacked(merged.get_submodule(name), torch.linalg.lstsq(lhs, rhs).solution)
    return merged
