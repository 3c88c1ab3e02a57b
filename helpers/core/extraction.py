"""Stream a dataset's activations to disk, batch by batch, into memory-mapped ``.npy`` files.

    store = extract(model, loader, ["blocks.*"], out="build/acts/gpt", positions=-1)
    store["blocks.3"]        # (N, d) tensor backed by the file, read lazily

The folder holds one ``<layer>.npy`` per layer and ``manifest.json`` (shapes, dtypes, model,
layers, how many samples are done). An interrupted run resumes where it stopped. The disk
space is checked after the first batch, before any file is written. On CUDA, the copy of a
batch to pinned host memory overlaps the next batch's compute.

Under ``torchrun --nproc-per-node N`` every rank takes a contiguous block of the batches
(:func:`helpers.core.distributed.batch_range`), writes its own shard folder, and rank 0 writes one
manifest naming every shard after checking their checksums; the result reads as one store
(:mod:`helpers.core.shards`). Resuming works per shard: finished shards are checked, not recomputed.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from helpers.core.checksum import ChecksumError, sha256_of
from helpers.core.distributed import RankInfo, agree, batch_range, start
from helpers.core.positions import Positions
from helpers.core.names import LayerSpec, resolve_layers
from helpers.core.shards import identity_conflicts, shard_folder, shard_world_sizes
from helpers.core.store import MANIFEST, ActivationStore, file_for
from helpers.core.writing import NUMPY_DTYPES, batch_size, default_forward, extract_folder


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
    distributed: Optional[bool] = None,
) -> ActivationStore:
    """Run ``model`` over ``data`` and write the outputs of ``layers`` to ``out``.

    Args:
        data: an iterable of batches (a ``DataLoader``, a list of tensors, ...); each batch is a
            tensor, a tuple whose first item is the input, or a dict of keyword arguments.
        n: number of samples; taken from ``len(data.dataset)`` when data is a DataLoader.
        positions / dtype: as in :func:`helpers.capture` (e.g. ``positions=-1``, ``torch.float16``).
        forward: ``forward(model, batch, device)`` when the model needs a special call.
        resume: continue an interrupted store with the same layers and shapes (the data must
            come in the same order); ``False`` starts afresh. A folder holding another model's or other
            layers' store (or one written by another number of ranks) is refused unless ``resume=False``.
        distributed: ``None`` shards over the ranks when launched by torchrun and runs as one process
            otherwise; ``True`` asks for it (one line of notice when there is no torchrun); ``False`` never
            shards. Sharding needs every batch's size up front: a list of batches or a ``DataLoader``
            with ``batch_size`` (each rank still iterates the loader, but runs the model only on its batches).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        >>> batches = [torch.randn(5, 4) for _ in range(3)]
        >>> store = extract(model, batches, "1", out=tmp, n=15, progress=False)  # doctest: +SKIP
        >>> store["1"].shape                                                     # doctest: +SKIP
        torch.Size([15, 8])
    """
    names = resolve_layers(model, layers)
    if dtype is not None and dtype not in NUMPY_DTYPES:
        raise ValueError(f"dtype {dtype} cannot be stored in .npy; use one of {list(NUMPY_DTYPES)}.")
    if n is None:
        dataset = getattr(data, "dataset", None)
        if dataset is None and isinstance(data, (list, tuple)):
            n = sum(batch_size(b) for b in data)
        elif dataset is not None:
            n = len(dataset)
        else:
            raise ValueError("Cannot tell how many samples `data` has: pass n=... .")
    forward = forward or default_forward
    ranks = start(distributed)
    identity = {"model": type(model).__name__, "layers": names, "world_size": ranks.world_size}
    if ranks.world_size == 1:
        _check_folder(out, identity, resume)
        return extract_folder(model, data, names, out, n=n, positions=positions, dtype=dtype, forward=forward,
                               resume=resume, progress=progress)
    return _extract_sharded(model, data, names, out, ranks, identity, n=n, positions=positions, dtype=dtype,
                            forward=forward, resume=resume, progress=progress)


def _check_folder(out: str, identity: dict[str, Any], resume: bool) -> None:
    """Refuse (``resume=True``) a folder that holds another run's store: model, layers or number of ranks."""
    path = os.path.join(out, MANIFEST)
    recorded: Optional[dict[str, Any]] = None
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        recorded = {"model": old.get("model"), "layers": list(old.get("layers", [])),
                    "world_size": old.get("world_size", 1)}
    else:
        sizes = shard_world_sizes(out)
        if sizes:
            recorded = {**identity, "world_size": sizes.pop() if len(sizes) == 1 else sorted(sizes)}
    if recorded is None:
        return
    conflicts = identity_conflicts(recorded, identity, ["model", "layers", "world_size"])
    if conflicts and resume:
        raise ValueError(f"the folder {out!r} holds another run's activation store:\n{conflicts}\n"
                         f"Use another folder, or pass resume=False to overwrite it.")
    if not resume:
        for name in os.listdir(out) if os.path.isdir(out) else []:
            target = os.path.join(out, name)
            if name.startswith("shard-") and os.path.isdir(target):
                shutil.rmtree(target)
            elif name in (MANIFEST, MANIFEST + ".tmp"):
                os.remove(target)


