"""Hook bookkeeping shared by capture, edit and the CAM methods, and the one early-stop exception.

Attach forward hooks to named modules all-or-nothing and remove exactly those hooks again,
whatever happens; nested contexts each remove only their own. A hook that ends the forward pass
raises :class:`StopForward` with its owner, and only that owner catches it (:func:`stops_here`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn


# hook(name, module, args, kwargs, output) -> replacement output or None
NamedHook = Callable[[str, nn.Module, tuple, dict, Any], Any]


class StopForward(Exception):
    """Ends a forward pass early from inside a hook; carries the ``owner`` that asked for it.

    Only the owner may catch it (:func:`stops_here`): a capture nested inside another one
    must not swallow the outer one's stop, or the outer ``with`` block would run on.
    """

    def __init__(self, owner: object):
        super().__init__()
        self.owner = owner

    def __str__(self) -> str:  # only seen if it escapes its owner, which stops_here prevents
        return f"forward pass stopped early for a {type(self.owner).__name__}"


@contextmanager
def stops_here(owner: object) -> Iterator[None]:
    """Catch the :class:`StopForward` raised for ``owner``; let every other one through.

    Example:
        >>> mine, other = object(), object()
        >>> with stops_here(mine):
        ...     raise StopForward(mine)          # caught: the block just ends
        >>> try:
        ...     with stops_here(mine):
        ...         raise StopForward(other)
        ... except StopForward as stop:
        ...     stop.owner is other
        True
    """
    try:
        yield
    except StopForward as stop:
        if stop.owner is not owner:
            raise


class HookSet:
    """A set of forward hooks that is attached all at once and removed in one call.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2))
        >>> seen = []
        >>> hooks = HookSet(model, ["0"], lambda name, m, a, k, out: seen.append(name))
        >>> with hooks:
        ...     _ = model(torch.zeros(1, 2))
        >>> seen, len(model[0]._forward_hooks)
        (['0'], 0)
    """

    def __init__(self, model: nn.Module, names: Sequence[str], hook: NamedHook):
        self.model = model
        self.names = list(names)
        self.hook = hook
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self) -> "HookSet":
        modules = dict(self.model.named_modules())
        missing = [n for n in self.names if n not in modules]
        if missing:  # resolve names before calling attach; this is a last guard
            raise KeyError(f"Unknown module names: {missing}")
        try:
            for name in self.names:
                fn = self._bind(name)
                self._handles.append(modules[name].register_forward_hook(fn, with_kwargs=True))
        except BaseException:
            self.remove()
            raise
        return self

    def _bind(self, name: str):
        def fn(module, args, kwargs, output):
            return self.hook(name, module, args, kwargs, output)
        return fn

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> "HookSet":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.remove()


def first_tensor(value: Any) -> torch.Tensor | None:
    """The main tensor of a module's output or input.

    Hugging Face blocks return tuples ``(hidden_states, present, ...)`` or ``ModelOutput``
    dicts; the first tensor is the hidden state in all of them.
    """
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for item in value.values():
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def replace_first_tensor(value: Any, new: torch.Tensor) -> Any:
    """Return ``value`` with its first tensor (see :func:`first_tensor`) swapped for ``new``."""
    if isinstance(value, torch.Tensor):
        return new
    if isinstance(value, (tuple, list)):
        items = list(value)
        for i, item in enumerate(items):
            if first_tensor(item) is not None:
                items[i] = replace_first_tensor(item, new)
                if isinstance(value, list):
                    return items
                # namedtuples take their fields as arguments, plain tuples an iterable
                return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if first_tensor(item) is not None:
                value[key] = replace_first_tensor(item, new)
                return value
    raise TypeError(f"Cannot find a tensor to replace in a {type(value).__name__}")


def first_input(args: tuple, kwargs: dict) -> torch.Tensor | None:
    found = first_tensor(args)
    return found if found is not None else first_tensor(kwargs)
