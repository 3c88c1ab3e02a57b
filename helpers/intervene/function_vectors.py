"""Function vectors (Todd et al., 2024) on the project's GPT: per-head outputs, head patching, causal indirect effect.

Head ``(l, j)`` of :class:`helpers.models.gpt.GPT` writes ``z_j @ W_proj[:, j-th slice].T`` into the residual
stream, where ``z_j`` is its slice of the input of ``blocks.l.attn.proj``. :func:`head_means` averages ``z`` at
the last token over prompts; :func:`patch_heads` replaces chosen heads' slices at the last token by those means
(a forward pre-hook on ``attn.proj``, always removed); :func:`function_vector` sums the chosen heads' mean
outputs in the residual basis. The causal indirect effect (CIE) of a head is the rise of the probability of the
correct answer on prompts whose demonstrations carry shuffled labels when only that head is patched.

Example:
    >>> from helpers.models.gpt import GPT, GPTConfig
    >>> _ = torch.manual_seed(0); m = GPT(GPTConfig(vocab_size=10, n_ctx=8, d_model=8, d_mlp=16, n_layer=2, n_head=2))
    >>> z = head_means(m, torch.randint(0, 10, (3, 5)))
    >>> z.shape, function_vector(m, z, [(1, 0)]).shape
    (torch.Size([2, 8]), torch.Size([8]))
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

Head = tuple[int, int]


def _proj(model: nn.Module, layer: int) -> nn.Linear:
    return model.blocks[layer].attn.proj


@torch.no_grad()
def head_means(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Mean input of every ``blocks.l.attn.proj`` at the last token of ``ids`` (N, T): (n_layer, d_model)."""
    got: dict[int, torch.Tensor] = {}
    handles = [_proj(model, l).register_forward_pre_hook(
        lambda mod, args, l=l: got.__setitem__(l, args[0][:, -1].float().mean(0))) for l in range(len(model.blocks))]
    try:
        model(ids)
    finally:
        for h in handles:
            h.remove()
    return torch.stack([got[l] for l in range(len(model.blocks))])


@contextmanager
def patch_heads(model: nn.Module, means: torch.Tensor, heads: Sequence[Head]) -> Iterator[None]:
    """Inside the block, each head in ``heads`` outputs its mean (from :func:`head_means`) at the last token."""
    n_layer, n_head = len(model.blocks), model.blocks[0].attn.n_head
    if means.shape != (n_layer, _proj(model, 0).in_features):
        raise ValueError(f"means must be ({n_layer}, {_proj(model, 0).in_features}), got {tuple(means.shape)}")
    by_layer: dict[int, list[int]] = {}
    for l, j in heads:
        if not (0 <= l < n_layer and 0 <= j < n_head):
            raise ValueError(f"head ({l}, {j}) does not exist: {n_layer} layers x {n_head} heads")
        by_layer.setdefault(l, []).append(j)
    hs = means.shape[1] // n_head

    def hook(layer: int):
        def fn(mod: nn.Module, args: tuple):
            z = args[0].clone()
            for j in by_layer[layer]:
                z[:, -1, j * hs:(j + 1) * hs] = means[layer, j * hs:(j + 1) * hs].to(z)
            return (z,) + tuple(args[1:])
        return fn

    handles = []
    try:
        for l in by_layer:
            handles.append(_proj(model, l).register_forward_pre_hook(hook(l)))
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def causal_indirect_effects(model: nn.Module, means: torch.Tensor, ids: torch.Tensor,
                            answers: torch.Tensor) -> torch.Tensor:
    """CIE of every head, (n_layer, n_head): mean P(answer) with the head patched minus without, on ``ids``."""
    def p_correct() -> torch.Tensor:
        probs = model(ids)[:, -1].softmax(-1)
        return probs[torch.arange(len(ids)), answers].mean()
    base = p_correct()
    n_layer, n_head = len(model.blocks), model.blocks[0].attn.n_head
    out = torch.zeros(n_layer, n_head)
    for l in range(n_layer):
        for j in range(n_head):
            with patch_heads(model, means, [(l, j)]):
                out[l, j] = p_correct() - base
    return out


def function_vector(model: nn.Module, means: torch.Tensor, heads: Sequence[Head]) -> torch.Tensor:
    """Sum of the chosen heads' mean outputs written into the residual stream (no bias), (d_model,)."""
    n_head = model.blocks[0].attn.n_head
    hs = means.shape[1] // n_head
    v = torch.zeros(means.shape[1])
    for l, j in heads:
        w = _proj(model, l).weight.detach().float().cpu()  # (d, d)
        v += w[:, j * hs:(j + 1) * hs] @ means[l, j * hs:(j + 1) * hs].cpu()
    return v


def top_heads(cie: torch.Tensor, k: int) -> list[Head]:
    """The ``k`` heads of largest CIE, best first.

    Example:
        >>> top_heads(torch.tensor([[0.1, 0.5], [0.3, -1.0]]), 2)
        [(0, 1), (1, 0)]
    """
    flat = cie.flatten().topk(k).indices.tolist()
    return [(i // cie.shape[1], i % cie.shape[1]) for i in flat]