def _batch_sizes(data: Iterable[Any]) -> list[int]:
    """Every batch's size, known before iterating (what a rank needs to find its block of samples)."""
    if isinstance(data, (list, tuple)):
        return [batch_size(b) for b in data]
    dataset, size = getattr(data, "dataset", None), getattr(data, "batch_size", None)
    if dataset is not None and size:
        total = len(dataset)
        sizes = [size] * (total // size)
        if total % size and not getattr(data, "drop_last", False):
            sizes.append(total % size)
        return sizes
    raise ValueError(f"distributed extraction needs every batch's size before it starts: pass a list of batches "
                     f"or a DataLoader with batch_size; got {type(data).__name__}")


def _shard_checksums(folder: str, names: list[str]) -> dict[str, str]:
    return {name: sha256_of(os.path.join(folder, file_for(name))) for name in names}


def _verify_shard(folder: str, recorded: dict[str, str]) -> None:
    for name, expected in recorded.items():
        actual = sha256_of(os.path.join(folder, file_for(name)))
        if actual != expected:
            raise ChecksumError(f"shard {os.path.basename(folder)!r}: {file_for(name)} has SHA-256 {actual[:16]}..., "
                                f"expected {expected[:16]}... The shard is damaged; delete that folder and run "
                                f"again to recompute it (the other shards are kept).")


def _extract_sharded(model: nn.Module, data: Iterable[Any], names: list[str], out: str, ranks: RankInfo,
                     identity: dict[str, Any], *, n: int, positions: Positions, dtype: Optional[torch.dtype],
                     forward: Callable[[nn.Module, Any, torch.device], None], resume: bool,
                     progress: bool) -> ActivationStore:
    """This rank's block of batches into its shard folder; rank 0 then checks every shard and writes the manifest."""
    error: Optional[BaseException] = None
    try:
        sizes = _batch_sizes(data)
        if sum(sizes) != n:
            raise ValueError(f"the batches hold {sum(sizes)} samples but n={n}")
        if ranks.is_main:
            _check_folder(out, identity, resume)
    except (ValueError, ChecksumError) as e:
        error = e
    agree(error)  # a refused folder or bad data stops every rank before any work
    bounds = [batch_range(len(sizes), r, ranks.world_size) for r in range(ranks.world_size)]
    starts = [sum(sizes[:b.start]) for b in bounds]
    stops = [sum(sizes[:b.stop]) for b in bounds]
    mine = bounds[ranks.rank]
    folder = os.path.join(out, shard_folder(ranks.rank, ranks.world_size))
    shard_manifest = os.path.join(folder, MANIFEST)
    error = None
    try:
        finished = None
        if resume and os.path.exists(shard_manifest):
            with open(shard_manifest) as f:
                finished = json.load(f)
            if finished.get("done") != finished.get("n") or "sha256" not in finished:
                finished = None
        if finished is not None:
            _verify_shard(folder, finished["sha256"])  # finished earlier: check it, do not recompute it
        else:
            own = (b for i, b in enumerate(data) if i in mine)
            extract_folder(model, own, names, folder, n=stops[ranks.rank] - starts[ranks.rank], positions=positions,
                            dtype=dtype, forward=forward, resume=resume, progress=progress and ranks.is_main)
            with open(shard_manifest) as f:
                finished = json.load(f)
            finished["sha256"] = _shard_checksums(folder, names)
            with open(shard_manifest + ".tmp", "w") as f:
                json.dump(finished, f, indent=1)
            os.replace(shard_manifest + ".tmp", shard_manifest)
    except Exception as e:  # noqa: BLE001 -- handed to every rank by agree()
        error = e
    agree(error)
    error = None
    if ranks.is_main:
        try:
            shards = []
            for r in range(ranks.world_size):
                sub = os.path.join(out, shard_folder(r, ranks.world_size))
                with open(os.path.join(sub, MANIFEST)) as f:
                    meta = json.load(f)
                _verify_shard(sub, meta["sha256"])  # another rank's shard, read back before naming it
                shards.append({"folder": shard_folder(r, ranks.world_size), "start": starts[r], "stop": stops[r],
                               "sha256": meta["sha256"]})
            layers = {name: {**meta["layers"][name], "shape": [n, *meta["layers"][name]["shape"][1:]]}
                      for name in names}
            manifest = {"format": 2, "model": identity["model"], "layers": layers, "n": n,
                        "positions": repr(positions), "world_size": ranks.world_size, "done": n, "shards": shards}
            with open(os.path.join(out, MANIFEST + ".tmp"), "w") as f:
                json.dump(manifest, f, indent=1)
            os.replace(os.path.join(out, MANIFEST + ".tmp"), os.path.join(out, MANIFEST))
        except Exception as e:  # noqa: BLE001
            error = e
    agree(error)
    return ActivationStore(out)
