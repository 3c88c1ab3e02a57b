"""A store written by several ranks: shard folders, their names, and one lazy view over their rows.

A store written by ``N`` processes holds ``shard-00000-of-0000N/`` ... folders, each a complete
one-process store of its contiguous block of samples (its own ``manifest.json`` and ``<layer>.npy``
files), and one top-level ``manifest.json`` (format 2) that names every shard with its first and last
sample and the SHA-256 of its files. :class:`ConcatRows` reads a layer across the shards as one
``(N, ...)`` array: indexing reads only the rows asked for, from the shards that hold them.

Example:
    >>> import numpy as np
    >>> rows = ConcatRows([np.arange(6.0).reshape(3, 2), np.arange(6.0, 10).reshape(2, 2)])
    >>> rows.shape, rows[2:4].tolist(), rows[[4, 0], 1].tolist()
    ((5, 2), [[4.0, 5.0], [6.0, 7.0]], [9.0, 1.0])
"""
from __future__ import annotations

import operator
import os
import re
from typing import Any, Optional, Sequence

import numpy as np
import torch

SHARD_PATTERN = re.compile(r"^shard-(\d{5})-of-(\d{5})$")


def shard_folder(rank: int, world_size: int) -> str:
    """The folder name of rank ``rank``'s shard: ``shard-00001-of-00002``."""
    return f"shard-{rank:05d}-of-{world_size:05d}"


def shard_world_sizes(folder: str) -> set[int]:
    """The world sizes of the shard folders already inside ``folder`` (empty when there are none)."""
    if not os.path.isdir(folder):
        return set()
    return {int(m.group(2)) for name in os.listdir(folder) if (m := SHARD_PATTERN.match(name))}


def identity_conflicts(recorded: dict[str, Any], mine: dict[str, Any], keys: Sequence[str]) -> Optional[str]:
    """Side by side, the ``keys`` on which an existing store's manifest and this run differ (``None`` if none).

    Example:
        >>> print(identity_conflicts({"model": "GPT", "world_size": 2}, {"model": "GPT", "world_size": 1},
        ...                          ["model", "world_size"]))
          world_size: store has 2, this run has 1
    """
    rows = [f"  {k}: store has {recorded.get(k)!r}, this run has {mine.get(k)!r}"
            for k in keys if recorded.get(k) != mine.get(k)]
    return "\n".join(rows) if rows else None


_BINARY = ["add", "sub", "mul", "truediv", "floordiv", "matmul", "pow", "mod", "lt", "le", "gt", "ge", "eq", "ne"]


