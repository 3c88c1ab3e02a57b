"""A small mixture-of-experts classifier on image patches ("tokens"), small enough to train on a CPU in seconds.

``patch_tokens`` cuts each 28x28 Fashion-MNIST image into 16 patches of 7x7 pixels: 16 tokens of 49 values. The
``PatchMoE`` embeds them, adds a learnt position embedding, applies ``n_layers`` residual MoE layers (pre-LayerNorm)
and classifies the mean token. Each ``MoELayer`` has E experts (two-layer GELU MLPs) and a linear router; how many
experts a token uses is chosen per call (fixed top-k or a cumulative-probability threshold), so one trained model
can be evaluated under several routing rules. The experts are evaluated densely and mixed with the (sparse)
routing weights: the same result as running each expert only on its tokens, simple and fast at this size.

Example:
    >>> net = PatchMoE(MoEConfig(n_experts=4, k=2))
    >>> x = patch_tokens(torch.zeros(3, 28, 28, dtype=torch.uint8))
    >>> net(x).shape, x.shape
    (torch.Size([3, 10]), torch.Size([3, 16, 49]))
    >>> net(x, threshold=0.5).shape
    torch.Size([3, 10])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.routing.routers import check_k, check_threshold, load_balancing_loss, threshold_weights, topk_weights


def patch_tokens(images: torch.Tensor, patch: int = 7) -> torch.Tensor:
    """(N, H, W) uint8 or float images -> (N, (H/patch)*(W/patch), patch*patch) floats in [0, 1], row-major patches."""
    if images.ndim != 3 or images.shape[1] % patch or images.shape[2] % patch:
        raise ValueError(f"images must be (N, H, W) with H and W multiples of {patch}, got {tuple(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    n, h, w = x.shape
    return x.unfold(1, patch, patch).unfold(2, patch, patch).reshape(n, (h // patch) * (w // patch), patch * patch)


@dataclass
class MoEConfig:
    """Sizes and the default routing (used in training) of a ``PatchMoE``."""

    d_in: int = 49
    n_tokens: int = 16
    d_model: int = 32
    d_hidden: int = 64
    n_experts: int = 4
    k: int = 2
    n_layers: int = 2
    n_classes: int = 10

    def __post_init__(self) -> None:
        check_k(self.k, self.n_experts)


class MoELayer(nn.Module):
    """E expert MLPs and a router; ``forward(x (N, d), k=..., threshold=...)`` -> (N, d).

    After each call ``last_probs`` and ``last_weights`` (N, E) hold the router probabilities and the mixing weights
    (detached copies are the caller's business), ``aux_loss`` the load-balancing loss of that call.
    """

    def __init__(self, d_model: int, d_hidden: int, n_experts: int) -> None:
        super().__init__()
        self.n_experts = n_experts
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.w1 = nn.Parameter(torch.randn(n_experts, d_model, d_hidden) / d_model ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(n_experts, d_hidden))
        self.w2 = nn.Parameter(torch.randn(n_experts, d_hidden, d_model) / d_hidden ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(n_experts, d_model))
        self.last_probs = self.last_weights = self.aux_loss = None

    def experts(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert's output for every token, (N, E, d)."""
        h = F.gelu(torch.einsum("nd,edh->neh", x, self.w1) + self.b1)
        return torch.einsum("neh,ehd->ned", h, self.w2) + self.b2

    def route(self, x: torch.Tensor, k: int | None = None, threshold: float | None = None,
              k_max: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(router probabilities, mixing weights), both (N, E)."""
        probs = self.router(x).softmax(-1)
        if threshold is not None:
            return probs, threshold_weights(probs, threshold, k_max)
        return probs, topk_weights(probs, k)

    def forward(self, x: torch.Tensor, k: int | None = None, threshold: float | None = None,
                k_max: int | None = None, weights_fn: Callable | None = None) -> torch.Tensor:
        if weights_fn is not None:                       # any routing rule: probs (N, E) -> weights (N, E)
            probs = self.router(x).softmax(-1)
            weights = weights_fn(probs)
        else:
            probs, weights = self.route(x, k, threshold, k_max)
        self.last_probs, self.last_weights = probs, weights
        self.aux_loss = load_balancing_loss(probs, weights)
        return (weights.unsqueeze(-1) * self.experts(x)).sum(1)


def _per_layer(value, n_layers: int, what: str) -> list:
    if value is None or isinstance(value, (int, float)):
        return [value] * n_layers
    value = list(value)
    if len(value) != n_layers:
        raise ValueError(f"{what} needs one value per MoE layer ({n_layers}), got {value}")
    return value


class PatchMoE(nn.Module):
    """Patch tokens -> embedding + positions -> ``n_layers`` residual MoE layers -> mean token -> class logits.

    ``forward(x, k=None, threshold=None, k_max=None, weights_fn=None)``: k, threshold and k_max may be one value or
    one per layer; with neither k nor threshold the config's ``k`` is used. ``weights_fn(probs) -> weights`` replaces
    the rule in every layer (for baselines and exercises). Bad values raise before any computation.
    """

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Linear(c.d_in, c.d_model)
        self.pos = nn.Parameter(torch.randn(c.n_tokens, c.d_model) * 0.1)
        self.norms = nn.ModuleList(nn.LayerNorm(c.d_model) for _ in range(c.n_layers))
        self.moe = nn.ModuleList(MoELayer(c.d_model, c.d_hidden, c.n_experts) for _ in range(c.n_layers))
        self.head = nn.Linear(c.d_model, c.n_classes)

    def routing_args(self, k=None, threshold=None, k_max=None) -> list[tuple]:
        """Validate and expand the routing arguments to one (k, threshold, k_max) per layer."""
        n, e = self.config.n_layers, self.config.n_experts
        if k is None and threshold is None:
            k = self.config.k
        if k is not None and threshold is not None:
            raise ValueError("give either k (fixed top-k) or threshold (dynamic k), not both")
        ks, ts, ms = _per_layer(k, n, "k"), _per_layer(threshold, n, "threshold"), _per_layer(k_max, n, "k_max")
        for kk, tt, mm in zip(ks, ts, ms):
            if kk is not None:
                check_k(kk, e)
            if tt is not None:
                check_threshold(tt)
            if mm is not None:
                check_k(mm, e, "k_max")
        return list(zip(ks, ts, ms))

    def forward(self, x: torch.Tensor, k: int | Sequence[int] | None = None,
                threshold: float | Sequence[float] | None = None,
                k_max: int | Sequence[int] | None = None, weights_fn: Callable | None = None) -> torch.Tensor:
        args = self.routing_args(k, threshold, k_max)
        if x.ndim != 3 or x.shape[1:] != (self.config.n_tokens, self.config.d_in):
            raise ValueError(f"x must be (B, {self.config.n_tokens}, {self.config.d_in}) patch tokens, "
                             f"got {tuple(x.shape)}")
        b, t, _ = x.shape
        h = self.embed(x) + self.pos
        for norm, layer, (kk, tt, mm) in zip(self.norms, self.moe, args):
            h = h + layer(norm(h).reshape(b * t, -1), kk, tt, mm, weights_fn).reshape(b, t, -1)
        return self.head(h.mean(1))

    def aux_loss(self) -> torch.Tensor:
        """Sum of the layers' load-balancing losses from the last forward."""
        return sum(layer.aux_loss for layer in self.moe)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int = 128,
                     lr: float = 3e-3, aux_weight: float = 0.0, extra_loss=None, seed: int = 0,
                     **forward_kwargs) -> list[float]:
    """Adam on cross-entropy (+ ``aux_weight`` * ``model.aux_loss()`` + ``extra_loss(model)``); returns the losses.

    Minibatches are drawn with a generator seeded by ``seed``; the model is left in train mode.
    """
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be positive, got {steps} and {batch}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=gen)
        loss = F.cross_entropy(model(x[idx], **forward_kwargs), y[idx])
        if aux_weight:
            loss = loss + aux_weight * model.aux_loss()
        if extra_loss is not None:
            loss = loss + extra_loss(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
