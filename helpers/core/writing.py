"""One process's extraction into one folder: the batches' activations streamed into memory-mapped
``.npy`` files and a ``manifest.json`` that records how many samples are done (used by
:func:`helpers.extract`, for a whole store or for one rank's shard).

Example:
    >>> import tempfile
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    >>> store = extract_folder(net, [torch.rand(5, 3), torch.rand(5, 3)], ["0"], tempfile.mkdtemp(), n=10,
    ...                        positions=None, dtype=None, forward=default_forward, resume=True, progress=False)
    >>> store["0"].shape
    torch.Size([10, 4])
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

from helpers.core.budget import check_disk
from helpers.core.capturing import capture
from helpers.core.positions import Positions
from helpers.core.store import MANIFEST, ActivationStore, file_for

CHECKPOINT_SECONDS = 2.0
NUMPY_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.float64: "float64",
                torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8", torch.bool: "bool"}


def default_forward(model: nn.Module, batch: Any, device: torch.device) -> None:
    """Call the model on a batch: a tensor, ``(inputs, labels, ...)`` or a dict of kwargs."""
    if isinstance(batch, dict):
        model(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()})
    elif isinstance(batch, (tuple, list)):
        model(batch[0].to(device))
    else:
        model(batch.to(device))


def batch_size(batch: Any) -> int:
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


def extract_folder(model: nn.Module, data: Iterable[Any], names: list[str], out: str, *, n: int,
                    positions: Positions, dtype: Optional[torch.dtype],
                    forward: Callable[[nn.Module, Any, torch.device], None], resume: bool,
                    progress: bool) -> ActivationStore:
    """One process's extraction into one folder (a whole store, or one rank's shard)."""
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
        layer_meta = {name: {"shape": [n, *first[name].shape[1:]], "dtype": NUMPY_DTYPES[first[name].dtype],
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
            size = batch_size(batch)
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


