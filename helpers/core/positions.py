"""Token positions: the one ``Positions`` type that capture, edit and extract accept, and how it indexes.

A position selects along dim 1 of a ``(B, T, ...)`` activation (the tokens of a transformer's stream).

Example:
    >>> x = torch.arange(6.).view(1, 3, 2)
    >>> select(x, -1)
    tensor([[4., 5.]])
    >>> assign(x, [0], torch.zeros(2))[0, 0]
    tensor([0., 0.])
"""
from __future__ import annotations

from typing import Union

import torch

Positions = Union[int, slice, list, torch.Tensor, None]  # None: every position


def select(t: torch.Tensor, positions: Positions) -> torch.Tensor:
    """``t[:, positions]``: (B, T, ...) -> (B, len(positions), ...), or (B, ...) for one int; ``None`` keeps all."""
    if positions is None:
        return t
    return t[:, positions]


def assign(out: torch.Tensor, positions: Positions, value: torch.Tensor) -> torch.Tensor:
    """A copy of ``out`` (B, T, ...) whose ``positions`` along dim 1 are set to ``value`` (broadcast)."""
    new = out.clone()
    new[:, positions] = value
    return new
