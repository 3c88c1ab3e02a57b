"""A cross-layer consistent CAV, inspired by GCAV (He et al., 2025) but much simpler (the notebook's own method).

GCAV fits CAVs per layer, maps them through per-layer autoencoders into a shared space, aligns one concept's CAVs
across layers with a contrastive loss, fuses them with attention into one global CAV and decodes it back to every
layer. Here one logistic regression is fitted on all layers at once: each layer's flattened activations are divided
by their RMS row norm (so every layer weighs the same), concatenated, and the single weight vector is split back into
per-layer blocks. The blocks come from one boundary, so they describe the same concept at every layer by construction.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> c = {"a": torch.randn(20, 5, generator=g) + 1, "b": torch.randn(20, 7, generator=g) + 1}
    >>> r = {"a": torch.randn(20, 5, generator=g), "b": torch.randn(20, 7, generator=g)}
    >>> v = fused_cav(c, r)
    >>> {k: tuple(x.shape) for k, x in v.items()}, round(float(v["a"].norm()), 4)
    ({'a': (5,), 'b': (7,)}, 1.0)
"""
from __future__ import annotations

from typing import Mapping

import torch

from helpers.concepts.cav import gram_matrix, logistic_from_gram


def fused_cav(concept: Mapping[str, torch.Tensor], random: Mapping[str, torch.Tensor], C: float = 1.0
              ) -> dict[str, torch.Tensor]:
    """One CAV over all layers: ``{layer: (d_layer,) unit vector}``, the blocks of one boundary on the concatenation
    of every layer's RMS-normalised flattened activations (``concept[layer]`` and ``random[layer]``, (N, ...))."""
    if set(concept) != set(random) or not concept:
        raise ValueError(f"concept and random must have the same layers, got {sorted(concept)} and {sorted(random)}")
    n_c = {len(x) for x in concept.values()}
    n_r = {len(x) for x in random.values()}
    if len(n_c) != 1 or len(n_r) != 1:
        raise ValueError(f"every layer needs the same examples: concept counts {n_c}, random counts {n_r}")
    xs, gram = {}, None
    for layer in concept:
        x = torch.cat([concept[layer].flatten(1), random[layer].flatten(1)]).double()  # (n, d_layer)
        scale = x.pow(2).sum(1).mean().sqrt().clamp_min(1e-12)  # RMS row norm
        xs[layer] = x / scale
        k = gram_matrix(xs[layer])
        gram = k if gram is None else gram + k  # Gram of the concatenation = sum of the layers' Grams
    labels = torch.cat([torch.ones(n_c.pop()), torch.zeros(n_r.pop())])
    alpha, _ = logistic_from_gram(gram, labels, C)
    out = {}
    for layer, x in xs.items():
        w = x.T @ alpha  # this layer's block of the joint weight vector (in normalised units; same direction)
        out[layer] = (w / w.norm().clamp_min(1e-12)).float()
    return out
