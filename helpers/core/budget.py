"""Memory budgets: refuse a capture or an extraction that would not fit, before it starts."""
from __future__ import annotations

import os
import shutil
from typing import Optional

import torch

# Leave a margin: the model, the autograd graph and the notebook need memory too.
DEFAULT_FRACTION = 0.5


class CaptureTooLargeError(MemoryError):
    """Raised before a capture/extraction starts when its estimate exceeds the budget."""


def format_bytes(n: float) -> str:
    """Human-readable size, e.g. ``format_bytes(3 * 2**30) == '3.00 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Free memory on ``device``: ``MemAvailable`` for the CPU, ``mem_get_info`` for CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # Not Linux: fall back to total physical memory where the OS tells it.
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_budget(device: torch.device | str = "cpu") -> int:
    return int(available_bytes(device) * DEFAULT_FRACTION)


def check_fits(estimate: int, budget: int, what: str, advice: str) -> None:
    """Raise :class:`CaptureTooLargeError` when ``estimate`` exceeds ``budget``.

    Example:
        >>> check_fits(10, 100, "capture", "")  # fits: returns None
    """
    if estimate > budget:
        raise CaptureTooLargeError(
            f"Refusing {what}: it needs about {format_bytes(estimate)} but the limit is "
            f"{format_bytes(budget)}. {advice}".strip()
        )


def check_disk(estimate: int, folder: str, what: str, budget: Optional[int] = None) -> None:
    """Refuse writing ``estimate`` bytes under ``folder`` when the disk has less free (90%)."""
    probe = folder
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe) or "."
    free = shutil.disk_usage(probe or ".").free
    limit = int(free * 0.9) if budget is None else budget
    check_fits(estimate, limit, what,
               "Free disk space, pick fewer layers or positions, or store float16 (dtype=torch.float16).")
