"""helpers.activation_functions (formulas, search, benchmark) and helpers.ops.metrics.roc_auc: expression trees, GP operators, the batched evaluation network, metrics."""
from __future__ import annotations

import random

import pytest
import torch
from sklearn.metrics import roc_auc_score

from helpers.activation_functions.benchmark import NetConfig, evaluate_activation, n_params_mlp, parameter_efficiency, spirals_task
from helpers.activation_functions.formulas import Expr, crossover, mutate, parse, random_expr
from helpers.activation_functions.search import SearchConfig, evolve
from helpers.ops.metrics import roc_auc


def test_parse_evaluate_and_print_round_trip():
    x = torch.linspace(-3, 3, 13)
    cases = {
        "x * sigmoid(x)": x * torch.sigmoid(x),
        "max(x, 0.5 * tanh(x))": torch.maximum(x, 0.5 * torch.tanh(x)),
        "-x + relu(x) - sin(2 * x)": -x + torch.relu(x) - torch.sin(2 * x),
        "exp(100 * x)": torch.exp(torch.clamp(100 * x, max=10.0)),        # exp is clamped: never inf
        "1": torch.ones(13),
    }
    for text, expected in cases.items():
        e = parse(text)
        assert torch.allclose(e(x), expected), text
        assert parse(str(e)) == e                                          # str() is parseable and exact
    assert parse("tanh(x)").size() == 2 and parse("tanh(x)").depth() == 1


def test_parse_and_expr_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid: x, const, neg"):
        parse("cosh(x)")
    with pytest.raises(ValueError, match="cannot read"):
        parse("x / 2")
    with pytest.raises(ValueError, match="takes 2 argument"):
        Expr("max", (Expr("x"),))


def test_operators_respect_depth_and_are_repeatable():
    def run(seed):
        rng = random.Random(seed)
        trees = [random_expr(rng, 3) for _ in range(30)]
        kids = [mutate(t, rng, 4) for t in trees] + [crossover(a, b, rng, 4) for a, b in zip(trees, trees[::-1])]
        return trees + kids
    first, again = run(0), run(0)
    assert [str(t) for t in first] == [str(t) for t in again]
    assert all(t.depth() <= 4 for t in first)
    assert len({str(t) for t in first}) > 20                               # the operators do explore


def test_replace_and_paths():
    e = parse("max(x, tanh(x))")
    assert e.paths() == [(), (0,), (1,), (1, 0)]
    assert str(e.replace((1, 0), parse("sin(x)"))) == "max(x, tanh(sin(x)))"
    assert str(e) == "max(x, tanh(x))"                                    # trees are immutable


def test_batched_evaluation_equals_one_network_per_seed():
    task = spirals_task(n_train=64, n_val=32, n_test=32, seed=3)
    config = NetConfig(hidden=5, depth=2, steps=15, lr=0.05)
    together = evaluate_activation(torch.tanh, task, config, seeds=[4, 7])
    alone = evaluate_activation(torch.tanh, task, config, seeds=[7])
    assert torch.allclose(together["test_prob"][1], alone["test_prob"][0], atol=1e-5)
    assert n_params_mlp(2, 2, config) == (2 * 5 + 5) + (5 * 5 + 5) + (5 * 2 + 2)
    broken = evaluate_activation(lambda h: h * float("nan"), task, config, seeds=[0])
    assert broken["val_acc"].item() == 0.0                                  # non-finite outputs score zero


def test_evolve_is_deterministic_and_keeps_the_best():
    target = torch.linspace(-2, 2, 21)
    fitness = lambda e: -float((e(target) - (target * torch.tanh(target))).pow(2).mean())
    config = SearchConfig(population=10, generations=4, seed=5)
    a, b = evolve(fitness, config), evolve(fitness, config)
    assert str(a.best) == str(b.best) and a.history == b.history
    bests = [best for best, _ in a.history]
    assert bests == sorted(bests)                                            # elitism: never gets worse
    assert a.best_fitness == max(a.scores.values()) >= fitness(parse("relu(x)"))
    with pytest.raises(ValueError, match="elite < population"):
        evolve(fitness, SearchConfig(population=4, elite=4))


def test_roc_auc_matches_sklearn_with_ties_and_efficiency():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (300,), generator=gen)
    scores = (torch.rand(300, generator=gen) + 0.3 * labels).round(decimals=1)   # many ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    assert parameter_efficiency(0.824, 5825) == pytest.approx(0.824 / 3.7653, abs=1e-4)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(torch.rand(3), torch.zeros(3))
