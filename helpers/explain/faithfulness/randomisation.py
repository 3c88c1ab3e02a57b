"""The model-randomisation sanity check (Adebayo et al. 2018): re-initialise layers from the output back
to the input and compare the maps before and after (with :func:`helpers.ops.metrics.spearman`)."""
from __future__ import annotations

import copy
from typing import Iterator, Sequence

import torch
from torch import nn





def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise every parameter under ``module`` in place (``reset_parameters`` where a layer has one,
    which also resets BatchNorm's running statistics), with its own seed; the global RNG is left alone.

    Parameters of layers without ``reset_parameters`` are redrawn from a normal with their current std.

    Example:
        >>> lin = nn.Linear(3, 2); old = lin.weight.clone()
        >>> bool((randomize_(lin, seed=1).weight != old).any())
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
            else:
                with torch.no_grad():
                    for p in sub.parameters(recurse=False):
                        p.normal_(0.0, float(p.std()) if p.numel() > 1 else 1.0)
    return module


def cascading_randomization(model: nn.Module, layers: Sequence[str], seed: int = 0
                            ) -> Iterator[tuple[str, nn.Module]]:
    """Adebayo et al.'s cascading model-parameter randomisation: yield ``(layer, model copy)`` after
    re-initialising ``layers[0]``, then ``layers[0]`` and ``layers[1]``, ... (give them output first).

    ``model`` itself is not changed: one deep copy is randomised step by step, so every stage yields that
    same object (use it before advancing, or deep-copy it to keep it). Stage ``i`` uses seed ``seed + i``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> [name for name, _ in cascading_randomization(net, ["2", "0"])]
        ['2', '0']
    """
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ValueError(f"unknown layer names {unknown}; valid: {[n for n in modules if n][:40]}")
    copied = copy.deepcopy(model)
    copied_modules = dict(copied.named_modules())
    for i, name in enumerate(layers):
        randomize_(copied_modules[name], seed=seed + i)
        yield name, copied
