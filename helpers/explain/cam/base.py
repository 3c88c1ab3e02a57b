"""The shared base of every class activation map: one forward pass, the target layer's activation,
and (for gradient methods) the gradient of the target scores with respect to that activation only.

Each method is a small subclass that says how to turn ``activations`` (B, C, h, w) and ``grads``
(B, C, h, w) into a map (B, h, w), usually through one weight per channel (:meth:`BaseCAM.weights`).

Why it is fast: the forward pass runs without autograd up to the target layer; the hook on that
layer switches autograd on and hands the rest of the model a fresh leaf tensor. So the graph holds
only the layers *after* the target, and ``torch.autograd.grad(score, activation)`` backpropagates
through those alone, computing no parameter gradients at all (a ``.backward()`` call would go
through every layer and fill ``.grad`` of every weight).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from helpers.core.hooks import HookSet, StopForward, first_tensor, replace_first_tensor, stops_here
from helpers.core.names import Layer, resolve_layer
from helpers.explain.targets import check_targets

Targets = Union[torch.Tensor, Sequence[int], None]
ReshapeTransform = Callable[[torch.Tensor], torch.Tensor]


class BaseCAM:
    """A class activation map at one layer: ``maps = explainer(images, targets)``.

    Subclasses set ``uses_gradients`` / ``needs_scores`` and override :meth:`weights` (one weight
    per channel) or :meth:`compute` (the whole map).

    Args:
        model: a classifier returning logits (B, K); put it in eval mode (BatchNorm, dropout).
        target_layer: the exact module name (see ``helpers.layers(model, x)``), e.g. ``"blocks.2"``,
            or the module itself (``model.blocks[2]``).
        reshape_transform: turns the layer's output into (B, C, h, w), e.g. ViT tokens (B, 1+hw, C)
            with :func:`helpers.explain.cam.tokens_to_grid`; applied to activations and gradients alike.

    Example:
        >>> from helpers.explain import cam
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> cam.GradCAM(net, "1")(torch.rand(2, 3, 8, 8), targets=[0, 1]).shape
        torch.Size([2, 6, 6])
    """

    uses_gradients: bool = True   # needs d score / d activation
    needs_scores: bool = True     # needs the logits (targets); False lets the forward stop at the layer

    def __init__(self, model: nn.Module, target_layer: Layer,
                 reshape_transform: Optional[ReshapeTransform] = None):
        # LayerNotFoundError with close matches, before any hook; a module becomes its name
        self.target_layer = resolve_layer(model, target_layer, "target_layer")
        self.model = model
        self.reshape_transform = reshape_transform

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target_layer={self.target_layer!r})"

    # ----------------------------------------------------------------- template
    def __call__(self, images: torch.Tensor, targets: Targets = None, *, relu: bool = True) -> torch.Tensor:
        """Maps (B, h, w) at the target layer's resolution, ReLU'd (``relu=False``: the raw map), not normalised.

        ``targets``: one class id per image (LongTensor or list of length B), or None for the predicted class.
        """
        if not isinstance(images, torch.Tensor) or images.ndim < 2:
            raise ValueError(f"images must be a batched tensor (B, C, H, W), got "
                             f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}")
        if targets is not None:  # checked before any forward pass; the class range once the logits are known
            targets = check_targets(targets, images.shape[0], device=images.device)
        activations, grads, targets = self._forward(images, targets)
        with torch.no_grad():
            cam = self.compute(images, activations, grads, targets)  # (B, h, w)
        return cam.clamp_min(0) if relu else cam

    def compute(self, images: torch.Tensor, activations: torch.Tensor, grads: Optional[torch.Tensor],
                targets: Optional[torch.Tensor]) -> torch.Tensor:
        """The map before ReLU: sum_k w_k A_k with w = :meth:`weights`, (B, C, h, w) -> (B, h, w)."""
        w = self.weights(images, activations, grads, targets)          # (B, C)
        return torch.einsum("bc,bc...->b...", w, activations)

    def weights(self, images: torch.Tensor, activations: torch.Tensor, grads: Optional[torch.Tensor],
                targets: Optional[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must override weights() or compute()")

    # ----------------------------------------------------------------- plumbing
    def _scores(self, logits: torch.Tensor, targets: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The target logit of every image (B,), and the targets (predicted ones when None)."""
        if logits.ndim != 2:
            raise ValueError(f"the model must return logits (B, K); it returned shape {tuple(logits.shape)}. "
                             f"Wrap it, e.g. lambda x: model(x).logits.")
        if targets is None:
            targets = logits.argmax(dim=1)
        else:
            targets = check_targets(targets, logits.shape[0], n_classes=logits.shape[1], device=logits.device)
        return logits.gather(1, targets[:, None])[:, 0], targets

    def _grid(self, t: torch.Tensor) -> torch.Tensor:
        t = self.reshape_transform(t) if self.reshape_transform is not None else t
        if t.ndim < 4:
            raise ValueError(f"the activation of {self.target_layer!r} has shape {tuple(t.shape)}; a map "
                             f"needs (B, C, h, w) -- pass reshape_transform for token sequences.")
        return t

    def _forward(self, images: torch.Tensor, targets: Optional[torch.Tensor]):
        """Run the model once; return (activations, grads or None, targets), activations (B, C, h, w)."""
        store: dict[str, torch.Tensor] = {}
        grad_mode = self.uses_gradients
        stop = not self.needs_scores and not self.uses_gradients
        owner = object()  # this call's stop only: a capture's stop passes through to its own block

        def hook(name, module, args, kwargs, output):
            out = first_tensor(output)
            if out is None:
                raise TypeError(f"layer {name!r} returned {type(output).__name__} with no tensor in it")
            if stop:
                store["a"] = out.detach()
                raise StopForward(owner)
            if not grad_mode:
                store["a"] = out.detach()
                return None
            # From here on autograd records; the layer's output becomes a leaf, so backward stops here.
            torch.set_grad_enabled(True)
            leaf = out.detach().requires_grad_(True)
            store["a"] = leaf
            # clone: later in-place ops (ReLU(inplace=True)) may modify the model's copy, not our leaf
            return replace_first_tensor(output, leaf.clone())

        grad_before = torch.is_grad_enabled()
        logits = None
        try:
            torch.set_grad_enabled(False)  # nothing before the target layer is recorded
            with HookSet(self.model, [self.target_layer], hook):
                with stops_here(owner):  # this call's stop only: a capture's stop reaches its own block
                    logits = first_tensor(self.model(images))
        finally:
            torch.set_grad_enabled(grad_before)
        if "a" not in store:
            raise RuntimeError(f"layer {self.target_layer!r} did not run in the forward pass")
        raw = store["a"]
        grads = None
        if logits is not None:
            with torch.enable_grad():  # gather() and sum() must be recorded even when the caller is in no_grad
                scores, targets = self._scores(logits, targets)
                total = scores.sum()
            if grad_mode:
                # gradients of each image's own target logit: images are independent, so one sum works
                (grads,) = torch.autograd.grad(total, raw)
                grads = self._grid(grads)
        return self._grid(raw.detach()), grads, targets
