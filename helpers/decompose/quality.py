"""How good a reconstruction of activations is: FVU, L0, dead latents, the loss when it replaces the layer.

Example:
    >>> x = torch.randn(100, 8)
    >>> fvu(x, x), round(fvu(x, x.mean(0).expand_as(x)), 6)
    (0.0, 1.0)
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.editing import edit
from helpers.core.store import ActivationStore


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained: ``Σ||x - x̂||² / Σ||x - mean(x)||²`` over tokens (rows of (N, d))."""
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    x, x_hat = x.double().flatten(0, -2), x_hat.double().flatten(0, -2)
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def l0(z: torch.Tensor) -> float:
    """Mean number of nonzero latents per token of z (N, d_sae)."""
    return float((z != 0).sum(-1).double().mean())


def dead_fraction(z: torch.Tensor) -> float:
    """Share of latents that never fire on the tokens of z (N, d_sae)."""
    return float((z.flatten(0, -2) == 0).all(0).double().mean())


def spliced_loss(model: nn.Module, tokens: torch.Tensor, layer: str,
                 reconstruct: Callable[[torch.Tensor], torch.Tensor], inputs: bool = False) -> float:
    """Next-token cross-entropy of ``model`` on ``tokens`` (B, T + 1) with ``layer``'s output replaced by
    ``reconstruct(output)`` (applied to (B, T, d)); :func:`helpers.edit` does the replacing. With ``inputs=True``
    the layer's input is replaced instead (e.g. an MLP's hidden activations, the input of its output projection).
    Hugging Face models' outputs are unwrapped to their logits.

    Example:
        >>> model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 5))
        >>> ids = torch.tensor([[0, 1, 2, 3]])
        >>> spliced_loss(model, ids, "1", lambda h: h, inputs=True) == spliced_loss(model, ids, "1", lambda o: o)
        True
    """
    feed, targets = tokens[:, :-1], tokens[:, 1:]
    with torch.no_grad():
        if inputs:
            module = model.get_submodule(layer)
            handle = module.register_forward_pre_hook(lambda mod, args: (reconstruct(args[0]), *args[1:]))
            try:
                out = model(feed)
            finally:
                handle.remove()
        else:
            with edit(model, {layer: lambda out: reconstruct(out)}):
                out = model(feed)
    logits = getattr(out, "logits", out)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()


def layer_activations(store: ActivationStore, layer: str, samples: slice = slice(None)) -> torch.Tensor:
    """One layer's activations from a complete store as a float (N, d) tensor (tokens flattened); ``samples``
    picks a block of samples (reading only those rows).

    Refuses an incomplete store or a layer the store does not have, naming the store's layers.

    Example:
        >>> store = ActivationStore("build/acts/gpt")             # doctest: +SKIP
        >>> layer_activations(store, "blocks.1.mlp.act").shape    # doctest: +SKIP
        torch.Size([19200, 512])
    """
    if layer not in store.layers:
        raise ValueError(f"the store at {store.folder!r} has no layer {layer!r}; its layers: {store.layers}")
    if not store.complete:
        raise ValueError(f"the store at {store.folder!r} is incomplete ({store.manifest['done']} of "
                         f"{store.manifest['n']} samples written; layers: {store.layers}); finish it with "
                         f"helpers.extract(..., resume=True) before training on it")
    x = store[layer][samples]
    return x.reshape(-1, x.shape[-1]).float()
