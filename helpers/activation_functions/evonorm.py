"""EvoNorm-B0 and EvoNorm-S0 (Liu et al. 2020, "Evolving Normalization-Activation Layers") as ``nn.Module``s.

Both replace a ``BatchNorm2d -> ReLU`` pair with one layer that normalises *and* is non-linear. For an input
``x`` of shape (N, C, H, W), with per-channel parameters ``gamma``, ``beta`` and ``v`` (all (1, C, 1, 1)):

    EvoNorm-B0:  y = x / max(sqrt(Var_batch(x) + eps), v * x + sqrt(Var_inst(x) + eps)) * gamma + beta
    EvoNorm-S0:  y = x * sigmoid(v * x) / sqrt(Var_group(x) + eps) * gamma + beta

``Var_batch`` is over (N, H, W) per channel (a running average replaces it in eval mode, as in BatchNorm),
``Var_inst`` over (H, W) per sample and channel, ``Var_group`` over (H, W) and the channels of a group, per sample.
Neither layer subtracts a mean from ``x``: only the variances are centred. S0 never looks across the batch, so its
output for one image does not depend on the other images; B0 does (through ``Var_batch``), like BatchNorm.

``swap_norm_act(model, make)`` puts such a layer into a CNN built from ``Conv -> BatchNorm2d -> ReLU`` blocks: each
BatchNorm2d is replaced by ``make(channels)`` and the ReLU after it by ``nn.Identity``; ``wild_cnn("evonorm_s0")``
does it to the zoo's ``WildCNN`` recipe.

Example:
    >>> import torch
    >>> layer = EvoNormS0(16, groups=4)
    >>> layer(torch.randn(2, 16, 8, 8)).shape
    torch.Size([2, 16, 8, 8])
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

__all__ = ["EvoNormB0", "EvoNormS0", "NORM_ACTS", "swap_norm_act", "wild_cnn"]


def _check_input(x: torch.Tensor, channels: int, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects (N, {channels}, H, W), got {tuple(x.shape)}")


def instance_var(x: torch.Tensor) -> torch.Tensor:
    """Variance over (H, W) per sample and channel: (N, C, H, W) -> (N, C, 1, 1)."""
    return x.var(dim=(2, 3), keepdim=True, unbiased=False)


def group_var(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Variance over (H, W) and the C/groups channels of each group, per sample, broadcast back to (N, C, 1, 1)."""
    n, c, h, w = x.shape
    var = x.reshape(n, groups, c // groups, h, w).var(dim=(2, 3, 4), keepdim=True, unbiased=False)  # (N, G, 1, 1, 1)
    return var.expand(n, groups, c // groups, 1, 1).reshape(n, c, 1, 1)


class _EvoNorm(nn.Module):
    """Shared parameters: per-channel ``gamma`` (1), ``beta`` (0) and ``v`` (1), each (1, C, 1, 1)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels, self.eps = channels, eps
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.v = nn.Parameter(torch.ones(1, channels, 1, 1))


class EvoNormB0(_EvoNorm):
    """EvoNorm-B0: batch-dependent, ``x / max(batch std, v*x + instance std) * gamma + beta``.

    In training mode it uses the batch variance and updates ``running_var`` (like BatchNorm's, with ``momentum``);
    in eval mode it uses ``running_var``.

    Example:
        >>> layer = EvoNormB0(8).eval()
        >>> torch.allclose(layer(torch.ones(1, 8, 4, 4)), torch.ones(1, 8, 4, 4) / (1 + 1e-5 ** 0.5))
        True
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(channels, eps)
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("running_var", torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, "EvoNormB0")
        if self.training:
            batch_var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)  # (1, C, 1, 1)
            with torch.no_grad():  # exponential moving average for eval mode (biased variance, as the paper's code)
                self.running_var.lerp_(batch_var, self.momentum)
        else:
            batch_var = self.running_var
        denom = torch.maximum((batch_var + self.eps).sqrt(), self.v * x + (instance_var(x) + self.eps).sqrt())
        return x / denom * self.gamma + self.beta


class EvoNormS0(_EvoNorm):
    """EvoNorm-S0: batch-independent, ``x * sigmoid(v*x) / group std * gamma + beta``.

    ``groups`` is capped at ``channels`` (the paper uses 32 groups); ``channels`` must be divisible by it.

    Example:
        >>> layer = EvoNormS0(8, groups=2)
        >>> x = torch.randn(3, 8, 4, 4)
        >>> torch.allclose(layer(x)[:1], layer(x[:1]))  # one image's output ignores the rest of the batch
        True
    """

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-5):
        super().__init__(channels, eps)
        groups = min(groups, channels)
        if groups < 1 or channels % groups:
            raise ValueError(f"channels ({channels}) must be divisible by groups ({groups})")
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, "EvoNormS0")
        std = (group_var(x, self.groups) + self.eps).sqrt()  # (N, C, 1, 1)
        return x * torch.sigmoid(self.v * x) / std * self.gamma + self.beta


# name -> factory(channels, **kwargs) for the layer that replaces BatchNorm2d + ReLU; None keeps the pair
NORM_ACTS: dict[str, Optional[Callable[..., nn.Module]]] = {
    "bn_relu": None,
    "evonorm_b0": EvoNormB0,
    "evonorm_s0": EvoNormS0,
}


def swap_norm_act(model: nn.Module, make: Callable[[int], nn.Module]) -> nn.Module:
    """Replace every ``BatchNorm2d`` directly followed by a ``ReLU`` sibling with ``make(channels)``; the ReLU becomes
    ``nn.Identity``. Works in place on modules whose forward runs their children in registration order (the zoo's
    ``WildCNN`` blocks: ``conv1, bn1, relu1, ...``), keeping every name. Returns ``model``.

    Example:
        >>> from helpers.models.cnn import WildCNN
        >>> net = swap_norm_act(WildCNN(), lambda c: EvoNormS0(c, groups=8))
        >>> type(net.blocks[0].bn1).__name__, type(net.blocks[0].relu1).__name__
        ('EvoNormS0', 'Identity')
    """
    swapped = 0
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (name, child), (next_name, next_child) in zip(children, children[1:]):
            if isinstance(child, nn.BatchNorm2d) and isinstance(next_child, nn.ReLU):
                setattr(parent, name, make(child.num_features))  # same key, same position in _modules
                setattr(parent, next_name, nn.Identity())
                swapped += 1
    if swapped == 0:
        raise ValueError("no BatchNorm2d followed by a ReLU found in the model; nothing to swap")
    return model


def wild_cnn(norm_act: str = "bn_relu", config=None, **kwargs) -> nn.Module:
    """A freshly initialised zoo ``WildCNN`` whose BatchNorm2d + ReLU pairs are ``norm_act``, one of ``NORM_ACTS``.

    ``config`` is a ``WildCNNConfig`` (default: the zoo's); ``kwargs`` go to the EvoNorm layers (e.g. ``groups=8``).

    Example:
        >>> from helpers.models.cnn import WildCNNConfig
        >>> net = wild_cnn("evonorm_b0", WildCNNConfig(channels=(8, 16, 16)))
        >>> net(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 8])
    """
    from helpers.models.cnn import WildCNN

    if norm_act not in NORM_ACTS:
        raise ValueError(f"unknown norm_act {norm_act!r}; valid: {', '.join(NORM_ACTS)}")
    model, make = WildCNN(config), NORM_ACTS[norm_act]
    if make is None:
        if kwargs:
            raise ValueError(f"norm_act 'bn_relu' takes no extra arguments, got {sorted(kwargs)}")
        return model
    return swap_norm_act(model, lambda channels: make(channels, **kwargs))
