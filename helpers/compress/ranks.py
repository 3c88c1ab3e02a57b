"""Spreading a total rank over layers: uniform ranks, and CARE's adjusted-rank allocation.

CARE (Zhou et al., ICLR 2026) starts every layer at ``r_min`` and repeatedly gives one more rank to the layer
with the largest gain until the total is spent. For layer l (0-based, of L), at current rank r, with the
singular values s of its whitened matrix and E = sum(s^2):

    gain = [s_{r+1}^2 / E] / [1 - sum_{i<=r} s_i^2 / E] * sqrt((L - l) / ((L + 1) / 2)) / sqrt(r / r_min)

(the share of the still-missing energy that the next rank recovers, a depth factor that favours early layers,
and a damping of layers that already have many ranks). With layers of one shape, an equal total rank is an
equal parameter budget.

Example:
    >>> spectra = {"a": torch.tensor([4.0, 2, 1, 0.5]), "b": torch.tensor([1.0, 1, 1, 1])}
    >>> uniform_ranks(spectra, 4)
    {'a': 2, 'b': 2}
    >>> sum(care_ranks(spectra, 4, depth={"a": 0, "b": 1}).values())
    4
"""
from __future__ import annotations

import math

import torch


def _check_total(spectra: dict[str, torch.Tensor], total: int, r_min: int) -> None:
    if not spectra:
        raise ValueError("no layers given")
    cap = sum(len(s) for s in spectra.values())
    if not isinstance(total, int) or not r_min * len(spectra) <= total <= cap:
        raise ValueError(f"a total rank of {total} cannot be spread over {len(spectra)} layers: it must be between "
                         f"{r_min * len(spectra)} (r_min = {r_min} each) and {cap} (every layer at full rank)")


def uniform_ranks(spectra: dict[str, torch.Tensor], total: int) -> dict[str, int]:
    """The same rank everywhere (the remainder, if any, goes to the first layers), summing to ``total``."""
    _check_total(spectra, total, 1)
    base, extra = divmod(total, len(spectra))
    return {name: base + (i < extra) for i, name in enumerate(spectra)}


def care_gain(s: torch.Tensor, r: int, layer: int, n_layers: int, r_min: int) -> float:
    """CARE's gain of rank r -> r + 1 for one layer (``s``: singular values, largest first; ``layer`` 0-based)."""
    if r >= len(s):
        return -math.inf
    energy = s.double().pow(2)
    total = float(energy.sum())
    if total <= 0:
        return -math.inf
    missing = max(1.0 - float(energy[:r].sum()) / total, 1e-300)
    depth = math.sqrt(max(n_layers - layer, 0) / ((n_layers + 1) / 2))
    return float(energy[r]) / total / missing * depth / math.sqrt(r / r_min)


def care_ranks(spectra: dict[str, torch.Tensor], total: int, depth: dict[str, int] | None = None,
               r_min: int = 1) -> dict[str, int]:
    """CARE's dynamic ranks summing to ``total`` (see the module docstring).

    ``depth`` maps each layer to its block index l (0-based); several matrices may share a block. By default
    each layer is its own block, in the order given.
    """
    _check_total(spectra, total, r_min)
    depth = depth if depth is not None else {name: i for i, name in enumerate(spectra)}
    missing = set(spectra) - set(depth)
    if missing:
        raise ValueError(f"depth has no block index for {sorted(missing)}")
    n_layers = max(depth.values()) + 1
    ranks = {name: r_min for name in spectra}
    for _ in range(total - r_min * len(spectra)):
        gains = {name: care_gain(s, ranks[name], depth[name], n_layers, r_min) for name, s in spectra.items()}
        best = max(gains, key=gains.get)
        ranks[best] += 1
    return ranks
