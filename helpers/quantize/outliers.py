"""An outlier channel that does not change the function: scale one channel of a norm up, the next layer's input down.

    sites = outlier_sites(model, images)                  # (norm, next layer) pairs where this is exact
    bigger, site = inject_outlier(model, images, channel=5, factor=50.0)   # a COPY; same logits, one huge channel

A norm layer's affine output (``BatchNorm2d``, ``LayerNorm``) can be multiplied by ``factor`` in one channel if the
layer that reads it next divides that input channel by ``factor``: everything in between must commute with a
positive scale (ReLU, max or average pooling, dropout in eval, identity). The float network computes the same
logits (up to rounding), but the activation entering the next layer now has one channel ``factor`` times larger,
which is what per-tensor activation quantization cannot absorb. Sites are found from the order in which the leaf
modules run in one forward pass of ``example``; :func:`inject_outlier` checks that the logits are unchanged.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3)).eval()
    >>> x = torch.rand(2, 3, 8, 8)
    >>> outlier_sites(net, x)
    [('1', '3')]
    >>> bigger, site = inject_outlier(net, x, channel=1, factor=50.0)
    >>> site, bool(torch.allclose(bigger(x), net(x), atol=1e-5)), net[1].weight[1].item() == 1.0
    (('1', '3'), True, True)
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

NORMS = (nn.BatchNorm2d, nn.LayerNorm)
# modules that commute with a positive per-channel scale
POSITIVE_HOMOGENEOUS = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Identity, nn.Flatten)


def _call_order(model: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module]]:
    order: list[tuple[str, nn.Module]] = []
    handles = [m.register_forward_hook(lambda mod, a, o, n=n: order.append((n, mod)))
               for n, m in model.named_modules() if n and not list(m.children())]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return order


def _reads(layer: nn.Module, channels: int) -> bool:
    if isinstance(layer, nn.Conv2d):
        return layer.groups == 1 and layer.in_channels == channels
    return isinstance(layer, nn.Linear) and layer.in_features == channels


def outlier_sites(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """(norm, next layer) name pairs, in forward order, where :func:`inject_outlier` keeps the function exact."""
    order = _call_order(model, example)
    sites = []
    for i, (name, module) in enumerate(order):
        affine = getattr(module, "weight", None) is not None and getattr(module, "bias", None) is not None
        if not isinstance(module, NORMS) or not affine:
            continue
        j = i + 1
        while j < len(order) and isinstance(order[j][1], POSITIVE_HOMOGENEOUS):
            j += 1
        channels = module.weight.shape[0] if isinstance(module, nn.BatchNorm2d) else module.normalized_shape[-1]
        if j < len(order) and _reads(order[j][1], channels) and (name, order[j][0]) not in sites:
            sites.append((name, order[j][0]))
    return sites


def inject_outlier(model: nn.Module, example: torch.Tensor, channel: int = 5, factor: float = 50.0,
                   site: Optional[tuple[str, str]] = None) -> tuple[nn.Module, tuple[str, str]]:
    """A copy of ``model`` with ``channel`` of a norm's output ``factor`` times larger and the next layer's input
    weights for it divided by ``factor``; ``site`` defaults to the middle one of :func:`outlier_sites` that keeps
    the logits (a residual addition in between, invisible in the call order, does not).

    Raises ``ValueError`` when the model has no such site, the channel does not exist, or the copy's logits on
    ``example`` differ from the model's by more than float rounding.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive (ReLU commutes only with a positive scale), got {factor}")
    if site is not None:
        return _scaled(model, example, site, channel, factor, check=True), site
    sites = outlier_sites(model, example)
    if not sites:
        raise ValueError("No norm layer (BatchNorm2d/LayerNorm) is read by a conv or linear layer through only "
                         "ReLU/pooling/dropout here; there is no exact place for a function-preserving outlier.")
    # from the middle outwards: a residual addition between the two layers (invisible in the call order) breaks it
    middle = len(sites) // 2
    for candidate in sorted(sites, key=lambda s: abs(sites.index(s) - middle)):
        out = _scaled(model, example, candidate, channel, factor, check=False)
        if out is not None:
            return out, candidate
    raise ValueError(f"None of the {len(sites)} norm -> layer pairs keeps the logits when scaled.")


def _scaled(model: nn.Module, example: torch.Tensor, site: tuple[str, str], channel: int, factor: float,
            check: bool) -> Optional[nn.Module]:
    out = copy.deepcopy(model).eval()
    norm, nxt = out.get_submodule(site[0]), out.get_submodule(site[1])
    if not 0 <= channel < norm.weight.shape[0]:
        raise ValueError(f"channel {channel} does not exist: {site[0]} has {norm.weight.shape[0]} channels.")
    with torch.no_grad():
        norm.weight[channel] *= factor
        norm.bias[channel] *= factor
        nxt.weight[:, channel] /= factor
        ref, got = model(example), out(example)
    err = (got - ref).abs().max().item()
    if err <= 1e-3 * max(1.0, ref.abs().max().item()):
        return out
    if check:
        raise ValueError(f"scaling {site[0]} -> {site[1]} changed the logits by {err:.2e}; the layers in between do "
                         f"not commute with a positive scale.")
    return None
