"""Activation statistics per layer and across training checkpoints.

    fraction_nonzero(acts["blocks.0.mlp.act"])           # lazy neurons: share of entries above 0
    describe(acts["blocks.2"])                            # mean, std, quantiles, kurtosis, ...
    for step, model in checkpoints("tinyworld-gpt-relu"):  # the zoo's log-spaced training checkpoints
        ...

Sparsity (top-k, CETT, PPL-p%) is in :mod:`helpers.sparsity`; massive activations and their
emergence curve in :mod:`helpers.massive`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn


def fraction_nonzero(x: torch.Tensor, threshold: float = 0.0) -> float:
    """Share of entries with ``|x| > threshold`` (threshold 0: the nonzero fraction after a ReLU).

    Example:
        >>> fraction_nonzero(torch.relu(torch.tensor([-1., 0., 2., 3.])))
        0.5
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return (x.detach().abs() > threshold).float().mean().item()


@dataclass
class LayerStats:
    """Summary of one layer's activations (over every entry)."""
    mean: float
    std: float
    min: float
    max: float
    q01: float
    q50: float
    q99: float
    kurtosis: float        # excess kurtosis: 0 for a Gaussian, large with heavy tails / outliers
    frac_nonzero: float

    def row(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def describe(x: torch.Tensor, max_samples: int = 200_000) -> LayerStats:
    """Mean, std, extremes, 1/50/99 % quantiles, excess kurtosis and nonzero fraction of ``x``.

    Quantiles use an evenly strided subsample of at most ``max_samples`` entries (torch.quantile's limit).

    Example:
        >>> s = describe(torch.randn(10_000))
        >>> abs(s.kurtosis) < 0.3 and abs(s.q50) < 0.05
        True
    """
    v = x.detach().float().flatten()
    if v.numel() == 0:
        raise ValueError("cannot describe an empty tensor")
    mean, std = v.mean(), v.std(unbiased=False)
    kurt = (((v - mean) / std.clamp_min(1e-12)) ** 4).mean() - 3.0
    sub = v[:: max(1, v.numel() // max_samples)]
    q = torch.quantile(sub, torch.tensor([0.01, 0.5, 0.99]))
    return LayerStats(mean.item(), std.item(), v.min().item(), v.max().item(), *q.tolist(),
                      kurt.item(), fraction_nonzero(v))


# ---------------------------------------------------------------------------------------------
# Training checkpoints of the zoo's tinyworld GPTs (data/zoo/<name>/checkpoints/step_NNNNNN.safetensors)

_STEP = re.compile(r"step_(\d+)\.safetensors$")


def checkpoint_paths(name: str) -> dict[int, Path]:
    """``{step: path}`` of a zoo model's training checkpoints, in step order (checksums verified).

    Example:
        >>> list(checkpoint_paths("tinyworld-gpt-relu"))[:3]  # doctest: +SKIP
        [0, 50, 100]
    """
    from helpers import zoo

    if name not in zoo.REGISTRY:
        raise ValueError(f"unknown zoo model {name!r}; valid: {', '.join(zoo.REGISTRY)}")
    _, info = zoo.load(name, device="cpu")  # verifies every checkpoint's SHA-256
    folder = Path(info.provenance.get("folder", ""))
    found = {}
    for rel in info.provenance.get("checkpoints", []):
        match = _STEP.search(rel)
        if match:
            found[int(match.group(1))] = folder / rel
    if not found:
        raise ValueError(f"zoo model {name!r} has no training checkpoints; models with checkpoints: "
                         "tinyworld-gpt, tinyworld-gpt-relu")
    return dict(sorted(found.items()))


def load_checkpoint(name: str, step: int, device: str | torch.device = "cpu") -> nn.Module:
    """The zoo model ``name`` as it was at training ``step`` (eval mode).

    Example:
        >>> model = load_checkpoint("tinyworld-gpt-relu", 400)  # doctest: +SKIP
    """
    from helpers.models.gpt import load_gpt

    paths = checkpoint_paths(name)
    if step not in paths:
        raise ValueError(f"{name!r} has no checkpoint at step {step}; steps: {list(paths)}")
    return load_gpt(paths[step], device=device)


def checkpoints(name: str, device: str | torch.device = "cpu") -> Iterator[tuple[int, nn.Module]]:
    """Yield ``(step, model)`` for every training checkpoint of ``name``, one model in memory at a time."""
    from helpers.models.gpt import load_gpt

    for step, path in checkpoint_paths(name).items():
        yield step, load_gpt(path, device=device)
