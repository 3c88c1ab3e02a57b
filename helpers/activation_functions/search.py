"""A small genetic-programming search over activation formulas, and the task that scores them.

An activation is an expression tree over one variable ``x``: leaves are ``x`` and constants, inner nodes
are primitives (``add``, ``sub``, ``mul``, ``max``; ``neg``, ``tanh``, ``sigmoid``, ``sin``, ``relu``,
``exp``). The search keeps a population of trees; each generation keeps the best (elitism), and fills the
rest with children of tournament winners: subtree crossover (a random subtree of one parent replaced by a
random subtree of the other) or subtree mutation (replaced by a fresh random tree). Everything random
comes from one ``random.Random(seed)``, so a search is repeatable. Fitness is the validation accuracy of
a small MLP trained with the candidate activation (:func:`evaluate_activation`); several initialisations
of that MLP are trained at once, as one batched network.

Formulas are in :mod:`helpers.activation_functions.formulas`, the scoring task in
:mod:`helpers.activation_functions.benchmark`.

Example:
    >>> result = evolve(lambda e: -e.size(), SearchConfig(population=6, generations=2, seed=0))
    >>> result.best.size() >= 1
    True
"""
from __future__ import annotations
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Optional


from helpers.activation_functions.formulas import Expr, crossover, mutate, parse, random_expr


@dataclass
class SearchConfig:
    """Size and operators of the search. ``start`` formulas join the random first generation."""

    population: int = 12
    generations: int = 5
    tournament: int = 3
    elite: int = 2
    p_crossover: float = 0.5
    max_depth: int = 4
    novelty_tries: int = 20  # re-breed a child up to this often while its formula was already scored
    seed: int = 0
    start: tuple[str, ...] = ("relu(x)", "tanh(x)")


@dataclass
class SearchResult:
    """The best formula, its fitness, per-generation (best, mean) fitness, and every formula scored."""

    best: Expr
    best_fitness: float
    history: list[tuple[float, float]]
    scores: dict[str, float] = field(default_factory=dict)


def evolve(fitness: Callable[[Expr], float], config: Optional[SearchConfig] = None,
           verbose: bool = False) -> SearchResult:
    """Genetic programming over formulas: elitism, tournament selection, subtree crossover / mutation.

    ``fitness`` is called once per distinct formula (results are cached by the formula's text), so a
    formula that survives several generations is not retrained, and children that repeat a scored
    formula are bred again (up to ``novelty_tries`` times). Ties keep the smaller formula.

    Example:
        >>> import torch
        >>> target = torch.linspace(-2, 2, 9)
        >>> fit = lambda e: -float((e(target) - target.abs()).pow(2).mean())   # look for |x|
        >>> result = evolve(fit, SearchConfig(population=8, generations=3, seed=0))
        >>> result.best_fitness > fit(parse("relu(x)"))
        True
    """
    config = config or SearchConfig()
    if config.population < 2 or config.elite >= config.population or config.tournament < 1:
        raise ValueError(f"need population >= 2, 0 <= elite < population, tournament >= 1; got {config}")
    rng = random.Random(config.seed)
    scores: dict[str, float] = {}

    def score(e: Expr) -> float:
        key = str(e)
        if key not in scores:
            value = float(fitness(e))
            scores[key] = value if math.isfinite(value) else -math.inf
        return scores[key]

    population = [parse(s) for s in config.start][: config.population]
    while len(population) < config.population:
        population.append(random_expr(rng, config.max_depth - 1))
    history = []
    for generation in range(config.generations):
        ranked = sorted(population, key=lambda e: (-score(e), e.size(), str(e)))
        fits = [score(e) for e in ranked]
        history.append((fits[0], sum(f for f in fits if math.isfinite(f)) / len(fits)))
        if verbose:
            print(f"generation {generation}: best {fits[0]:.3f} {ranked[0]}")
        if generation == config.generations - 1:
            break

        def pick() -> Expr:
            contestants = rng.sample(range(len(ranked)), min(config.tournament, len(ranked)))
            return ranked[min(contestants)]                             # ranked: a lower index is fitter

        def breed() -> Expr:
            if rng.random() < config.p_crossover:
                return crossover(pick(), pick(), rng, config.max_depth)
            return mutate(pick(), rng, config.max_depth)

        children = ranked[: config.elite]
        while len(children) < config.population:
            child = breed()
            for _ in range(config.novelty_tries):   # spend the budget on formulas not scored yet
                if str(child) not in scores and all(str(child) != str(c) for c in children):
                    break
                child = breed()
            children.append(child)
        population = children
    return SearchResult(ranked[0], fits[0], history, dict(scores))
