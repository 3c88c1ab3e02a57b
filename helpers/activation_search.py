"""A small genetic-programming search over activation formulas, and the task that scores them.

An activation is an expression tree over one variable ``x``: leaves are ``x`` and constants, inner nodes
are primitives (``add``, ``sub``, ``mul``, ``max``; ``neg``, ``tanh``, ``sigmoid``, ``sin``, ``relu``,
``exp``). The search keeps a population of trees; each generation keeps the best (elitism), and fills the
rest with children of tournament winners: subtree crossover (a random subtree of one parent replaced by a
random subtree of the other) or subtree mutation (replaced by a fresh random tree). Everything random
comes from one ``random.Random(seed)``, so a search is repeatable. Fitness is the validation accuracy of
a small MLP trained with the candidate activation (:func:`evaluate_activation`); several initialisations
of that MLP are trained at once, as one batched network.

The parameter-efficiency score of the Neuro-Symbolic Activation Discovery paper (2026) is
``E_param = AUC / log10(n_params)`` (:func:`parameter_efficiency`).

Example:
    >>> f = parse("x * sigmoid(x)")          # SiLU
    >>> str(f), f.size()
    ('(x * sigmoid(x))', 4)
    >>> round(f(torch.tensor([1.0])).item(), 4)
    0.7311
"""
from __future__ import annotations

import ast
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import nn

__all__ = ["BINARY", "Expr", "NetConfig", "SearchConfig", "SearchResult", "Task", "UNARY", "crossover",
           "evaluate_activation", "evolve", "mutate", "n_params_mlp", "parameter_efficiency", "parse",
           "random_expr", "roc_auc", "spirals_task"]


def _safe_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.clamp(x, max=10.0))  # exp(10) ~ 2e4: large, but never inf in a few layers


UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "neg": torch.neg, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "sin": torch.sin,
    "relu": torch.relu, "exp": _safe_exp,
}
BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "max": torch.maximum,
}
_INFIX = {"add": "+", "sub": "-", "mul": "*"}
CONSTANTS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Expr:
    """One node of an expression tree: ``op`` is ``"x"``, ``"const"`` (with ``value``), or a primitive."""

    op: str
    args: tuple["Expr", ...] = ()
    value: float = 0.0

    def __post_init__(self) -> None:
        arity = {"x": 0, "const": 0, **{k: 1 for k in UNARY}, **{k: 2 for k in BINARY}}
        if self.op not in arity:
            raise ValueError(f"unknown primitive {self.op!r}; valid: {', '.join(arity)}")
        if len(self.args) != arity[self.op]:
            raise ValueError(f"{self.op!r} takes {arity[self.op]} argument(s), got {len(self.args)}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "x":
            return x
        if self.op == "const":
            return torch.full_like(x, self.value)
        if self.op in UNARY:
            return UNARY[self.op](self.args[0](x))
        return BINARY[self.op](self.args[0](x), self.args[1](x))

    def __str__(self) -> str:
        if self.op == "x":
            return "x"
        if self.op == "const":
            return f"{self.value:g}"
        if self.op in _INFIX:
            return f"({self.args[0]} {_INFIX[self.op]} {self.args[1]})"
        return f"{self.op}({', '.join(str(a) for a in self.args)})"

    def size(self) -> int:
        """Number of nodes."""
        return 1 + sum(a.size() for a in self.args)

    def depth(self) -> int:
        """Levels below the root (a leaf has depth 0)."""
        return 1 + max(a.depth() for a in self.args) if self.args else 0

    def paths(self) -> list[tuple[int, ...]]:
        """Every node's address: a tuple of argument indices from the root (the root is ``()``)."""
        return [()] + [(i,) + p for i, a in enumerate(self.args) for p in a.paths()]

    def get(self, path: tuple[int, ...]) -> "Expr":
        return self if not path else self.args[path[0]].get(path[1:])

    def replace(self, path: tuple[int, ...], new: "Expr") -> "Expr":
        """A copy with the subtree at ``path`` replaced by ``new`` (trees are immutable)."""
        if not path:
            return new
        args = list(self.args)
        args[path[0]] = args[path[0]].replace(path[1:], new)
        return Expr(self.op, tuple(args), self.value)


def parse(text: str) -> Expr:
    """Read a formula such as ``"max(x, 0.5 * tanh(x))"`` (``+ - *``, unary ``-``, the primitives, numbers).

    Example:
        >>> str(parse("-x + relu(x)"))
        '(neg(x) + relu(x))'
    """
    ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}

    def build(node: ast.AST) -> Expr:
        if isinstance(node, ast.Name) and node.id == "x":
            return Expr("x")
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Expr("const", value=float(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return Expr("neg", (build(node.operand),))
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return Expr(ops[type(node.op)], (build(node.left), build(node.right)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return Expr(node.func.id, tuple(build(a) for a in node.args))
        raise ValueError(f"cannot read {ast.unparse(node)!r} in {text!r}: use x, numbers, + - *, "
                         f"and {', '.join(list(UNARY) + list(BINARY))}(...)")

    return build(ast.parse(text, mode="eval").body)


def random_expr(rng: random.Random, max_depth: int = 3, p_leaf: float = 0.3) -> Expr:
    """A random tree of depth at most ``max_depth`` ("grow" method; leaves are ``x`` twice as often as constants)."""
    if max_depth == 0 or rng.random() < p_leaf:
        return Expr("x") if rng.random() < 2 / 3 else Expr("const", value=rng.choice(CONSTANTS))
    if rng.random() < 0.5:
        return Expr(rng.choice(sorted(UNARY)), (random_expr(rng, max_depth - 1, p_leaf),))
    return Expr(rng.choice(sorted(BINARY)), (random_expr(rng, max_depth - 1, p_leaf),
                                            random_expr(rng, max_depth - 1, p_leaf)))


def mutate(expr: Expr, rng: random.Random, max_depth: int = 4) -> Expr:
    """Replace one random subtree by a fresh random tree, keeping the depth within ``max_depth``."""
    path = rng.choice(expr.paths())
    room = max(0, max_depth - len(path))
    return expr.replace(path, random_expr(rng, min(2, room)))


def crossover(mother: Expr, father: Expr, rng: random.Random, max_depth: int = 4) -> Expr:
    """Put a random subtree of ``father`` in place of a random subtree of ``mother`` (retry if too deep)."""
    for _ in range(10):
        child = mother.replace(rng.choice(mother.paths()), father.get(rng.choice(father.paths())))
        if child.depth() <= max_depth:
            return child
    return mother


# ----------------------------------------------------------------------------------------------- the task
@dataclass
class Task:
    """A classification task with train / validation (fitness) / test (held-out claim) splits."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int


def _spirals(n: int, turns: float, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 2, (n,), generator=gen)
    t = torch.rand(n, generator=gen) ** 0.5 * turns * 2 * math.pi        # sqrt: even density along the arm
    r = t / (turns * 2 * math.pi)                                          # radius grows from 0 to 1
    angle = t + math.pi * y                                                # the second arm is the first turned by pi
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) + noise * torch.randn(n, 2, generator=gen)
    return x * 2, y                                                        # (n, 2) roughly in [-2, 2]


def spirals_task(n_train: int = 400, n_val: int = 400, n_test: int = 2000, turns: float = 1.5,
                 noise: float = 0.03, seed: int = 0) -> Task:
    """Two interleaved spirals (2 classes); the three splits are independent samples.

    Example:
        >>> task = spirals_task(n_train=10, n_val=10, n_test=10)
        >>> task.x_train.shape, task.n_classes
        (torch.Size([10, 2]), 2)
    """
    gen = torch.Generator().manual_seed(seed)
    (xa, ya), (xb, yb), (xc, yc) = (_spirals(n, turns, noise, gen) for n in (n_train, n_val, n_test))
    return Task(xa, ya, xb, yb, xc, yc, 2)


@dataclass
class NetConfig:
    """The evaluation network: ``depth`` hidden layers of ``hidden`` units, full-batch Adam for ``steps``."""

    hidden: int = 8
    depth: int = 2
    steps: int = 200
    lr: float = 0.02


def n_params_mlp(n_in: int, n_out: int, config: NetConfig) -> int:
    """Parameters of the evaluation MLP (weights and biases)."""
    widths = [n_in] + [config.hidden] * config.depth + [n_out]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _init_batched(widths: list[int], seeds: Sequence[int]) -> list[torch.Tensor]:
    """Weights (S, fan_in, fan_out) and biases (S, 1, fan_out), each seed drawn like ``nn.Linear`` would."""
    params = []
    for a, b in zip(widths[:-1], widths[1:]):
        bound = 1 / math.sqrt(a)
        gens = [torch.Generator().manual_seed(s * 1000 + len(params)) for s in seeds]
        params.append(torch.stack([(torch.rand(a, b, generator=g) * 2 - 1) * bound for g in gens]))
        params.append(torch.stack([(torch.rand(1, b, generator=g) * 2 - 1) * bound for g in gens]))
    return params


def evaluate_activation(activation: Callable[[torch.Tensor], torch.Tensor], task: Task,
                        config: Optional[NetConfig] = None, seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """Train one MLP per seed (all at once, batched) with ``activation``; accuracies and test scores.

    Returns ``{"val_acc": (S,), "test_acc": (S,), "test_prob": (S, n_test) P(class 1)}``. A seed
    whose outputs are not finite gets accuracy 0.

    Example:
        >>> task = spirals_task(n_train=50, n_val=50, n_test=50)
        >>> evaluate_activation(torch.tanh, task, NetConfig(steps=5), seeds=[0, 1])["val_acc"].shape
        torch.Size([2])
    """
    config = config or NetConfig()
    widths = [task.x_train.shape[1]] + [config.hidden] * config.depth + [task.n_classes]
    init = _init_batched(widths, seeds)
    # one flat leaf tensor holds every weight: Adam then updates one tensor per step instead of 2 per layer
    flat = torch.cat([p.detach().flatten() for p in init]).requires_grad_()
    shapes = [p.shape for p in init]
    opt = torch.optim.Adam([flat], lr=config.lr)

    def forward(x: torch.Tensor) -> torch.Tensor:                      # (N, d) -> (S, N, classes)
        params = [t.view(s) for t, s in zip(flat.split([s.numel() for s in shapes]), shapes)]
        h = x
        for i in range(0, len(params) - 2, 2):
            h = activation(torch.matmul(h, params[i]) + params[i + 1])  # (S, N, hidden)
        return torch.matmul(h, params[-2]) + params[-1]

    y = task.y_train.expand(len(seeds), -1)
    for _ in range(config.steps):
        logits = forward(task.x_train)
        # mean over samples per seed, summed over seeds: each seed's gradient is its own
        loss = nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = {}
        for split, x, labels in (("val", task.x_val, task.y_val), ("test", task.x_test, task.y_test)):
            logits = forward(x)                                        # (S, N, classes)
            finite = torch.isfinite(logits).all(-1).all(-1)            # (S,)
            out[f"{split}_acc"] = (logits.argmax(-1) == labels).float().mean(-1) * finite
            if split == "test":
                out["test_prob"] = torch.nan_to_num(logits.softmax(-1)[..., 1], nan=0.5)
    return out


# ---------------------------------------------------------------------------------------------- the search
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


# --------------------------------------------------------------------------------------------- the metrics
def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney U; ties count one half).

    Example:
        >>> roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
        0.75
    """
    labels = labels.bool()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes among the labels")
    order = scores.double().argsort()
    ranks = torch.empty_like(order, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    for value in scores[order][:-1][scores[order][1:] == scores[order][:-1]].unique():  # average tied ranks
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def parameter_efficiency(auc: float, n_params: int) -> float:
    """``E_param = AUC / log10(n_params)`` (Neuro-Symbolic Activation Discovery): accuracy per order of magnitude.

    Example:
        >>> parameter_efficiency(0.9, 100)
        0.45
    """
    if n_params <= 1:
        raise ValueError(f"n_params must be > 1 (log10 of it divides), got {n_params}")
    return auc / math.log10(n_params)
