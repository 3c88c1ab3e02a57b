"""Activation formulas as expression trees over one variable ``x``, and the random edits a search makes to them.

Leaves are ``x`` and constants; inner nodes are primitives (``add``, ``sub``, ``mul``, ``max``; ``neg``,
``tanh``, ``sigmoid``, ``sin``, ``relu``, ``exp``).

Example:
    >>> f = parse("x * sigmoid(x)")          # SiLU
    >>> str(f), f.size()
    ('(x * sigmoid(x))', 4)
    >>> round(f(torch.tensor([1.0])).item(), 4)
    0.7311
"""
from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from typing import Callable

import torch


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
