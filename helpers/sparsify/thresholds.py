"""Training-free activation sparsity: TEAL's magnitude thresholds and WINA's weight-informed scores.

For a linear layer ``y = W x`` (``W`` = ``nn.Linear.weight``, shape (out, in); for GPT-2's ``Conv1D``, which stores
its weight as (in, out), :func:`weight_of` gives the same (out, in) view) an input entry ``x_i`` is dropped when
its score is small:

    TEAL (Liu et al., 2025):  score_i = |x_i|
    WINA (Chen et al., 2025): score_i = |x_i| * ||W[:, i]||      (column i is what x_i multiplies)

With a *threshold* (calibrated once, per layer, as the ``s``-quantile of the scores on calibration tokens) the
sparsity of a new token is only about ``s``; with *top-k* every token keeps exactly ``round((1 - s) * d)`` entries.

    rules = calibrate(model, ["blocks.0.mlp.proj"], calib_ids, 0.5, "wina")    # name -> Rule (a threshold)
    with sparsified(model, rules) as seen:                                     # inputs masked by pre-hooks
        logits = model(ids)
    seen["blocks.0.mlp.proj"]                                                  # fraction of inputs dropped
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from helpers.core.capturing import capture
from helpers.core.linear_maps import is_linear, linear_weight

METHODS = ("teal", "wina")


def check_sparsity(sparsity: float) -> float:
    """Return ``sparsity`` as a float, or raise ``ValueError`` unless it lies in [0, 1).

    Example:
        >>> check_sparsity(0.5)
        0.5
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1) (the fraction of inputs dropped), got {sparsity!r}")
    return float(sparsity)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def column_norms(weight: torch.Tensor) -> torch.Tensor:
    """``||W[:, i]||`` for every input i of a linear layer whose weight is ``weight`` (out, in); shape (in,).

    Example:
        >>> column_norms(torch.tensor([[3.0, 0.0], [4.0, 1.0]])).tolist()
        [5.0, 1.0]
    """
    return weight.detach().float().norm(dim=0)


def scores(x: torch.Tensor, col_norm: torch.Tensor | None = None) -> torch.Tensor:
    """TEAL's score ``|x|`` (``col_norm`` None) or WINA's ``|x| * col_norm``; shape of ``x`` (..., in)."""
    return x.abs() if col_norm is None else x.abs() * col_norm.to(x)


def threshold(score: torch.Tensor, sparsity: float) -> float:
    """The ``sparsity``-quantile of all calibration scores: entries at or below it are dropped.

    Example:
        >>> threshold(torch.arange(1.0, 11.0), 0.3)
        3.0
    """
    sparsity = check_sparsity(sparsity)
    flat = score.detach().flatten().float()
    if sparsity == 0.0:
        return float("-inf")
    k = max(1, round(sparsity * flat.numel()))  # the k-th smallest score is the last one dropped
    return flat.kthvalue(k).values.item()


