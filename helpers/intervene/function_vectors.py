"""Function vectors (Todd et al., 2024): per-head outputs, head patching, causal indirect effect.

Head ``(l, j)`` writes ``z_j @ W_O[:, j-th slice].T`` into the residual stream, where ``z_j`` is its slice of the
input of layer ``l``'s attention output projection ``W_O`` (``blocks.l.attn.proj`` in the project's GPT; GPT-2's
``attn.c_proj``, Llama's ``self_attn.o_proj``: :meth:`HeadSites.of` finds them for any model opened with
:func:`helpers.zoo.open_model`). :func:`head_means` averages ``z`` at the last token over prompts;
:func:`patch_heads` replaces chosen heads' slices at the last token by those means (a forward pre-hook on the
projection, always removed); :func:`function_vector` sums the chosen heads' mean outputs in the residual basis.
The causal indirect effect (CIE) of a head is the rise of the probability of the correct answer on prompts whose
demonstrations carry shuffled labels when only that head is patched.

Example:
    >>> from helpers.models.gpt import GPT, GPTConfig
    >>> _ = torch.manual_seed(0); m = GPT(GPTConfig(vocab_size=10, n_ctx=8, d_model=8, d_mlp=16, n_layer=2, n_head=2))
    >>> z = head_means(m, torch.randint(0, 10, (3, 5)))
    >>> z.shape, function_vector(m, z, [(1, 0)]).shape
    (torch.Size([2, 8]), torch.Size([8]))
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from helpers.core.linear_maps import linear_weight

Head = tuple[int, int]


@dataclass(frozen=True)
class HeadSites:
    """Where the heads are: per layer the attention's output projection (its input is the heads' outputs side by
    side, ``n_head`` slices)."""

    proj: tuple[str, ...]
    n_head: int

    @classmethod
    def of_gpt(cls, model: nn.Module) -> "HeadSites":
        """The project's GPT: ``blocks.l.attn.proj``."""
        return cls(tuple(f"blocks.{l}.attn.proj" for l in range(len(model.blocks))), model.blocks[0].attn.n_head)

    @classmethod
    def of(cls, lm: Any) -> "HeadSites":
        """Any decoder opened with :func:`helpers.zoo.open_model`: the last linear map inside each attention."""
        proj = []
        for name in lm.attn:
            inner = [n for n, m in lm.module(name).named_modules()
                     if not list(m.children()) and getattr(m, "weight", None) is not None and m.weight.dim() == 2]
            if not inner:
                raise ValueError(f"the attention {name} has no linear output projection")
            proj.append(f"{name}.{inner[-1]}")
        return cls(tuple(proj), lm.n_heads)


def _sites(model: nn.Module, sites: Optional[HeadSites]) -> HeadSites:
    return sites if sites is not None else HeadSites.of_gpt(model)


def _in_width(model: nn.Module, sites: HeadSites) -> int:
    return linear_weight(model.get_submodule(sites.proj[0])).shape[1]


@torch.no_grad()
def head_means(model: nn.Module, ids: torch.Tensor, sites: Optional[HeadSites] = None) -> torch.Tensor:
    """Mean input of every layer's output projection at the last token of ``ids`` (N, T): (n_layer, width)."""
    s = _sites(model, sites)
    got: dict[int, torch.Tensor] = {}
    handles = []
    try:
        for l, name in enumerate(s.proj):
            handles.append(model.get_submodule(name).register_forward_pre_hook(
                lambda mod, args, l=l: got.__setitem__(l, args[0][:, -1].float().mean(0).cpu())))
        model(ids)
    finally:
        for h in handles:
            h.remove()
    return torch.stack([got[l] for l in range(len(s.proj))])


@contextmanager
def patch_heads(model: nn.Module, means: torch.Tensor, heads: Sequence[Head],
                sites: Optional[HeadSites] = None) -> Iterator[None]:
    """Inside the block, each head in ``heads`` outputs its mean (from :func:`head_means`) at the last token."""
    s = _sites(model, sites)
    n_layer, n_head = len(s.proj), s.n_head
    if means.shape != (n_layer, _in_width(model, s)):
        raise ValueError(f"means must be ({n_layer}, {_in_width(model, s)}), got {tuple(means.shape)}")
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
            handles.append(model.get_submodule(s.proj[l]).register_forward_pre_hook(hook(l)))
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def causal_indirect_effects(model: nn.Module, means: torch.Tensor, ids: torch.Tensor, answers: torch.Tensor,
                            sites: Optional[HeadSites] = None,
                            last_logits: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
    """CIE of every head, (n_layer, n_head): mean P(answer) with the head patched minus without, on ``ids``.

    ``last_logits(ids) -> (N, V)`` gives the next-token logits (default: the project's GPT, ``model(ids)[:, -1]``).
    """
    s = _sites(model, sites)
    logits = last_logits or (lambda x: model(x)[:, -1])

    def p_correct() -> torch.Tensor:
        probs = logits(ids).float().softmax(-1)
        return probs[torch.arange(len(ids)), answers.to(probs.device)].mean().cpu()
    base = p_correct()
    out = torch.zeros(len(s.proj), s.n_head)
    for l in range(len(s.proj)):
        for j in range(s.n_head):
            with patch_heads(model, means, [(l, j)], s):
                out[l, j] = p_correct() - base
    return out


def function_vector(model: nn.Module, means: torch.Tensor, heads: Sequence[Head],
                    sites: Optional[HeadSites] = None) -> torch.Tensor:
    """Sum of the chosen heads' mean outputs written into the residual stream (no bias), (d_model,)."""
    s = _sites(model, sites)
    hs = means.shape[1] // s.n_head
    v = torch.zeros(linear_weight(model.get_submodule(s.proj[0])).shape[0])
    for l, j in heads:
        w = linear_weight(model.get_submodule(s.proj[l])).detach().float().cpu()  # (d, width)
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
