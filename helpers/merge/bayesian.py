"""A Bayesian merge (the inner level of Bayesian Model Merging, Li et al. 2026): RegMean with a prior at an anchor.

BMM writes merging as activation-based Bayesian linear regression with a Gaussian prior centred on a strong
anchor model's weights (e.g. a task-arithmetic merge). Its posterior mean, per linear layer, is

    W* = (sum_i G_i + lam I)^-1 (sum_i G_i W_i + lam W_anchor)          (W as (in, out))

lam = 0 gives RegMean, lam -> infinity the anchor. The paper tunes one lam per module with Bayesian
optimisation on a small validation set; ``tune_lambda`` here is a plain grid search (this project's choice).
lam is given relative to the mean diagonal of sum_i G_i, so one grid fits layers of any scale.

Example:
    >>> _ = torch.manual_seed(0); a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> g = [{"": Gram.of(torch.randn(40, 3))}, {"": Gram.of(torch.randn(40, 3))}]
    >>> anchor = average([a, b])
    >>> far = bayesian_merge([a, b], g, anchor, lam=1e9)
    >>> bool(torch.allclose(far.weight, anchor.weight, atol=1e-5))
    True
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from helpers.merge.regmean import linear_names, average, check_same_architecture, scaled_gram, set_stacked, stacked
from helpers.ops.whitening import Gram


def bayesian_merge(models: Sequence[nn.Module], grams: Sequence[dict[str, Gram]], anchor: nn.Module,
                   lam: float | dict[str, float], alpha: float = 1.0) -> nn.Module:
    """Posterior-mean merge of ``models`` around ``anchor`` (same architecture); ``lam`` one value or one per layer.

    Layers without a Gram matrix take the anchor's parameters. ``alpha`` scales the Gram off-diagonals as in RegMean.
    """
    check_same_architecture([*models, anchor])
    names = linear_names(models, grams)
    lams = lam if isinstance(lam, dict) else {name: lam for name in names}
    if set(lams) != set(names) or min(lams.values()) < 0:
        raise ValueError(f"lam must be >= 0 for each merged layer {names}, got {lam}")
    merged = average([anchor, anchor])                         # a copy of the anchor
    for name in names:
        layers = [m.get_submodule(name) for m in models]
        bias = layers[0].bias is not None
        gs = [scaled_gram(g[name], alpha, bias) for g in grams]
        lhs = sum(gs)
        ridge = lams[name] * lhs.diagonal().mean()
        prior = stacked(anchor.get_submodule(name))
        rhs = sum(g @ stacked(layer) for g, layer in zip(gs, layers)) + ridge * prior
        eye = torch.eye(len(lhs), dtype=lhs.dtype)
        set_stacked(merged.get_submodule(name), torch.linalg.solve(lhs + ridge * eye, rhs))
    return merged


def tune_lambda(models: Sequence[nn.Module], grams: Sequence[dict[str, Gram]], anchor: nn.Module,
                score: Callable[[nn.Module], float], grid: Sequence[float] = (1e-3, 1e-2, 0.1, 1.0, 10.0)
                ) -> tuple[float, dict[float, float]]:
    """The ``lam`` of ``grid`` whose merge has the highest ``score`` (e.g. validation accuracy), and all scores.

    One lam for all merged layers (a grid per layer grows exponentially; BMM searches them with Bayesian
    optimisation). Ties go to the larger lam (closer to the anchor).
    """
    if not grid:
        raise ValueError("the grid of lam values is empty")
    scores = {float(lam): float(score(bayesian_merge(models, grams, anchor, float(lam)))) for lam in grid}
    best = max(sorted(scores, reverse=True), key=scores.get)
    return best, scores
