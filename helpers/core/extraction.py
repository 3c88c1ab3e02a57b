"""Stream a dataset's activations to disk, batch by batch, into memory-mapped ``.npy`` files.

    store = extract(model, loader, ["blocks.*"], out="build/acts/gpt", positions=-1)
    store["blocks.3"]        # (N, d) tensor backed by the file, read lazily

The folder holds one ``<layer>.npy`` per layer and ``manifest.json`` (shapes, dtypes, model,
layers, how many samples are done). An interrupted run resumes where it stopped. The disk
space is checked after the first batch, before any file is written. On CUDA, the copy of a
batch to pinned host memory overlaps the next batch's compute.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.core.capturing import capture
from helpers.core.positions import Positions
from helpers.core.budget import check_disk
from helpers.core.names import LayerSpec, resolve_layers
from helpers.core.store import MANIFEST, ActivationStore, file_for

CHECKPOINT_SECONDS = 2.0
_NUMPY_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.float64: "float64",
                 torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8", torch.bool: "bool"}


def _default_forward(model: nn.Module, batch: Any, device: torch.device) -> None:
    """Call the model on a batch: a tensor, ``(inputs, labels, ...)`` or a dict of kwargs."""
    if isinstance(batch, dict):
        model(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()})
    elif isinstance(batch, (tuple, list)):
        model(batch[0].to(device))
    else:
        model(batch.to(device))


def _batch_size(batch: Any) -> int:
    if isinstance(batch, dict):
        batch = next(v for v in batch.values() if torch.is_tensor(v))
    elif isinstance(batch, (tuple, list)):
        batch = batch[0]
    return int(batch.shape[0])


@dataclass
class _Pending:
    """A batch whose device->host copy was queued but not yet written to disk."""
    start: int
    host: dict[str, torch.Tensor]
    event: Optional[Any]


def extract(
    model: nn.Module,
    data: Iterable[Any],
    layers: LayerSpec,
    out: str,
    *,
    n: Optional[int] = None,
    positions: Positions = None,
    dtype: Optional[torch.dtype] = None,
    forward: Optional[Callable[[nn.Module, Any, torch.device], None]] = None,
    resume: bool = True,
    progress: bool = True,
) -> ActivationStore:
    """Run ``model`` over ``data`` and write the outputs of ``layers`` to ``out``.

    Args:
        data: an iterable of batches (a ``DataLoader``, a list of tensors, ...); each batch is a
            tensor, a tuple whose first item is the input, or a dict of keyword arguments.
        n: number of samples; taken from ``len(data.dataset)`` when data is a DataLoader.
        positions / dtype: as in :func:`helpers.capture` (e.g. ``positions=-1``, ``torch.float16``).
        forward: ``forward(model, batch, device)`` when the model needs a special call.
        resume: continue an interrupted store with the same layers and shapes (the data must
            come in the same order); ``False`` starts afresh.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        >>> batches = [torch.randn(5, 4) for _ in range(3)]
        >>> store = extract(model, batches, "1", out=tmp, n=15, progress=False)  # doctest: +SKIP
        >>> store["1"].shape                                                     # doctest: +SKIP
        torch.Size([15, 8])
    """
    names = resolve_layers(model, layers)
    if dtype is not None and dtype not in _NUMPY_DTYPES:
        raise ValueError(f"dtype {dtype} cannot be stored in .npy; use one of {list(_NUMPY_DTYPES)}.")
    if n is None:
        dataset = getattr(data, "dataset", None)
        if dataset is None and isinstance(data, (list, tuple)):
            n = sum(_batch_size(b) for b in data)
        elif dataset is not None:
            n = len(dataset)
        else:
            raise ValueError("Cannot tell how many samples `data` has: pass n=... .")
    forward = forward or _default_forward
    device = next(model.parameters()).device
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, MANIFEST)
    old = None
    if resume and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
    files: dict[str, np.memmap] = {}
    manifest: dict[str, Any] = {}
    done = 0

    def open_files(first: dict[str, torch.Tensor]) -> None:
        nonlocal manifest, done
        layer_meta = {name: {"shape": [n, *first[name].shape[1:]], "dtype": _NUMPY_DTYPES[first[name].dtype],
                             "file": file_for(name)} for name in names}
        fresh = {"format": 1, "model": type(model).__name__, "layers": layer_meta, "n": n,
                 "positions": repr(positions), "done": 0}
        if old is not None and {k: v for k, v in old.items() if k != "done"} == \
                {k: v for k, v in fresh.items() if k != "done"}:
            manifest, done = old, old["done"]
            for name in names:
                files[name] = np.load(os.path.join(out, layer_meta[name]["file"]), mmap_mode="r+")
            return
        per_sample = sum(first[name][0].numel() * first[name].element_size() for name in names)
        check_disk(per_sample * n, out, f"extracting {len(names)} layer(s) x {n} samples to {out!r}")
        manifest = fresh
        for name in names:
            meta = layer_meta[name]
            files[name] = np.lib.format.open_memmap(os.path.join(out, meta["file"]), mode="w+",
                                                    dtype=meta["dtype"], shape=tuple(meta["shape"]))

    last_checkpoint = {"t": time.perf_counter()}

    def checkpoint() -> None:
        """Make the written rows durable, then record them in the manifest (so resume is safe)."""
        for mm in files.values():
            mm.flush()
        with open(manifest_path + ".tmp", "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(manifest_path + ".tmp", manifest_path)  # atomic: a crash never leaves half a manifest
        last_checkpoint["t"] = time.perf_counter()

    def write(p: _Pending) -> None:
        if p.event is not None:
            p.event.synchronize()  # the async copy into pinned memory has landed
        size = next(iter(p.host.values())).shape[0]
        for name, t in p.host.items():
            files[name][p.start:p.start + size] = t.numpy()
        manifest["done"] = p.start + size
        # msync on every batch would cap the speed far below the disk's; every few seconds
        # costs little, and an interruption only repeats the batches since the last checkpoint.
        if time.perf_counter() - last_checkpoint["t"] > CHECKPOINT_SECONDS:
            checkpoint()

    pinned: list[dict[str, torch.Tensor]] = [{}, {}]  # two host buffers, alternating (CUDA only)
    pending: Optional[_Pending] = None
    start = 0
    bar = tqdm(total=n, disable=not progress, desc="extract", unit="sample")
    model_was_training = model.training
    model.eval()
    try:
        for i, batch in enumerate(data):
            size = _batch_size(batch)
            if start + size > n:
                raise ValueError(f"data yields more than n={n} samples.")
            if files and start + size <= done:  # already on disk from an earlier run
                start += size
                continue
            with torch.no_grad(), capture(model, names, positions=positions, dtype=dtype, stop=True) as acts:
                forward(model, batch, device)
            kept = {name: acts.outputs[name] for name in names}
            if not files:
                open_files(kept)
                bar.update(done)
                if start + size <= done:
                    start += size
                    continue
            if device.type == "cuda":
                buf = pinned[i % 2]
                for name, t in kept.items():
                    if name not in buf or buf[name].shape[1:] != t.shape[1:] or buf[name].shape[0] < size:
                        buf[name] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
                    buf[name][:size].copy_(t, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
                if pending is not None:
                    write(pending)  # CPU writes batch i-1 while the GPU works on batch i
                pending = _Pending(start, {k: v[:size] for k, v in buf.items()}, event)
            else:
                write(_Pending(start, {k: v.contiguous() for k, v in kept.items()}, None))
            start += size
            bar.update(size)
        if pending is not None:
            write(pending)
    finally:
        if files:
            checkpoint()  # also on an interruption: what was written is kept
        bar.close()
        model.train(model_was_training)
    if start != n:
        raise ValueError(f"data yielded {start} samples but n={n}; the store is incomplete ({out!r}).")
    return ActivationStore(out)
