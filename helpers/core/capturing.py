"""Capture activations (outputs, inputs, gradients) of named layers with a context manager.

    with capture(model, "blocks.*.mlp") as acts:
        model(tokens)
    acts["blocks.0.mlp"]          # (B, T, d) output of that module

Names are resolved and validated before any hook is attached; hooks are attached
all-or-nothing and removed in ``finally`` (also on an exception and with ``stop=True``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional, Union

import torch
from torch import nn

from helpers.core.hooks import HookSet, StopForward, first_input, first_tensor, stops_here
from helpers.core.budget import check_fits, default_budget
from helpers.core.names import LayerSpec, resolve_layers
from helpers.core.positions import Positions, select


class ModifiedInPlaceError(RuntimeError):
    """A captured activation was changed by a later in-place operation of the model."""


class Activations(Mapping[str, torch.Tensor]):
    """Dict-like result of :func:`capture`: ``acts[name]`` (or ``acts[module]``) is the layer's output.

    ``acts.inputs[name]`` and ``acts.grads[name]`` hold inputs and output gradients when
    they were requested. Its repr lists names, shapes, dtypes and devices.
    """

    def __init__(self, layers: list[str], *, outputs: bool = True, inputs: bool = False, grads: bool = False,
                 modules: Optional[Mapping[str, nn.Module]] = None):
        self.layers = layers
        self.kept = {"outputs": outputs, "inputs": inputs, "grads": grads}  # what capture() was asked for
        self._modules = dict(modules or {})  # name -> module, so that acts[module] works
        self.outputs: dict[str, torch.Tensor] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        # Version counters at capture time: detached tensors share them with the model's
        # tensor, so a later in-place op (ReLU(inplace=True)) is detected instead of
        # silently returning modified values.
        self._versions: dict[str, int] = {}

    def _name(self, key: Union[str, nn.Module]) -> str:
        if not isinstance(key, nn.Module):
            return key
        for name, module in self._modules.items():
            if module is key:
                return name
        raise KeyError(f"This {type(key).__name__} module was not captured. Captured layers: {self.layers}")

    def __getitem__(self, name: Union[str, nn.Module]) -> torch.Tensor:
        name = self._name(name)
        if name not in self.outputs:
            if name in self.layers and not self.kept["outputs"]:
                other = [f"acts.{kind}[{name!r}]" for kind in ("inputs", "grads") if self.kept[kind]]
                raise KeyError(f"capture(..., outputs=False) kept no outputs; this capture kept "
                               f"{' and '.join(other)}.")
            if name in self.layers:
                raise KeyError(f"Layer {name!r} was requested but has not run yet: call the model "
                               f"inside the `with capture(...)` block (with stop=True, last).")
            raise KeyError(f"{name!r} was not captured. Captured layers: {self.layers}")
        tensor = self.outputs[name]
        if name in self._versions and tensor._version != self._versions[name]:
            raise ModifiedInPlaceError(
                f"The output of {name!r} was modified in place after it was captured (e.g. by a "
                f"following ReLU(inplace=True)). Capture it with clone=True.")
        return tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    def __repr__(self) -> str:
        lines = [f"Activations({len(self.outputs)} of {len(self.layers)} layers captured)"]
        width = max((len(n) for n in self.layers), default=0)
        for name in self.layers:
            parts = []
            for kind, store in (("out", self.outputs), ("in", self.inputs), ("grad", self.grads)):
                if name in store:
                    t = store[name]
                    parts.append(f"{kind} {tuple(t.shape)} {str(t.dtype).replace('torch.', '')} {t.device}")
            lines.append(f"  {name:<{width}}  " + ("; ".join(parts) if parts else "(not run)"))
        return "\n".join(lines)


def _keep(t: torch.Tensor, positions: Positions, to: Optional[Union[str, torch.device]],
          dtype: Optional[torch.dtype], detach: bool, clone: bool) -> torch.Tensor:
    """Reduce a raw activation to what the caller keeps: select, detach, move, cast."""
    t = select(t, positions)  # (B, T, ...) -> (B, len(positions), ...)
    if detach:
        t = t.detach()
    if to is not None or dtype is not None:
        t = t.to(device=to, dtype=dtype)  # copies only when device or dtype change
    if clone:
        t = t.clone()
    return t


@contextmanager
def capture(
    model: nn.Module,
    layers: LayerSpec,
    *,
    outputs: bool = True,
    inputs: bool = False,
    grads: bool = False,
    to: Optional[Union[str, torch.device]] = None,
    dtype: Optional[torch.dtype] = None,
    positions: Positions = None,
    detach: bool = True,
    clone: bool = False,
    stop: bool = False,
    max_bytes: Optional[int] = None,
) -> Iterator[Activations]:
    """Record activations of ``layers`` during forward (and backward) passes in the block.

    Args:
        model: any ``nn.Module``.
        layers: a name, a glob (``"blocks.*.mlp"``: ``*`` stays in one dotted segment), a module
            (``model.layer4``) or a list mixing them.
        outputs / inputs: keep each layer's output (default) / first input tensor.
        grads: keep d(loss)/d(output) when you call ``backward()`` inside the block.
        to, dtype: move/cast what is kept (e.g. ``to="cpu", dtype=torch.float16``).
        positions: the tokens to keep of a ``(B, T, d)`` stream, e.g. ``-1`` or ``[0, 5]``; on another
            layout (a CNN's ``(B, C, H, W)``) refused unless the dimension is named
            (``Along(dim, index)``, see :mod:`helpers.core.positions`).
        detach: keep tensors out of the graph; ``detach=False`` keeps the live tensors, so
            ``torch.autograd.grad(score, acts[name])`` works (Grad-CAM without ``.backward()``).
        clone: copy kept tensors (needed when the model later modifies them in place; a
            modification is otherwise detected on access and raises).
        stop: end the forward pass after every requested layer has run (the rest of the
            model is skipped). Put the model call last in the block.
        max_bytes: refuse (``CaptureTooLargeError``) before storing beyond this many bytes;
            default half of the free memory of the target device.

    Tuple outputs (Hugging Face blocks) are reduced to their first tensor (the hidden state).
    When a module runs several times in the block, the last call wins.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> with capture(model, ["0", "1"]) as acts:
        ...     _ = model(torch.randn(3, 4))
        >>> acts["1"].shape
        torch.Size([3, 8])
    """
    if stop and grads:
        raise ValueError("stop=True ends the forward pass early, so there is no loss to take "
                         "gradients of: use stop=False with grads=True.")
    if not (outputs or inputs or grads):
        raise ValueError("Nothing to capture: set outputs, inputs or grads to True.")
    names = resolve_layers(model, layers)  # raises before any hook exists
    modules = dict(model.named_modules())
    acts = Activations(names, outputs=outputs, inputs=inputs, grads=grads,
                       modules={name: modules[name] for name in names})
    seen: set[str] = set()
    stored_bytes = {"n": 0}
    tensor_handles: list = []
    state = {"active": True, "budget": max_bytes}

    def account(name: str, t: torch.Tensor) -> None:
        if state["budget"] is None:
            state["budget"] = default_budget(t.device if to is None else to)
        size = t.numel() * (dtype.itemsize if dtype is not None else t.element_size())
        check_fits(stored_bytes["n"] + size, state["budget"], f"capturing {name!r}",
                   "Capture fewer layers or positions, use dtype=torch.float16, to='cpu', "
                   "a smaller batch, or stream to disk with helpers.extract().")
        stored_bytes["n"] += size

    def on_forward(name: str, module: nn.Module, args: tuple, kwargs: dict, output: Any):
        if not state["active"]:
            return None
        out = first_tensor(output)
        if outputs:
            if out is None:
                raise TypeError(f"Layer {name!r} returned {type(output).__name__} with no tensor in it.")
            chosen = select(out, positions, f"the output of {name!r}")  # refuses a layout without tokens
            account(name, chosen)
            kept = _keep(chosen, None, to, dtype, detach, clone)
            acts.outputs[name] = kept
            shares_memory = kept.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()
            if shares_memory and not clone:
                acts._versions[name] = kept._version
            else:
                acts._versions.pop(name, None)
        if inputs:
            inp = first_input(args, kwargs)
            if inp is not None:
                inp = select(inp, positions, f"the input of {name!r}")
                account(name, inp)
                acts.inputs[name] = _keep(inp, None, to, dtype, detach, True)
        if grads:
            if out is None or not out.requires_grad:
                raise RuntimeError(f"grads=True but the output of {name!r} does not require grad "
                                   f"(is the forward inside torch.no_grad() or inference_mode()?).")
            select(out, positions, f"the output of {name!r}")  # a layout error now, not inside backward()

            def on_grad(g: torch.Tensor, name: str = name) -> None:
                if state["active"]:
                    acts.grads[name] = _keep(g, positions, to, dtype, True, False)

            tensor_handles.append(out.register_hook(on_grad))
        seen.add(name)
        if stop and len(seen) == len(names):
            raise StopForward(acts)
        return None

    hooks = HookSet(model, names, on_forward).attach()
    try:
        # Only this capture's stop ends the block quietly: a stop asked for by an enclosing
        # capture goes on up to it, so that its block ends too.
        with stops_here(acts):
            yield acts
    finally:
        state["active"] = False
        hooks.remove()
        for handle in tensor_handles:
            handle.remove()
