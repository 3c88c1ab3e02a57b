"""Exercise checks: take the learner's function, compare it with the reference.

A check returns a short success message, raises :class:`ExerciseNotDone` while the
exercise is still the stub from ``make student``, and raises :class:`CheckFailed` (an
``AssertionError``) saying what differs when the learner's answer is wrong. Importing this
module in IPython installs :func:`helpers.course.learner.install`: those two show one friendly
box instead of a traceback, and an unsolved exercise runs on its hidden reference.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from helpers.core.capturing import capture
from helpers.course.learner import CheckFailed, ExerciseNotDone, install

__all__ = ["CheckFailed", "ExerciseNotDone", "assert_close", "call_learner", "check_against", "check_manual_capture"]
install()


def call_learner(fn: Callable, *args: Any, exercise: str, **kwargs: Any) -> Any:
    """Call the learner's ``fn``; turn the stub's NotImplementedError into a clear message."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise ExerciseNotDone(f"Exercise '{exercise}' is not done yet ({err}). Write it in the exercise "
                              f"cell, run that cell, then run this check again.") from None


def assert_close(actual: Any, expected: Any, what: str, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Compare tensors, arrays, numbers or (nested) tuples/lists/dicts of them, with a clear message."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            raise CheckFailed(f"{what}: expected a dict with keys {sorted(expected)}, got {actual!r:.200}")
        for k in expected:
            assert_close(actual[k], expected[k], f"{what}[{k!r}]", atol, rtol)
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            raise CheckFailed(f"{what}: expected {len(expected)} items, got {actual!r:.200}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{what}[{i}]", atol, rtol)
        return
    expected_t = torch.as_tensor(expected)
    if not isinstance(actual, (torch.Tensor, int, float)) and not hasattr(actual, "__array__"):
        raise CheckFailed(f"{what}: expected a tensor or number, got {type(actual).__name__}")
    actual_t = torch.as_tensor(actual)
    if actual_t.shape != expected_t.shape:
        raise CheckFailed(f"{what}: shape {tuple(actual_t.shape)}, expected {tuple(expected_t.shape)}")
    a, e = actual_t.detach().double().cpu(), expected_t.detach().double().cpu()
    if not torch.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
        diff = (a - e).abs().max().item()
        raise CheckFailed(f"{what}: values differ (max abs difference {diff:.3g}; tolerance {atol:g})")


def check_against(fn: Callable, reference: Callable, cases: Sequence[tuple], exercise: str,
                  atol: float = 1e-5, rtol: float = 1e-5) -> str:
    """Call ``fn`` and ``reference`` on every case (a tuple of arguments) and compare.

    Example:
        >>> check_against(lambda x: x * 2, lambda x: x + x, [(torch.ones(3),)], "double")
        'double: 1 case(s) match the reference'
    """
    for i, args in enumerate(cases):
        got = call_learner(fn, *args, exercise=exercise)
        assert_close(got, reference(*args), f"{exercise}, case {i}", atol, rtol)
    return f"{exercise}: {len(cases)} case(s) match the reference"


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def check_manual_capture(fn: Callable[[nn.Module, str, torch.Tensor], torch.Tensor]) -> str:
    """Check ``fn(model, layer_name, x)``: the layer's output via a forward hook, hook removed.

    Example:
        >>> def good(model, name, x):
        ...     with capture(model, name) as acts:
        ...         model(x)
        ...     return acts[name]
        >>> check_manual_capture(good)
        'manual capture: 3 layers match helpers.capture and no hook is left behind'
    """
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = torch.randn(4, 5, generator=gen)
    for name in ("0", "1", "2"):
        with capture(model, name) as acts:
            model(x)
        got = call_learner(fn, model, name, x, exercise="manual capture")
        assert_close(got, acts[name], f"manual capture of layer {name!r}")
        if _hook_count(model):
            raise CheckFailed(f"manual capture of layer {name!r}: {_hook_count(model)} hook(s) are still "
                                 f"attached after your function returned; remove them (handle.remove()).")
    return "manual capture: 3 layers match helpers.capture and no hook is left behind"
