"""Extraction and SAE training under torchrun (gloo, 2-3 processes on this CPU), against one process."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import ActivationStore, extract
from helpers.core.checksum import ChecksumError
from helpers.core.distributed import batch_range, rank_info, start
from helpers.core.shards import ConcatRows
from tests import distributed_worker as worker

WORKER = str(Path(__file__).with_name("distributed_worker.py"))
ROOT = str(Path(__file__).resolve().parents[1])
LAYERS = ["0", "2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(nproc: int, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node nproc`` on the worker; a hang fails after 120 s instead of blocking the suite."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "ACTIVATION_LAB_THREADS": "1",
                **(env or {})}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
           "127.0.0.1", "--master-port", str(_free_port()), WORKER, *args]
    done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"torchrun failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def _forwards(log: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for line in log.read_text().splitlines():
        rank = int(line.split()[0])
        counts[rank] = counts.get(rank, 0) + 1
    return counts


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> ActivationStore:
    out = tmp_path_factory.mktemp("single") / "acts"
    return extract(worker.make_model(), worker.make_batches(), LAYERS, out=str(out), progress=False, distributed=False)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """A store written by 2 ranks (tests that change it work on a copy)."""
    tmp = tmp_path_factory.mktemp("two")
    _launch(2, "extract", str(tmp / "acts"), str(tmp / "log"))
    return tmp


def _copy(two_ranks: Path, tmp_path: Path) -> Path:
    shutil.copytree(two_ranks / "acts", tmp_path / "acts")
    return tmp_path / "acts"


def _same(a: ActivationStore, b: ActivationStore) -> None:
    assert a.layers == b.layers
    for name in LAYERS:
        x, y = a[name], b[name]
        assert tuple(x.shape) == tuple(y.shape)
        np.testing.assert_array_equal(np.asarray(x[:]), np.asarray(y[:]))  # every sample, same order, bit for bit


def test_split_is_contiguous_and_deterministic():
    blocks = [batch_range(8, r, 3) for r in range(3)]
    assert [list(b) for b in blocks] == [[0, 1], [2, 3, 4], [5, 6, 7]]
    assert sum(len(b) for b in blocks) == 8 and blocks == [batch_range(8, r, 3) for r in range(3)]
    with pytest.raises(ValueError, match=r"rank must be in \[0, 3\)"):
        batch_range(8, 3, 3)


def test_two_and_three_processes_write_the_single_process_store(single, two_ranks, tmp_path):
    for nproc in (2, 3):
        out, log = tmp_path / f"acts{nproc}", tmp_path / f"log{nproc}"
        if nproc == 2:
            out, log = two_ranks / "acts", two_ranks / "log"
        else:
            _launch(nproc, "extract", str(out), str(log))
        store = ActivationStore(str(out))
        assert len(store.shards) == nproc and store.complete
        assert isinstance(store["0"], ConcatRows)
        _same(store, single)  # written by 2 or 3 ranks, read by none: the same store
        # lazy reads across the shard boundary equal the single store's rows
        idx = torch.tensor([37, 0, 12, 13, 5])
        torch.testing.assert_close(store["2"][idx], single["2"][idx])
        torch.testing.assert_close(store["2"][9:21, 3], single["2"][9:21, 3])
        assert _forwards(log) == {r: len(batch_range(8, r, nproc)) for r in range(nproc)}


def test_a_killed_rank_resumes_only_its_own_shard(single, tmp_path):
    out, log = tmp_path / "acts", tmp_path / "log"
    killed = _launch(2, "extract", str(out), str(log), env={"KILL_RANK": "1", "KILL_AT": "3"}, check=False)
    assert killed.returncode != 0
    assert not (out / "manifest.json").exists()  # no store is announced before every shard is done
    log.write_text("")
    _launch(2, "extract", str(out), str(log))
    counts = _forwards(log)
    assert counts.get(0, 0) == 0  # rank 0's finished shard was checked, not recomputed
    assert counts[1] == 3          # one forward to read the shapes, then rank 1's two missing batches (of 4)
    _same(ActivationStore(str(out)), single)


def test_a_corrupt_shard_stops_every_rank_with_its_name(two_ranks, tmp_path):
    out = _copy(two_ranks, tmp_path)
    damaged = out / "shard-00001-of-00002" / "2.npy"
    raw = bytearray(damaged.read_bytes())
    raw[-1] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    failed = _launch(2, "extract", str(out), str(tmp_path / "log"), check=False)
    assert failed.returncode != 0
    assert "shard-00001-of-00002" in failed.stderr and "ChecksumError" in failed.stderr


def test_a_folder_of_another_run_is_refused_side_by_side(two_ranks, tmp_path):
    out = _copy(two_ranks, tmp_path)
    with pytest.raises(ValueError, match=r"world_size: store has 2, this run has 1"):
        extract(worker.make_model(), worker.make_batches(), LAYERS, out=str(out), progress=False)
    with pytest.raises(ValueError, match=r"layers: store has \['0', '2'\], this run has \['0'\]"):
        extract(worker.make_model(), worker.make_batches(), ["0"], out=str(out), progress=False)
    # resume=False overwrites, as the message says
    store = extract(worker.make_model(), worker.make_batches(), ["0"], out=str(out), progress=False, resume=False)
    assert store.shards == [] and not list(out.glob("shard-*"))


def test_distributed_without_torchrun_runs_as_one_process(tmp_path, capsys, monkeypatch):
    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr("helpers.core.distributed._NOTICED", {"done": False})
    store = extract(worker.make_model(), worker.make_batches(), LAYERS, out=str(tmp_path / "a"), progress=False,
                    distributed=True)
    assert store.complete and store.shards == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no torchrun environment" in err
    assert rank_info().world_size == 1 and start(False).world_size == 1


def test_two_process_sae_training_equals_one_process(two_ranks, tmp_path):
    out = two_ranks / "acts"
    one = subprocess.run([sys.executable, WORKER, "sae", str(out), str(tmp_path / "one.pt")], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert one.returncode == 0, one.stderr[-2000:]
    _launch(2, "sae", str(out), str(tmp_path / "two.pt"))
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    for name in a["state"]:
        # the same minibatches, gradients summed over the ranks: equal up to the order of float sums
        torch.testing.assert_close(a["state"][name], b["state"][name], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(a["mse"], b["mse"], rtol=1e-4)
    assert a["mse"][-1] < a["mse"][0]  # it did train


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the pinned double buffer is CUDA-only")
def test_cuda_extraction_equals_cpu(single, tmp_path):
    model = worker.make_model().cuda()
    store = extract(model, worker.make_batches(), LAYERS, out=str(tmp_path / "cuda"), progress=False)
    for name in LAYERS:
        torch.testing.assert_close(store[name], single[name], atol=1e-5, rtol=1e-5)


def test_covariance_streams_a_sharded_layer_like_one_array(two_ranks, single):
    from helpers.ops.covariance import covariance
    sharded = covariance(ActivationStore(str(two_ranks / "acts")), "2", batch_size=7, warn=False)
    whole = covariance(single, "2", batch_size=7, warn=False)
    assert sharded.n == whole.n == 38
    torch.testing.assert_close(sharded.covariance(), whole.covariance(), atol=1e-10, rtol=1e-10)
