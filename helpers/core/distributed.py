"""The few ``torch.distributed`` facts the engine needs: which rank this is, how the data is split, and
how one rank's failure reaches every rank.

Launch with ``torchrun --nproc-per-node N script.py`` (gloo on CPUs, NCCL on GPUs): torchrun sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables, and :func:`start` joins the group.
Without those variables everything runs as one process (rank 0 of 1).

The split is by batches, in contiguous blocks: with ``B`` batches and ``N`` ranks, rank ``r`` takes
batches ``[r*B//N, (r+1)*B//N)``. The same ``B`` and ``N`` always give the same split, and reading the
shards in rank order gives the samples in the data's own order.

Example:
    >>> batch_range(10, rank=0, world_size=3), batch_range(10, rank=2, world_size=3)
    (range(0, 3), range(6, 10))
    >>> rank_info()                      # no torchrun variables here: one process
    RankInfo(rank=0, world_size=1, local_rank=0)
"""
from __future__ import annotations

import atexit
import datetime
import os
import sys
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

_NOTICED = {"done": False}


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the rank variables torchrun sets are present."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE"))


def rank_info() -> RankInfo:
    """This process's rank, the world size and the local rank: from the process group when one is running,
    else from torchrun's variables, else ``(0, 1, 0)``."""
    if dist.is_available() and dist.is_initialized():
        return RankInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if launched_by_torchrun():
        return RankInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    return RankInfo(0, 1, 0)


def start(distributed: Optional[bool] = None, backend: str = "auto") -> RankInfo:
    """Join the process group when launched by torchrun (``distributed=None`` or ``True``).

    ``distributed=True`` without torchrun's variables prints one line and runs as one process (never waits
    for peers that will not come); ``False`` always runs as one process. ``backend="auto"`` is NCCL when
    CUDA is available, gloo otherwise.
    """
    if distributed is False:
        return RankInfo(0, 1, 0)
    if not launched_by_torchrun():
        if distributed and not _NOTICED["done"]:
            print("helpers: distributed mode asked for, but no torchrun environment (RANK/WORLD_SIZE unset): "
                  "running as one process. Launch with `torchrun --nproc-per-node N ...` to use N.", file=sys.stderr)
            _NOTICED["done"] = True
        return RankInfo(0, 1, 0)
    if int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
        # A group still alive at interpreter exit can abort the process (gloo's threads); the group we
        # started, we also end.
        atexit.register(_end_group)
    return rank_info()


def _end_group() -> None:
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "gloo":
            # Every rank reaches the end before any tears its connections down: a peer that closes while
            # another is still connected made gloo abort the process ("terminate called without an active
            # exception", 5 exits in 12 here). Bounded, so a rank that left early cannot hang the others.
            try:
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
            except RuntimeError:
                pass
        dist.destroy_process_group()


def batch_range(n_batches: int, rank: int, world_size: int) -> range:
    """The contiguous block of batch indices rank ``rank`` of ``world_size`` takes (see the module doc)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return range(rank * n_batches // world_size, (rank + 1) * n_batches // world_size)


def agree(error: Optional[BaseException]) -> None:
    """Collective: every rank passes the exception it met (or ``None``); if any rank has one, every rank raises
    it (same type, message prefixed by the rank), so one rank's failure stops all of them instead of leaving
    the others waiting in a barrier.

    Example:
        >>> agree(None)                  # one process, nothing wrong
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        if error is not None:
            raise error
        return
    errors: list[Optional[BaseException]] = [None] * dist.get_world_size()
    dist.all_gather_object(errors, error)
    for rank, found in enumerate(errors):
        if found is not None:
            if rank == dist.get_rank():
                raise found
            try:
                raised = type(found)(f"rank {rank}: {found}")
            except TypeError:  # an exception type whose constructor wants other arguments
                raised = RuntimeError(f"rank {rank}: {type(found).__name__}: {found}")
            raise raised


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def all_reduce_sum(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The element-wise sums of ``tensors`` over every rank (the tensors themselves in one process).

    Example:
        >>> all_reduce_sum([torch.ones(2)])[0].tolist()
        [1.0, 1.0]
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    out = [t.detach().clone() for t in tensors]
    for t in out:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return out
