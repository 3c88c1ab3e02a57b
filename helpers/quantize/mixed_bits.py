"""Mixed bit widths per channel: allocated by a sensitivity ranking, or learned under a budget (AMAQ-style).

    q = MixedBitQuantizer(lo, hi, b_min=2, b_max=8)      # lo, hi: (C,) per-channel ranges of the last dim
    x_hat = q(x)                                         # continuous bits while training, integer bits after .harden()
    train_bits(q, loss_fn, budget=3.0, steps=150)        # AMAQ: task loss + a bit penalty, budget lowered progressively
    bits = greedy_bits(sensitivity, lo, hi, budget=3.0)  # the untrained alternative: greedy by estimated error

AMAQ (Song et al. 2025) gives each channel a learnable gate ``Q_c`` and the bit width
``b_c = b_min + (b_max - b_min) * sigmoid(alpha * Q_c)``; activations are quantized with b_c bits (rounding passed
straight through in the backward pass), and a regulariser on the bits pushes their mean down while the task loss
keeps the bits where they matter; the target goes from high precision down to the budget over training. Here the
quantizer is uniform on the per-channel range [lo, hi] with ``2^b - 1`` steps, the penalty is
``lam * relu(mean(b) - target)`` and the final integer bits keep the budget exactly (:func:`round_to_budget`);
those three details are this package's choices.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from helpers.ops.quantization import MAX_BITS, MIN_BITS, check_bits


def _check_budget(budget: float, b_min: int, b_max: int) -> None:
    check_bits(b_min)
    check_bits(b_max)
    if not b_min <= budget <= b_max:
        raise ValueError(f"budget (mean bits) must be between b_min={b_min} and b_max={b_max}, got {budget}")


def quantize_channels(x: torch.Tensor, bits: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Uniform quantization of the last dim of ``x`` with ``bits[c]`` bits on [lo[c], hi[c]]; rounding is passed
    straight through (identity gradient), so gradients reach ``x`` and, through the step size, ``bits``.

    Example:
        >>> x = torch.tensor([[0.0, 0.4, 1.0]])
        >>> quantize_channels(x, torch.tensor([2.0, 2.0, 2.0]), torch.zeros(3), torch.ones(3)).tolist()
        [[0.0, 0.3333333432674408, 1.0]]
    """
    levels = 2.0 ** bits - 1                                    # (C,) number of steps
    step = (hi - lo).clamp(min=1e-8) / levels
    t = ((x - lo) / step).clamp(min=0.0)
    t = torch.minimum(t, levels.expand_as(t))
    return lo + step * (t + (torch.round(t) - t).detach())


class MixedBitQuantizer(nn.Module):
    """Per-channel (last dim) quantizer whose bit widths are learnable gates (AMAQ); see the module docstring."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, b_min: int = 2, b_max: int = 8, alpha: float = 1.0,
                 init_bits: float | None = None):
        super().__init__()
        _check_budget(init_bits if init_bits is not None else b_max - 0.5, b_min, b_max)
        self.b_min, self.b_max, self.alpha = b_min, b_max, alpha
        self.register_buffer("lo", lo.detach().float().clone())
        self.register_buffer("hi", hi.detach().float().clone())
        frac = ((init_bits if init_bits is not None else b_max - 0.5) - b_min) / (b_max - b_min)
        frac = min(max(frac, 1e-3), 1 - 1e-3)
        self.gates = nn.Parameter(torch.full_like(self.lo, float(torch.logit(torch.tensor(frac))) / alpha))
        self.register_buffer("hard_bits", None)

    def bits(self) -> torch.Tensor:
        """Per-channel bits: the hardened integers, or the continuous ``b_min + (b_max - b_min) sigmoid(alpha Q)``."""
        if self.hard_bits is not None:
            return self.hard_bits
        return self.b_min + (self.b_max - self.b_min) * torch.sigmoid(self.alpha * self.gates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_channels(x, self.bits(), self.lo, self.hi)

    def harden(self, budget: float) -> torch.Tensor:
        """Fix integer bits whose mean is at most ``budget`` (closest to the learned ones); returns them."""
        self.hard_bits = None
        self.hard_bits = round_to_budget(self.bits().detach(), budget, self.b_min, self.b_max)
        return self.hard_bits


def round_to_budget(bits: torch.Tensor, budget: float, b_min: int = MIN_BITS, b_max: int = MAX_BITS) -> torch.Tensor:
    """Integer bits near continuous ``bits`` with ``sum <= budget * C``: round, then move single bits where the
    rounding was furthest off.

    Example:
        >>> round_to_budget(torch.tensor([2.4, 2.6, 4.4, 2.6]), budget=3.0, b_min=2, b_max=8).tolist()
        [2.0, 3.0, 4.0, 3.0]
    """
    _check_budget(budget, b_min, b_max)
    cont = bits.detach().float().clamp(b_min, b_max)
    out = cont.round()
    total = int(budget * len(cont) + 1e-6)
    while out.sum() > total:                                   # take a bit where rounding added the most
        excess = torch.where(out > b_min, out - cont, torch.tensor(-float("inf")))
        out[excess.argmax()] -= 1
    while out.sum() + 1 <= total and (out < b_max).any():      # give a bit where rounding took the most
        short = torch.where(out < b_max, cont - out, torch.tensor(-float("inf")))
        out[short.argmax()] += 1
    return out


def greedy_bits(sensitivity: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, budget: float, b_min: int = 2,
                b_max: int = 8) -> torch.Tensor:
    """Integer bits with mean ``budget``, each extra bit given to the channel where it removes the most estimated
    loss: ``sensitivity[c] * step_c(b)^2 / 12`` (the variance of uniform rounding noise, weighted).

    Example:
        >>> greedy_bits(torch.tensor([1.0, 100.0]), torch.zeros(2), torch.ones(2), budget=3.0).tolist()
        [2.0, 4.0]
    """
    _check_budget(budget, b_min, b_max)
    span2 = (hi - lo).float().pow(2)

    def cost(b: torch.Tensor) -> torch.Tensor:
        return sensitivity * span2 / (2.0 ** b - 1).pow(2) / 12

    bits = torch.full_like(span2, float(b_min))
    for _ in range(int(budget * len(bits) + 1e-6) - b_min * len(bits)):
        gain = torch.where(bits < b_max, cost(bits) - cost(bits + 1), torch.tensor(-float("inf")))
        bits[gain.argmax()] += 1
    return bits


def train_bits(quantizer: MixedBitQuantizer, loss_fn: Callable[[MixedBitQuantizer, int], torch.Tensor],
               budget: float, steps: int = 150, lam: float = 1.0, lr: float = 0.1, start_bits: float | None = None,
               anneal: float = 0.5) -> list[float]:
    """Train only the gates of ``quantizer``: ``loss_fn(quantizer, step)`` (the task loss with it in place) plus
    ``lam * relu(mean bits - target)``, the target falling linearly from ``start_bits`` to ``budget`` over the
    first ``anneal`` fraction of the steps. Returns the task loss per step; then call ``quantizer.harden(budget)``.
    """
    _check_budget(budget, quantizer.b_min, quantizer.b_max)
    start = quantizer.b_max - 0.5 if start_bits is None else start_bits
    opt = torch.optim.Adam([quantizer.gates], lr=lr)
    history = []
    for step in range(steps):
        frac = min(1.0, step / max(1, anneal * steps))
        target = start + frac * (budget - start)
        task = loss_fn(quantizer, step)
        penalty = lam * torch.relu(quantizer.bits().mean() - target)
        opt.zero_grad()
        (task + penalty).backward()
        opt.step()
        history.append(task.item())
    return history
