"""Training checkpoints of the zoo's tinyworld GPTs (``data/zoo/<name>/checkpoints/step_NNNNNN.safetensors``).

Example:
    >>> steps = list(checkpoint_paths("tinyworld-gpt-relu"))
    >>> steps[0], len(steps)
    (0, 10)
    >>> for step, model in iterate("tinyworld-gpt-relu"):   # one model in memory at a time
    ...     break
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from helpers.core.paths import ZOO_DIR
from helpers.models.gpt import load_gpt
from helpers.zoo.trained import ENTRIES

_STEP = re.compile(r"step_(\d+)\.safetensors$")


def checkpoint_paths(name: str) -> dict[int, Path]:
    """``{step: path}`` of a zoo model's training checkpoints, in step order (each checked when loaded).

    Example:
        >>> list(checkpoint_paths("tinyworld-gpt-relu"))[:3]  # doctest: +SKIP
        [0, 50, 100]
    """
    if name not in ENTRIES:
        raise ValueError(f"unknown zoo model {name!r}; valid: {', '.join(ENTRIES)}")
    folder = ZOO_DIR / name
    found = {}
    for path in sorted((folder / "checkpoints").glob("step_*.safetensors")):
        match = _STEP.search(path.name)
        if match:
            found[int(match.group(1))] = path
    if not found:
        raise ValueError(f"zoo model {name!r} has no training checkpoints; models with checkpoints: "
                         "tinyworld-gpt, tinyworld-gpt-relu")
    return dict(sorted(found.items()))


def load_checkpoint(name: str, step: int, device: str | torch.device = "cpu") -> nn.Module:
    """The zoo model ``name`` as it was at training ``step`` (eval mode).

    Example:
        >>> model = load_checkpoint("tinyworld-gpt-relu", 400)  # doctest: +SKIP
    """
    paths = checkpoint_paths(name)
    if step not in paths:
        raise ValueError(f"{name!r} has no checkpoint at step {step}; steps: {list(paths)}")
    return load_gpt(paths[step], device=device)


def iterate(name: str, device: str | torch.device = "cpu") -> Iterator[tuple[int, nn.Module]]:
    """Yield ``(step, model)`` for every training checkpoint of ``name``, one model in memory at a time."""
    for step, path in checkpoint_paths(name).items():
        yield step, load_gpt(path, device=device)