class ConcatRows:
    """The rows of several arrays (``parts``, e.g. memory-mapped shards) as one ``(N, ...)`` array, read lazily.

    ``view[i]``, ``view[a:b]``, ``view[index_array]`` and ``view[rows, ...rest]`` read only the rows asked for
    and return a ``torch.Tensor`` (``as_torch=True``, what ``store[layer]`` gives) or a NumPy array. Any
    other use (a torch function, a method such as ``.float()`` or ``.reshape``, arithmetic) reads the whole
    layer once into memory and works on that copy; :meth:`tensor` does so explicitly.

    Example:
        >>> view = ConcatRows([np.ones((2, 3), np.float32), np.zeros((1, 3), np.float32)], as_torch=True)
        >>> view[1:].sum().item(), view.float().shape, (view * 2)[0, 0].item(), torch.sum(view).item()
        (3.0, torch.Size([3, 3]), 2.0, 6.0)
    """

    def __init__(self, parts: Sequence[np.ndarray], as_torch: bool = False):
        if not parts:
            raise ValueError("ConcatRows needs at least one part")
        tail = parts[0].shape[1:]
        for p in parts:
            if p.shape[1:] != tail or p.dtype != parts[0].dtype:
                raise ValueError(f"parts differ: {[(tuple(q.shape), str(q.dtype)) for q in parts]}")
        self.parts = list(parts)
        self.as_torch = as_torch
        self.bounds = np.cumsum([0] + [len(p) for p in parts])  # part j holds rows [bounds[j], bounds[j+1])
        self.shape = (int(self.bounds[-1]), *tail)
        self.dtype = parts[0].dtype
        self._whole: Optional[Any] = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ConcatRows(shape={self.shape}, dtype={self.dtype}, parts={len(self.parts)})"

    def _out(self, array: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(array)) if self.as_torch else array

    def _rows(self, index: Any) -> np.ndarray:
        """Rows by an int, a slice, or an integer/boolean index array, in the order asked for."""
        n = len(self)
        if isinstance(index, (int, np.integer)) or (torch.is_tensor(index) and index.ndim == 0):
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"row {i} is out of range for {n} rows")
            i %= n
            j = int(np.searchsorted(self.bounds, i, side="right") - 1)
            return np.asarray(self.parts[j][i - self.bounds[j]])
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                pieces = [p[max(start - lo, 0):min(stop, hi) - lo]
                          for p, lo, hi in zip(self.parts, self.bounds[:-1], self.bounds[1:])
                          if start < hi and stop > lo]
                return np.concatenate(pieces) if pieces else np.empty((0, *self.shape[1:]), self.dtype)
            index = np.arange(start, stop, step)
        idx = index.cpu().numpy() if torch.is_tensor(index) else np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean row mask must have shape ({n},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"rows can be an int, a slice or a 1-d integer/boolean array; got {index!r}")
        if len(idx) and not (-n <= idx.min() and idx.max() < n):
            raise IndexError(f"row indices must be in [-{n}, {n}); got {idx.min()}..{idx.max()}")
        idx = idx % n
        out = np.empty((len(idx), *self.shape[1:]), self.dtype)
        for p, lo, hi in zip(self.parts, self.bounds[:-1], self.bounds[1:]):
            mine = (idx >= lo) & (idx < hi)
            if mine.any():
                out[mine] = p[idx[mine] - lo]
        return out

    def __getitem__(self, index: Any) -> Any:
        rows, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else (index, ())
        if rows is Ellipsis:
            return self.tensor()[index] if self.as_torch else self.numpy()[index]
        picked = self._rows(rows)
        if rest:
            lead = () if picked.ndim == len(self.shape) - 1 else (slice(None),)
            picked = picked[lead + tuple(rest)]
        return self._out(picked)

    def numpy(self) -> np.ndarray:
        """Every row in one in-memory NumPy array (read once, then kept)."""
        if self._whole is None:
            self._whole = np.concatenate(self.parts)
        return self._whole

    def tensor(self) -> torch.Tensor:
        """Every row in one in-memory tensor (shares memory with :meth:`numpy`)."""
        return torch.from_numpy(self.numpy())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.numpy()
        return whole.astype(dtype) if dtype is not None else whole

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
        def whole(a: Any) -> Any:
            if isinstance(a, ConcatRows):
                return a.tensor()
            if isinstance(a, (list, tuple)):
                return type(a)(whole(b) for b in a)
            return a
        return func(*whole(args), **{k: whole(v) for k, v in (kwargs or {}).items()})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.tensor() if self.as_torch else self.numpy(), name)


def _delegate(op: str, reflected: bool) -> Any:
    fn = getattr(operator, op)

    def method(self: ConcatRows, other: Any) -> Any:
        me = self.tensor() if self.as_torch else self.numpy()
        other = other.tensor() if isinstance(other, ConcatRows) else other
        return fn(other, me) if reflected else fn(me, other)
    return method


for _op in _BINARY:
    setattr(ConcatRows, f"__{_op}__", _delegate(_op, False))
    if _op not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(ConcatRows, f"__r{_op}__", _delegate(_op, True))
ConcatRows.__neg__ = lambda self: -(self.tensor() if self.as_torch else self.numpy())  # type: ignore[method-assign]
ConcatRows.__hash__ = None  # type: ignore[assignment]  # __eq__ is elementwise, as for arrays
