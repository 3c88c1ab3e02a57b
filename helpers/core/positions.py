"""Positions: the one type saying which tokens ``capture``, ``edit`` (and every edit function) and ``extract`` touch.

A plain index (``-1``, ``[0, 5]``, ``slice(2, None)``, a tensor) selects **tokens**: dimension 1 of a
``(B, T, d)`` stream. Any other layout is refused with an error, because dimension 1 means something
else there (channels of a ``(B, C, H, W)`` feature map, features of a ``(B, d)`` vector). For another
layout say the dimension: ``Along(2, [0, 3])`` (e.g. query positions of ``(B, heads, T, T)`` patterns).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

Index = Union[int, slice, Sequence[int], torch.Tensor]


@dataclass(frozen=True)
class Along:
    """Positions along an explicit dimension ``dim`` (>= 1) of any activation.

    Example:
        >>> select(torch.arange(24).view(1, 2, 3, 4), Along(3, [0]))[0, :, :, 0]
        tensor([[ 0,  4,  8],
                [12, 16, 20]])
    """
    dim: int
    index: Index

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or self.dim == 0:
            raise ValueError(f"Along(dim, index): dim must be an int other than 0 (the batch), got {self.dim!r}")


Positions = Union[Index, Along, None]

_LAYOUTS = {2: "(B, d): dimension 1 holds its features",
            4: "(B, C, H, W): dimension 1 holds its channels",
            5: "(B, C, D, H, W): dimension 1 holds its channels"}


def _indexer(t: torch.Tensor, positions: Index | Along, what: str) -> tuple:
    """``t[indexer]`` selects ``positions``; validates the layout first."""
    if isinstance(positions, Along):
        dim = positions.dim if positions.dim > 0 else t.ndim + positions.dim
        if not 1 <= dim < t.ndim:
            raise ValueError(f"{positions!r} does not fit {what} of shape {tuple(t.shape)}.")
        index = positions.index
    else:
        if t.ndim != 3:
            layout = _LAYOUTS.get(t.ndim, f"{t.ndim}-D")
            raise ValueError(
                f"positions= picks tokens along dimension 1 of a (B, T, d) activation, but {what} has shape "
                f"{tuple(t.shape)}, {layout}. Capture the whole activation and index it yourself, or name "
                f"the dimension: positions=helpers.core.positions.Along(dim, index).")
        dim, index = 1, positions
    if isinstance(index, (list, tuple)):
        index = torch.as_tensor(index, dtype=torch.long, device=t.device)
    elif isinstance(index, torch.Tensor):
        index = index.to(t.device)
    return (slice(None),) * dim + (index,)


def select(t: torch.Tensor, positions: Positions, what: str = "the activation") -> torch.Tensor:
    """``t`` at ``positions`` (a view or a copy, as torch indexing gives); ``None`` keeps all of ``t``.

    An int drops the dimension: ``(B, T, d)`` at ``-1`` is ``(B, d)``; a list keeps it: ``(B, P, d)``.

    Example:
        >>> select(torch.zeros(2, 5, 3), [0, 4]).shape, select(torch.zeros(2, 5, 3), -1).shape
        (torch.Size([2, 2, 3]), torch.Size([2, 3]))
    """
    if positions is None:
        return t
    return t[_indexer(t, positions, what)]


def assign(t: torch.Tensor, positions: Positions, value: torch.Tensor,
           what: str = "the activation") -> torch.Tensor:
    """A copy of ``t`` whose ``positions`` hold ``value`` (broadcast); ``None``: everywhere.

    Example:
        >>> assign(torch.zeros(1, 3, 2), [1], torch.ones(2))[0]
        tensor([[0., 0.],
                [1., 1.],
                [0., 0.]])
    """
    new = t.clone()
    if positions is None:
        new[...] = value
    else:
        new[_indexer(t, positions, what)] = value
    return new

