"""Resolve layer names: exact names, globs and lists, with helpful errors.

Every module that hooks a model resolves its layer names here, *before* any hook is
registered, so a typo never leaves half the hooks attached.

Glob rules (chosen so that ``blocks.*.mlp`` means "the mlp of every block"):
``*`` matches inside one dotted segment, ``**`` matches across segments, ``?`` one character.

Wherever a layer name is accepted, the module object is accepted too (``capture(model, model.layer4)``,
as pytorch-grad-cam users write it), and so is a list mixing names and modules.
"""
from __future__ import annotations

import difflib
import re
from typing import Sequence, Union

from torch import nn

Layer = Union[str, nn.Module]
LayerSpec = Union[Layer, Sequence[Layer]]


class LayerNotFoundError(KeyError):
    """A layer name or glob matched no module of the model.

    It subclasses ``KeyError`` (a missing key in the model's name space) but prints its
    message in full, with close matches and how to list all names.
    """

    def __str__(self) -> str:  # KeyError would print the message inside quotes
        return str(self.args[0])


def module_names(model: nn.Module) -> list[str]:
    """All submodule names of ``model`` in registration order (the root ``""`` excluded).

    Example:
        >>> module_names(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
        ['0', '1']
    """
    return [name for name, _ in model.named_modules() if name]


def _glob_to_regex(pattern: str) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^.]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^.]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?")


def _not_found(pattern: str, names: Sequence[str]) -> LayerNotFoundError:
    close = difflib.get_close_matches(pattern, names, n=5, cutoff=0.5)
    if not close:
        # Fall back to names sharing the last segment (e.g. 'mlp' in 'blocks.0.mlp').
        tail = pattern.rsplit(".", 1)[-1].strip("*?")
        close = [n for n in names if tail and n.rsplit(".", 1)[-1] == tail][:5]
    hint = f" Close matches: {', '.join(repr(c) for c in close)}." if close else ""
    return LayerNotFoundError(
        f"No layer of the model matches {pattern!r}.{hint} "
        f"List all names with helpers.layers(model) (the model has {len(names)} submodules)."
    )


def _name_of(model: nn.Module, module: nn.Module) -> str:
    """The name under which ``module`` sits inside ``model`` (its first name, if it is shared)."""
    if module is model:
        raise ValueError(f"The module passed as a layer is the model itself ({type(model).__name__}); "
                         f"pass one of its submodules (helpers.layers(model) lists them).")
    for name, candidate in model.named_modules():
        if candidate is module and name:
            return name
    raise LayerNotFoundError(
        f"The {type(module).__name__} passed as a layer is not a submodule of this "
        f"{type(model).__name__} (a module of another model, or of a copy of it?). "
        f"Pass a module of this model or its name; helpers.layers(model) lists them.")


def _as_list(spec: LayerSpec) -> list:
    # A module is one layer even when it is iterable (nn.Sequential, nn.ModuleList).
    return [spec] if isinstance(spec, (str, nn.Module)) else list(spec)


def resolve_layers(model: nn.Module, spec: LayerSpec) -> list[str]:
    """Turn a name, a glob, a module or a list of them into a list of existing module names.

    Names come back in the model's module order, without duplicates. Every pattern
    must match at least one module, otherwise :class:`LayerNotFoundError` lists close matches;
    a module that is not inside ``model`` is a :class:`LayerNotFoundError` too.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> resolve_layers(model, ["2", "0"])
        ['0', '2']
        >>> resolve_layers(model, [model[2], "1"])
        ['1', '2']
    """
    patterns = _as_list(spec)
    if not patterns:
        raise ValueError("No layers given: pass a name, a glob such as 'blocks.*.mlp', a module, or a list of them.")
    names = module_names(model)
    wanted: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, nn.Module):
            wanted.add(_name_of(model, pattern))
            continue
        if not isinstance(pattern, str):
            raise TypeError(f"A layer is a name, a glob or a module, got {type(pattern).__name__}: {pattern!r}")
        if is_glob(pattern):
            regex = _glob_to_regex(pattern)
            hits = {n for n in names if regex.match(n)}
        else:
            hits = {pattern} if pattern in names else set()
        if not hits:
            raise _not_found(pattern, names)
        wanted |= hits
    return [n for n in names if n in wanted]


def resolve_layer(model: nn.Module, layer: Layer, what: str = "layer") -> str:
    """The name of exactly one layer, given as its exact name or as the module itself (no glob).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> resolve_layer(model, model[1]), resolve_layer(model, "0")
        ('1', '0')
    """
    if isinstance(layer, str) and is_glob(layer) or not isinstance(layer, (str, nn.Module)):
        raise ValueError(f"{what} must be one exact module name or the module itself, got {layer!r:.80} "
                         f"(list the names with helpers.layers(model, example)).")
    return resolve_layers(model, layer)[0]
