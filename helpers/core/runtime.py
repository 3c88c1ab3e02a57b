"""One call at the top of every notebook: validate the device, fix seeds, choose CPU threads.

    device = helpers.setup(device="auto", seed=0)
"""
from __future__ import annotations

import os
import platform
import random
import time
from typing import Union

import numpy as np
import torch

VALID_DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
_thread_choice: dict[str, Union[int, str]] = {}


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device string into a ``torch.device``; ``"auto"`` picks CUDA, then MPS, then CPU.

    A ``torch.device`` (what :func:`setup` returns) is checked and accepted as it is, so that
    ``zoo.load(name, device=helpers.setup(...))`` works.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ({VALID_DEVICES}) or a torch.device, got {type(device).__name__}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            # under torchrun each process on a machine takes its own GPU
            local = int(os.environ.get("LOCAL_RANK", 0))
            return torch.device("cuda", local % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' but this machine has no Apple GPU; use 'auto' or 'cpu'.")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but no CUDA GPU is visible to torch "
                             f"{torch.__version__}; use 'auto' (falls back to the CPU) or 'cpu'.")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist.")
        return dev
    raise ValueError(f"Unknown device {device!r}; valid: {VALID_DEVICES}.")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and all GPUs)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _time_small_model(threads: int, repeats: int = 15) -> float:
    """Median seconds of a small-MLP forward at ``threads`` (the size of our zoo models)."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)  # never touch the global RNG streams
    x = torch.randn(64, 256, generator=gen)
    w1, w2 = torch.randn(256, 1024, generator=gen), torch.randn(1024, 256, generator=gen)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.relu(x @ w1) @ w2
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


THREADS_ENV = "ACTIVATION_LAB_THREADS"


def _threads_from_env() -> Union[int, str, None]:
    """The thread choice in ``ACTIVATION_LAB_THREADS``: a positive count, ``"auto"``, or None when unset."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if raw.lower() == "auto":
        return "auto"
    if raw.isdigit():  # digits only: no sign, no decimal point
        return int(raw) or "auto"
    raise ValueError(f"{THREADS_ENV}={raw!r} is not valid: set it to a positive number of CPU threads "
                     f"(e.g. 1), or to 'auto' or 0 (time 1 thread against all cores and keep the faster).")


def choose_threads(threads: Union[int, str, None] = None) -> int:
    """Set torch's CPU threads and return the number; ``"auto"`` times a small model at 1 and at all cores.

    With 2 cores and a busy neighbour, OpenMP spin-waiting can make 2 threads several times
    slower than 1; timing both is cheaper than guessing. An explicit ``threads`` wins; with
    ``threads=None`` the environment variable ``ACTIVATION_LAB_THREADS`` decides (a count, or
    ``auto``/``0``), and without it ``"auto"``.

    Example:
        >>> choose_threads(1)
        1
    """
    if threads is None:
        threads = _threads_from_env() or "auto"
    if threads == "auto":
        if "auto" in _thread_choice:
            threads = int(_thread_choice["auto"])
        else:
            cores = os.cpu_count() or 1
            candidates = sorted({1, cores})
            timings = {t: _time_small_model(t) for t in candidates}
            threads = min(timings, key=timings.get)
            _thread_choice["auto"] = threads
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be 'auto', None (use {THREADS_ENV}) or a positive int, got {threads!r}")
    torch.set_num_threads(threads)
    _limit_blas_threads(threads)
    return threads


def _limit_blas_threads(threads: int) -> None:
    """numpy's BLAS (OpenBLAS, MKL) has its own thread pool: give it the same count as torch, so numpy code in a
    lesson does not spin on the busy core either. threadpoolctl comes with scikit-learn; without it, nothing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the engine needs only torch
        return
    threadpool_limits(limits=threads, user_api="blas")  # stays in effect (not used as a context manager)


def setup(device: str = "auto", seed: int = 0, threads: Union[int, str, None] = None,
          deterministic: bool = False, quiet: bool = False) -> torch.device:
    """Validate ``device``, seed everything, choose CPU threads and print one line about it.

    Returns the ``torch.device`` to use. ``threads``: a count, ``"auto"``, or None (default) for
    ``ACTIVATION_LAB_THREADS`` if set, else ``"auto"`` (see :func:`choose_threads`); an explicit
    value wins over the environment. ``deterministic=True`` also asks torch for deterministic
    kernels (slower on GPU).

    Example:
        >>> dev = setup(device="cpu", seed=0, quiet=True)
        >>> dev.type
        'cpu'
    """
    dev = pick_device(device)
    n_threads = choose_threads(threads)
    seed_everything(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if not quiet:
        gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
        print(f"activation-lab | torch {torch.__version__} | device {dev}{gpu} | "
              f"cpu threads {n_threads}/{os.cpu_count()} | seed {seed} | python {platform.python_version()}")
    return dev