def topk_mask(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the ``round((1 - sparsity) * d)`` largest scores of every row (last dim); bool, shape of ``score``.

    Example:
        >>> topk_mask(torch.tensor([[1.0, 4.0, 2.0, 3.0]]), 0.5).tolist()
        [[False, True, False, True]]
    """
    sparsity = check_sparsity(sparsity)
    keep = round((1.0 - sparsity) * score.shape[-1])
    mask = torch.zeros_like(score, dtype=torch.bool)
    return mask.scatter_(-1, score.topk(keep, dim=-1).indices, True)


@dataclass
class Rule:
    """How one linear layer's input is sparsified: a calibrated ``threshold``, or top-k at ``sparsity`` if None."""

    method: str
    col_norm: torch.Tensor | None  # WINA's column norms (None for TEAL)
    threshold: float | None = None
    sparsity: float | None = None

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        s = scores(x, self.col_norm)
        return topk_mask(s, self.sparsity) if self.threshold is None else s > self.threshold


weight_of = linear_weight  # (out, in) for nn.Linear and GPT-2's Conv1D alike (helpers.core.linear_maps)


def linear_names(model: nn.Module, under: str | tuple[str, ...] = "") -> list[str]:
    """Names of every linear layer (:func:`is_linear`) whose name starts with ``under`` (e.g. ``"blocks."``, or a
    tuple of prefixes), in model order."""
    return [n for n, m in model.named_modules() if is_linear(m) and n.startswith(under)]


def _linear(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if not is_linear(modules.get(name, nn.Identity())):
        raise ValueError(f"{name!r} is not an nn.Linear (or a GPT-2 Conv1D) of the model; linear layers: {linear_names(model)[:8]} ...")
    return modules[name]


def rules_topk(model: nn.Module, layers: Sequence[str], sparsity: float, method: str) -> dict[str, Rule]:
    """Top-k rules (exactly ``sparsity`` of every token's inputs dropped) for ``layers``."""
    sparsity, method = check_sparsity(sparsity), _check_method(method)
    mods = {n: _linear(model, n) for n in layers}
    return {n: Rule(method, column_norms(weight_of(m)) if method == "wina" else None, None, sparsity)
            for n, m in mods.items()}


@torch.no_grad()
def calibrate(model: nn.Module, layers: Sequence[str], calib: torch.Tensor, sparsity: float | Mapping[str, float],
              method: str) -> dict[str, Rule]:
    """Per-layer thresholds at which a fraction ``sparsity`` of the calibration inputs of each layer is dropped.

    ``calib`` is one batch of model inputs; ``sparsity`` one number or one per layer. Checked before any forward.
    """
    method = _check_method(method)
    per_layer = {n: check_sparsity(sparsity[n] if isinstance(sparsity, Mapping) else sparsity) for n in layers}
    mods = {n: _linear(model, n) for n in layers}
    with capture(model, list(layers), outputs=False, inputs=True) as acts:
        model(calib)
    rules = {}
    for n, m in mods.items():
        norm = column_norms(weight_of(m)) if method == "wina" else None
        x = acts.inputs[n].float()
        rules[n] = Rule(method, norm, threshold(scores(x, norm), per_layer[n]), per_layer[n])
    return rules


@contextmanager
def sparsified(model: nn.Module, rules: Mapping[str, Rule]) -> Iterator[dict[str, float]]:
    """Mask the inputs of the named linear layers by their rules inside the block; yields the dropped fractions.

    All names are checked before any hook is attached; the hooks are removed on exit, also after an error.
    The weights are never touched.
    """
    mods = {n: _linear(model, n) for n in rules}
    seen: dict[str, float] = {}
    counts: dict[str, list[int]] = {n: [0, 0] for n in rules}

    def hook_for(name: str):
        def pre(module: nn.Module, args: tuple):
            x = args[0]
            keep = rules[name].mask(x)
            counts[name][0] += int((~keep).sum())
            counts[name][1] += keep.numel()
            seen[name] = counts[name][0] / counts[name][1]
            return (x * keep,) + tuple(args[1:])
        return pre

    handles = []
    try:
        for n, m in mods.items():
            handles.append(m.register_forward_pre_hook(hook_for(n)))
        yield seen
    finally:
        for h in handles:
            h.remove()


def relative_error(weight: torch.Tensor, x: torch.Tensor, keep: torch.Tensor) -> float:
    """Mean over tokens of ``||W (x - x * keep)|| / ||W x||`` (the bias cancels); ``x`` and ``keep`` (N, in).

    Example:
        >>> w = torch.eye(2); x = torch.tensor([[3.0, 4.0]])
        >>> round(relative_error(w, x, torch.tensor([[True, False]])), 6)
        0.8
    """
    w = weight.detach().float()
    dropped = (x * ~keep) @ w.T
    return (dropped.norm(dim=-1) / (x @ w.T).norm(dim=-1).clamp_min(1e-12)).mean().item()
