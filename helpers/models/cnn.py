"""``wild-cnn``: a small CNN for the 64x64 ``wild`` images, with module names chosen so that hooks read well.

Module names (for capture / CAMs), with shapes for a (B, 3, 64, 64) input and the default config:

    blocks.0              one conv with stride 2, output (B, 32, 32, 32)
    blocks.0.conv1        Conv2d 3x3 (no bias: BatchNorm follows), (B, 32, 32, 32)
    blocks.0.bn1          BatchNorm2d
    blocks.0.relu1        ReLU (not in place, so hooks see its own output)
    blocks.1              two convs, the first with stride 2, output (B, 64, 16, 16)
    blocks.1.conv1/bn1/relu1/conv2/bn2/relu2
    blocks.2              two convs at stride 1, output (B, 128, 16, 16) -- the layer for class activation maps
    pool                  global average pooling, (B, 128)
    head                  Linear -> logits, (B, n_classes)

Inputs are RGB floats in [0, 1] without normalisation (as ``helpers.data.wild`` makes them).

Example:
    >>> import torch
    >>> from helpers.models.cnn import WildCNN, WildCNNConfig
    >>> net = WildCNN(WildCNNConfig())
    >>> net(torch.rand(2, 3, 64, 64)).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from helpers.models.io import load_weights, save_weights


@dataclass
class WildCNNConfig:
    """Architecture of a ``WildCNN``: block ``i`` has ``convs[i]`` conv layers with ``channels[i]`` channels, the
    first of them with stride ``strides[i]``.

    The default downsamples twice (64 -> 32 -> 16) and keeps the last block at 16x16. Strided convs instead of
    max-pools because they are about twice as fast on a CPU, where the zoo is trained.
    """

    channels: tuple[int, ...] = (32, 64, 128)
    convs: tuple[int, ...] = (1, 2, 2)
    strides: tuple[int, ...] = (2, 2, 1)
    n_classes: int = 8
    in_channels: int = 3

    def __post_init__(self) -> None:
        self.channels, self.convs, self.strides = tuple(self.channels), tuple(self.convs), tuple(self.strides)
        if not self.channels or not len(self.channels) == len(self.convs) == len(self.strides):
            raise ValueError(f"channels {self.channels}, convs {self.convs} and strides {self.strides} must be "
                             f"non-empty and equally long")
        if min(self.convs) < 1:
            raise ValueError(f"each block needs at least one conv, got convs={self.convs}")


class ConvBlock(nn.Module):
    """(Conv3x3 -> BatchNorm -> ReLU) x n, the first conv strided; named ``conv1, bn1, relu1, conv2, ...``."""

    def __init__(self, c_in: int, c_out: int, n_convs: int, stride: int = 1):
        super().__init__()
        for i in range(1, n_convs + 1):
            conv = nn.Conv2d(c_in if i == 1 else c_out, c_out, 3, stride=stride if i == 1 else 1, padding=1, bias=False)
            self.add_module(f"conv{i}", conv)
            self.add_module(f"bn{i}", nn.BatchNorm2d(c_out))
            self.add_module(f"relu{i}", nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():  # registration order: conv1, bn1, relu1, conv2, ...
            x = layer(x)
        return x


class GlobalAvgPool(nn.Module):
    """(B, C, H, W) -> (B, C): the mean over positions, as a module so that it can be hooked."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class WildCNN(nn.Module):
    """Conv blocks + BatchNorm + ReLU, global average pooling and a linear head (see the module docstring)."""

    def __init__(self, config: WildCNNConfig | None = None):
        super().__init__()
        self.config = config = config or WildCNNConfig()
        c_in, blocks = config.in_channels, []
        for c, n, s in zip(config.channels, config.convs, config.strides):
            blocks.append(ConvBlock(c_in, c, n, stride=s))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.pool = GlobalAvgPool()
        self.head = nn.Linear(c_in, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.blocks(x)))  # (B, 3, 64, 64) -> (B, 128, 16, 16) -> (B, 128) -> (B, K)


def save_wild_cnn(model: WildCNN, path: str | Path, info: dict) -> dict:
    """Write ``model`` to ``path`` with its sidecar (:mod:`helpers.models.io`); returns the sidecar as written."""
    return save_weights(model, path, asdict(model.config), info)


def load_wild_cnn(path: str | Path, *, check: bool = True) -> tuple[WildCNN, dict]:
    """Load a ``WildCNN`` saved by ``save_wild_cnn``; returns ``(model in eval mode, sidecar dict)``.

    With ``check`` the file's SHA-256 must equal the one recorded in the JSON sidecar.

    Example:
        >>> from helpers.core.paths import ZOO_DIR
        >>> model, info = load_wild_cnn(ZOO_DIR / "wild-cnn.safetensors")
        >>> info["classes"][:2], model(torch.rand(1, 3, 64, 64)).shape
        (['T-shirt/top', 'Pullover'], torch.Size([1, 8]))
    """
    state, info = load_weights(path, check, fix="Retrain with `make zoo`, or restore it with `git checkout data/zoo`.")
    model = WildCNN(WildCNNConfig(**info["config"]))
    model.load_state_dict(state)
    return model.eval(), info
