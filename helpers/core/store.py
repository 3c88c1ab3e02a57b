"""An activation store on disk: one memory-mapped ``<layer>.npy`` per layer and ``manifest.json``.

Written by :func:`helpers.extract`; read lazily here (a slice reads only its rows from disk). A store
written by several ``torchrun`` ranks (format 2: one shard folder per rank, see :mod:`helpers.core.shards`)
reads the same: the same layers, the same sample order, the same indexing; its ``store[layer]`` is a
:class:`~helpers.core.shards.ConcatRows` view instead of one memory-mapped tensor.

Example:
    >>> import tempfile, torch
    >>> from helpers.core.extraction import extract
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    >>> store = extract(net, [torch.rand(5, 3), torch.rand(5, 3)], "0", out=tempfile.mkdtemp(), progress=False)
    >>> ActivationStore(store.folder)["0"].shape
    torch.Size([10, 4])
"""
from __future__ import annotations

import json
import os

from typing import Union

import numpy as np
import torch

from helpers.core.shards import ConcatRows

MANIFEST = "manifest.json"


def file_for(name: str) -> str:
    """The file of one layer inside a store folder."""
    return name.replace(os.sep, "_") + ".npy"


class ActivationStore:
    """The activations written by :func:`extract`, opened lazily from disk.

    Example:
        >>> store = ActivationStore("build/acts/gpt")        # doctest: +SKIP
        >>> store["blocks.0"][:10].shape                      # doctest: +SKIP
        torch.Size([10, 128])
    """

    def __init__(self, folder: str):
        path = os.path.join(folder, MANIFEST)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No activation store at {folder!r} (missing {MANIFEST}); create one with helpers.extract().")
        self.folder = folder
        with open(path) as f:
            self.manifest = json.load(f)

    @property
    def layers(self) -> list[str]:
        return list(self.manifest["layers"])

    @property
    def complete(self) -> bool:
        return self.manifest["done"] == self.manifest["n"]

    @property
    def shards(self) -> list[dict]:
        """The shards of a store written by several ranks (folder, first and last sample); ``[]`` for one process."""
        return list(self.manifest.get("shards", []))

    def numpy(self, name: str) -> Union[np.memmap, ConcatRows]:
        """One layer as a memory-mapped array (a :class:`ConcatRows` of NumPy arrays for a sharded store)."""
        if name not in self.manifest["layers"]:
            raise KeyError(f"{name!r} is not in this store. Layers: {self.layers}")
        file = self.manifest["layers"][name]["file"]
        if not self.shards:
            # copy-on-write: writable for torch, never changes the file
            return np.load(os.path.join(self.folder, file), mmap_mode="c")
        return ConcatRows([np.load(os.path.join(self.folder, s["folder"], file), mmap_mode="c") for s in self.shards])

    def __getitem__(self, name: str) -> Union[torch.Tensor, ConcatRows]:
        array = self.numpy(name)
        if isinstance(array, ConcatRows):
            return ConcatRows(array.parts, as_torch=True)
        return torch.from_numpy(array)

    def __repr__(self) -> str:
        rows = [f"ActivationStore({self.folder!r}, {self.manifest['done']}/{self.manifest['n']} samples)"]
        for name, meta in self.manifest["layers"].items():
            rows.append(f"  {name}: {tuple(meta['shape'])} {meta['dtype']}")
        return "\n".join(rows)
