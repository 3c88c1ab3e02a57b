"""Worker for tests/test_distributed.py, run under ``torchrun`` (or as one process).

    python -m torch.distributed.run --nproc-per-node 2 tests/distributed_worker.py extract OUT LOG
    python tests/distributed_worker.py sae OUT RESULT.pt

``extract`` writes the activations of a small seeded MLP over fixed batches of uneven sizes and appends one
line ``rank batch`` to LOG per forward (so a test can count what was recomputed). With ``KILL_RANK`` and
``KILL_AT`` set, that rank waits until rank 0's shard is finished, then kills itself (SIGKILL) at that forward.
``sae`` trains a top-k SAE data-parallel on the store and rank 0 saves its weights.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import torch
from torch import nn

import helpers
from helpers.core import writing
from helpers.core.distributed import rank_info
from helpers.decompose.sae import SparseAutoencoder, train_from_store

SIZES = [5, 5, 5, 5, 5, 5, 5, 3]  # 38 samples in 8 batches; the last one shorter


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8))


def make_batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(s, 6, generator=g) for s in SIZES]


def extract(out: str, log: str) -> None:
    writing.CHECKPOINT_SECONDS = 0.0  # record progress after every batch, so a killed rank loses nothing
    rank = rank_info().rank
    kill_rank, kill_at = int(os.environ.get("KILL_RANK", -1)), int(os.environ.get("KILL_AT", 0))
    calls = {"n": 0}

    def forward(model: nn.Module, batch: torch.Tensor, device: torch.device) -> None:
        calls["n"] += 1
        if rank == kill_rank and calls["n"] == kill_at:
            first = os.path.join(out, "shard-00000-of-%05d" % rank_info().world_size, "manifest.json")
            for _ in range(600):  # rank 0's shard must be finished first (what the test checks is kept)
                if os.path.exists(first) and "sha256" in json.load(open(first)):
                    break
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
        with open(log, "a") as f:
            f.write(f"{rank} {calls['n']}\n")
        model(batch)

    helpers.extract(make_model(), make_batches(), ["0", "2"], out=out, forward=forward, progress=False)


def sae(out: str, result: str) -> None:
    store = helpers.ActivationStore(out)
    model = SparseAutoencoder(16, 32, k=4, seed=0)
    log = train_from_store(model, store, "0", steps=40, batch_size=64, lr=3e-3)
    if rank_info().rank == 0:
        torch.save({"state": model.state_dict(), "mse": log.mse}, result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, out, extra = sys.argv[1:4]
    {"extract": extract, "sae": sae}[mode](out, extra)
