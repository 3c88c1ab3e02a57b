"""Signal propagation in a deep MLP at initialisation: how the activations' variance and the gradients change with
depth, for an initialisation scheme and an activation function.

The network is ``depth`` square layers without biases, ``h_l = a_{l-1} W_l^T`` and ``a_l = phi(h_l)``, fed with
standard-normal inputs ``a_0``. With weights drawn from N(0, std^2), the pre-activations' second moment follows
``q_l = width * std^2 * E[phi(h_{l-1})^2]``; for ReLU ``E[relu(h)^2] = q / 2``, so ``std^2 = 2 / width`` (Kaiming)
keeps ``q`` constant, ``1 / width`` (Xavier with fan_in = fan_out) halves it at every layer, and a fixed small
std (``naive``, 0.01) shrinks it by ``width * 0.01^2 / 2`` per layer.

The backward pass uses a fixed random read-out ``r``: ``loss = sum(a_L * r) / sqrt(batch)`` (per network), so that the gradient
that enters the top layer has the same size for every scheme and only the backward path through the layers differs.

Random numbers are drawn from one ``torch.Generator(seed)``, in float64, in this order: the inputs ``a_0`` (nets, batch,
width), ``W_1 .. W_L`` (each (nets, width, width), standard normal, then scaled by the scheme's std), the read-out
``r`` (nets, batch, width).

Example:
    >>> trace = propagate(SignalConfig(depth=20, width=256, init="kaiming", activation="relu"))
    >>> bool(0.5 < trace.variance[-1] / trace.variance[0] < 2)
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Optional

import torch

from helpers.activation_functions import library as activations

__all__ = ["INIT_SCHEMES", "SignalConfig", "SignalTrace", "init_std", "propagate", "sweep"]

INIT_SCHEMES = ("naive", "xavier", "kaiming")


def init_std(scheme: str, fan_in: int, fan_out: int, naive_std: float = 0.01) -> float:
    """Standard deviation of the normal weights for ``scheme``:

    * ``naive``: a fixed small number (``naive_std``), whatever the layer's size;
    * ``xavier`` (Glorot & Bengio 2010): ``sqrt(2 / (fan_in + fan_out))``, keeps variance for a linear/tanh unit;
    * ``kaiming`` (He et al. 2015, fan-in mode): ``sqrt(2 / fan_in)``, the 2 undoes ReLU's halving of E[x^2].

    Example:
        >>> round(init_std("kaiming", 256, 256) ** 2 * 256, 6), round(init_std("xavier", 256, 256) ** 2 * 256, 6)
        (2.0, 1.0)
    """
    if fan_in < 1 or fan_out < 1:
        raise ValueError(f"fan_in and fan_out must be positive, got {fan_in}, {fan_out}")
    if scheme == "naive":
        return naive_std
    if scheme == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "kaiming":
        return math.sqrt(2.0 / fan_in)
    raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")


@dataclass(frozen=True)
class SignalConfig:
    """Deep MLPs at initialisation: ``depth`` layers of ``width`` units, ``batch`` Gaussian inputs.

    ``nets`` independent networks are drawn and their per-layer measurements averaged: one narrow network's
    variance wanders by a random factor of about ``exp(sqrt(3 depth / width))`` around the expectation, and the
    average over ``nets`` networks wanders ``sqrt(nets)`` times less (in log).
    """

    depth: int = 20
    width: int = 256
    batch: int = 256
    nets: int = 1
    init: str = "kaiming"
    activation: str = "relu"
    naive_std: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.depth < 1 or self.width < 1 or self.batch < 2 or self.nets < 1:
            raise ValueError(f"need depth >= 1, width >= 1, batch >= 2 and nets >= 1, got {self.depth}, "
                             f"{self.width}, {self.batch}, {self.nets}")
        init_std(self.init, 1, 1)  # raises on an unknown scheme
        activations.get(self.activation)  # raises on an unknown activation


@dataclass
class SignalTrace:
    """Per-layer measurements, each a float64 tensor of shape (depth,), index 0 = the first layer.

    variance: variance of the pre-activations ``h_l`` (over batch and units);
    mean: mean of the activations ``a_l = phi(h_l)`` (the shift the next layer receives);
    grad_variance: variance of ``d loss / d h_l`` (the backward signal);
    grad_norm: Frobenius norm of ``d loss / d W_l`` (what the optimiser would use).
    """

    config: SignalConfig
    variance: torch.Tensor
    mean: torch.Tensor
    grad_variance: torch.Tensor
    grad_norm: torch.Tensor

    def ratio(self, layer: Optional[int] = None) -> float:
        """Variance of layer ``layer`` (default: the last) divided by the first layer's; 1 = perfectly kept."""
        last = self.config.depth - 1 if layer is None else layer
        return (self.variance[last] / self.variance[0]).item()


def propagate(config: SignalConfig, device: torch.device | str = "cpu") -> SignalTrace:
    """Run one forward and backward pass through the MLP described by ``config``; see the module docstring.

    Example:
        >>> 1e-18 < propagate(SignalConfig(depth=10, init="naive")).ratio() < 1e-16   # 9 steps of ~0.0128x each
        True
    """
    cfg, act = config, activations.get(config.activation)
    gen = torch.Generator().manual_seed(cfg.seed)
    std = init_std(cfg.init, cfg.width, cfg.width, cfg.naive_std)
    # float64: naive init shrinks the signal by ~1e-2 per layer, which would underflow float32 within 20 layers
    opts = dict(dtype=torch.float64, generator=gen)
    a = torch.randn(cfg.nets, cfg.batch, cfg.width, **opts).to(device)  # (nets, B, width)
    weights = [(torch.randn(cfg.nets, cfg.width, cfg.width, **opts) * std).to(device).requires_grad_()
               for _ in range(cfg.depth)]  # each (nets, width_out, width_in)
    readout = torch.randn(cfg.nets, cfg.batch, cfg.width, **opts).to(device)  # (nets, B, width)
    pre, post = [], []
    for w in weights:
        h = a @ w.transpose(1, 2)  # (nets, B, width)
        h.retain_grad()
        a = act.fn(h)
        pre.append(h)
        post.append(a)
    loss = (a * readout).sum() / math.sqrt(cfg.batch)
    loss.backward()

    def per_net(values: Iterable[torch.Tensor]) -> torch.Tensor:
        """Layers' (nets,) values -> (depth,): the mean over the networks."""
        return torch.stack([v.detach().double().cpu().mean() for v in values])

    return SignalTrace(
        config=cfg,
        variance=per_net(h.flatten(1).var(dim=1) for h in pre),
        mean=per_net(a.flatten(1).mean(dim=1) for a in post),
        grad_variance=per_net(h.grad.flatten(1).var(dim=1) for h in pre),
        grad_norm=per_net(w.grad.flatten(1).norm(dim=1) for w in weights),
    )


def sweep(inits: Iterable[str], activation_names: Iterable[str], device: torch.device | str = "cpu",
          **config) -> dict[tuple[str, str], SignalTrace]:
    """``propagate`` for every (init, activation) pair; ``config`` sets the other ``SignalConfig`` fields.

    Example:
        >>> traces = sweep(["xavier", "kaiming"], ["relu"], depth=5, width=64)
        >>> sorted(traces)
        [('kaiming', 'relu'), ('xavier', 'relu')]
    """
    base = SignalConfig(**config)
    return {(i, a): propagate(replace(base, init=i, activation=a), device)
            for i in inits for a in activation_names}
