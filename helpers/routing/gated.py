"""Sparse Modular Activation's idea on patch tokens: a per-token gate decides whether a module runs at all.

``GatedPatchNet`` is ``PatchMoE``'s recipe with plain MLP blocks instead of MoE layers. With ``gated=True`` each
block has a gate g = sigmoid(w . norm(h) + b) per token and adds MLP(norm(h)) only where g > 0.5. In training the
decision is made the same way, with a straight-through gradient through g (``gate_penalty``, the mean gate, pushes
it down); the dense MLP is computed for all tokens there. At inference (``hard=True``) the MLP runs only on the
tokens whose gate is open: the others skip it, which is where compute is saved. ``mask`` forces which tokens
run (a baseline that picks tokens at random). With ``gated=False`` every token runs every block (the dense model).
The gate and its penalty are the notebook's own choices; SMA's SeqBoat gates an attention module from an SSM's
states with a different mechanism.

Example:
    >>> net = GatedPatchNet(gated=True).eval()
    >>> x = torch.rand(2, 16, 49)
    >>> net(x, hard=True).shape, len(net.last_active), net.last_active[0].shape
    (torch.Size([2, 10]), 2, torch.Size([32]))
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedBlock(nn.Module):
    """Residual MLP block, optionally gated per token; ``forward(h (N, d), hard, mask)`` -> (N, d)."""

    def __init__(self, d_model: int, d_hidden: int, gated: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))
        self.gate = nn.Linear(d_model, 1) if gated else None
        if gated:
            nn.init.constant_(self.gate.bias, 2.0)     # start open: every token runs the module
        self.last_gate = self.last_active = None

    def forward(self, h: torch.Tensor, hard: bool = False, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.norm(h)
        if self.gate is None and mask is None:
            self.last_active = torch.ones(len(h), dtype=torch.bool, device=h.device)
            return h + self.mlp(z)
        g = torch.sigmoid(self.gate(z)).squeeze(-1) if self.gate is not None else torch.ones(len(h), device=h.device)
        self.last_gate = g
        if not hard and mask is None:
            # straight-through: the forward uses the hard 0/1 decision (as at inference), the gradient the sigmoid's
            on = (g > 0.5).to(h.dtype)
            self.last_active = on.bool()
            return h + (on + g - g.detach()).unsqueeze(-1) * self.mlp(z)
        active = (g > 0.5) if mask is None else mask.to(h.device).bool()
        self.last_active = active
        idx = active.nonzero().squeeze(-1)
        out = h.clone()
        out[idx] = h[idx] + self.mlp(z[idx])                           # the module runs on these tokens only
        return out


class GatedPatchNet(nn.Module):
    """Patch tokens -> embedding + positions -> ``n_blocks`` (gated) residual MLP blocks -> mean -> logits."""

    def __init__(self, gated: bool = True, d_in: int = 49, n_tokens: int = 16, d_model: int = 32,
                 d_hidden: int = 128, n_blocks: int = 2, n_classes: int = 10) -> None:
        super().__init__()
        self.gated = gated
        self.embed = nn.Linear(d_in, d_model)
        self.pos = nn.Parameter(torch.randn(n_tokens, d_model) * 0.1)
        self.blocks = nn.ModuleList(GatedBlock(d_model, d_hidden, gated) for _ in range(n_blocks))
        self.head = nn.Linear(d_model, n_classes)
        self.last_active: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, hard: bool = False, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        if masks is not None and len(masks) != len(self.blocks):
            raise ValueError(f"masks needs one (tokens,) mask per block ({len(self.blocks)}), got {len(masks)}")
        b, t, _ = x.shape
        h = (self.embed(x) + self.pos).reshape(b * t, -1)
        for i, block in enumerate(self.blocks):
            h = block(h, hard=hard, mask=None if masks is None else masks[i])
        self.last_active = [block.last_active for block in self.blocks]
        return self.head(h.reshape(b, t, -1).mean(1))

    def gate_penalty(self) -> torch.Tensor:
        """Mean gate value over tokens and blocks from the last forward (0 for a dense net)."""
        gates = [blk.last_gate.mean() for blk in self.blocks if blk.last_gate is not None and blk.gate is not None]
        return torch.stack(gates).mean() if gates else torch.zeros(())


def module_flops(d_model: int, d_hidden: int) -> int:
    """Multiply-adds x 2 of one MLP block for one token (two matrix products)."""
    return 2 * 2 * d_model * d_hidden


def flops_ratio(active: list[torch.Tensor], d_model: int, d_hidden: int, gated: bool = True) -> float:
    """Compute of the blocks with these active-token masks relative to running every block on every token
    (gates counted: 2 * d_model per token per block)."""
    per_tok = module_flops(d_model, d_hidden)
    n = sum(len(a) for a in active)
    spent = sum(int(a.sum()) for a in active) * per_tok + (n * 2 * d_model if gated else 0)
    return spent / (n * per_tok)
