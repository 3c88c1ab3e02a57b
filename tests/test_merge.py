"""Merging: averaging, task arithmetic, RegMean (least squares on each model's inputs), the Bayesian merge, bad input."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.merge import bayesian, regmean
from helpers.ops.whitening import Gram


def _pair(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    a, b = nn.Linear(6, 3).double(), nn.Linear(6, 3).double()
    # inputs of the two "tasks" live in different directions
    xa = torch.randn(200, 6, generator=g, dtype=torch.float64) * torch.tensor([3.0, 3, 3, 0.1, 0.1, 0.1], dtype=torch.float64)
    xb = torch.randn(200, 6, generator=g, dtype=torch.float64) * torch.tensor([0.1, 0.1, 0.1, 3.0, 3, 3], dtype=torch.float64)
    return a, b, xa, xb


def _fit_error(m: nn.Module, models, xs) -> float:
    with torch.no_grad():
        return sum((m(x) - net(x)).pow(2).sum().item() for net, x in zip(models, xs))


def test_regmean_is_the_least_squares_merge():
    a, b, xa, xb = _pair()
    merged = regmean.regmean([a, b], [{"": Gram.of(xa)}, {"": Gram.of(xb)}], alpha=1.0)
    # closed form by stacking both tasks' regression problems
    x = torch.cat([xa, xb])
    xa1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    with torch.no_grad():
        y = torch.cat([a(xa), b(xb)])
    sol = torch.linalg.lstsq(xa1, y).solution
    assert torch.allclose(merged.weight, sol[:-1].T, atol=1e-8) and torch.allclose(merged.bias, sol[-1], atol=1e-8)
    avg = regmean.average([a, b])
    assert _fit_error(merged, [a, b], [xa, xb]) < 0.2 * _fit_error(avg, [a, b], [xa, xb])


def test_alpha_zero_keeps_only_diagonals_and_models_stay_unchanged():
    a, b, xa, xb = _pair(1)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (a, b)]
    m0 = regmean.regmean([a, b], [{"": Gram.of(xa)}, {"": Gram.of(xb)}], alpha=0.0)
    ga, gb = Gram.of(xa).augmented().diagonal(), Gram.of(xb).augmented().diagonal()
    wa, wb = regmean.stacked(a), regmean.stacked(b)
    expected = (ga[:, None] * wa + gb[:, None] * wb) / (ga + gb)[:, None]        # per-input weighted mean
    assert torch.allclose(regmean.stacked(m0), expected, atol=1e-10)
    for m, state in zip((a, b), before):
        assert all(torch.equal(v, state[k]) for k, v in m.state_dict().items())


def test_average_and_task_arithmetic():
    a, b, _, _ = _pair()
    base = nn.Linear(6, 3).double()
    avg = regmean.average([a, b])
    assert torch.allclose(avg.weight, (a.weight + b.weight) / 2)
    ta = regmean.task_arithmetic(base, [a, b], scale=1.0)
    assert torch.allclose(ta.weight, a.weight + b.weight - base.weight)


def test_bayesian_merge_interpolates_between_regmean_and_anchor():
    a, b, xa, xb = _pair(2)
    grams = [{"": Gram.of(xa)}, {"": Gram.of(xb)}]
    anchor = regmean.average([a, b])
    reg = regmean.regmean([a, b], grams, alpha=1.0)
    near = bayesian.bayesian_merge([a, b], grams, anchor, lam=0.0)
    far = bayesian.bayesian_merge([a, b], grams, anchor, lam=1e9)
    mid = bayesian.bayesian_merge([a, b], grams, anchor, lam=1.0)
    assert torch.allclose(near.weight, reg.weight, atol=1e-8)
    assert torch.allclose(far.weight, anchor.weight, atol=1e-6)
    d_reg, d_anchor = (mid.weight - reg.weight).norm(), (mid.weight - anchor.weight).norm()
    assert d_reg > 1e-3 and d_anchor > 1e-3
    # the fit error grows with lam: lam = 0 is the best fit to both models' outputs
    errs = [_fit_error(bayesian.bayesian_merge([a, b], grams, anchor, lam), [a, b], [xa, xb]) for lam in (0.0, 0.1, 10.0)]
    assert errs[0] < errs[1] < errs[2]


def test_tune_lambda_picks_the_best_score():
    a, b, xa, xb = _pair(3)
    grams = [{"": Gram.of(xa)}, {"": Gram.of(xb)}]
    anchor = regmean.average([a, b])
    lam, scores = bayesian.tune_lambda([a, b], grams, anchor, lambda m: -_fit_error(m, [a, b], [xa, xb]),
                                       grid=(1e-3, 1.0, 100.0))
    assert lam == 1e-3 and set(scores) == {1e-3, 1.0, 100.0}


def test_merging_different_architectures_raises_before_work():
    a = nn.Sequential(nn.Linear(6, 3))
    wider = nn.Sequential(nn.Linear(6, 4))
    deeper = nn.Sequential(nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"0\.weight is \(3, 6\) in model 0 and \(4, 6\) in model 1"):
        regmean.regmean([a, wider], [{"0": Gram.of(torch.randn(5, 6))}] * 2)
    with pytest.raises(ValueError, match=r"only in model 1: \['2\.bias', '2\.weight'\]"):
        regmean.average([a, deeper])
    with pytest.raises(ValueError, match="at least two models"):
        regmean.average([a])
    with pytest.raises(ValueError, match=r"the Gram of '0' for model 1 is \(5, 5\)"):
        regmean.regmean([a, a], [{"0": Gram.of(torch.randn(5, 6))}, {"0": Gram.of(torch.randn(5, 5))}])
    with pytest.raises(ValueError, match="name different layers"):
        regmean.regmean([deeper, deeper], [{"0": Gram.of(torch.randn(5, 6))}, {"2": Gram.of(torch.randn(5, 3))}])
    with pytest.raises(ValueError, match="merges nn.Linear"):
        regmean.regmean([deeper, deeper], [{"1": Gram.of(torch.randn(5, 3))}] * 2)
